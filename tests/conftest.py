"""Fixtures over the one scaffold (tests/scaffold.py): tiny IDX data, the trained run (trained once
per session, copied where a test changes it), the undisturbed fault_runner run, the one-device run
that replicated runs must match, a run on real digits with its evaluator, and the ways to run a
command (in this process, or as a real process where the process itself is under test). The costly
session fixtures are each shared by the tests of one pytest-xdist group, so that one worker makes them."""
import contextlib
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

# TensorFlow (fault_runner, the package's modules) is imported by the fixtures that use it, not here:
# pytest-xdist's controller loads this file too, runs no test, and would spend seconds of CPU on it.
from scaffold import (  # noqa: F401  (re-exported: the tests import the scaffold from here)
    FASHION,
    ROOT,
    SHARED_MNIST,
    SMALL_FLAGS,
    SMALL_MODEL,
    TRAINED_RUN_DIM_Z,
    TRAINED_RUN_FLAGS,
    idx_bytes,
    random_digits,
    relative_error,
    write_idx,
    write_random_pair,
)


@pytest.fixture
def tiny_idx(tmp_path):
    """A folder with a 64-image training pair and a 20-image test pair, gzipped."""
    folder = tmp_path / "data"
    folder.mkdir()
    images, labels = random_digits(64)
    write_idx(folder / "train-images-idx3-ubyte.gz", images, gz=True)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels, gz=True)
    timages, tlabels = random_digits(20, seed=1)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", timages, gz=True)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", tlabels, gz=True)
    return folder


def run_cli(module, *args, cwd, timeout=300):
    """Run python -m dcgan_mnist.<module> in a subprocess; returns CompletedProcess. Only for what
    only a real process shows (its exit status, its stderr from start-up on, signals); else call_main."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", f"dcgan_mnist.{module}", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def call_main(capsys, main, *argv):
    """A command's main(argv) in this process: (exit status, stdout, stderr); argparse's
    SystemExit counts as the status."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def listing(folder):
    """Every file under folder with its size and modification time, to see that nothing changed it."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A small run trained once per session (scaffold.TRAINED_RUN_FLAGS): its folder, holding the
    data (images, labels), checkpoints/ (ckpt-1 to ckpt-3, run.json) and vis/. Read it only; a test
    that writes into a run takes trained_copy. Checked unchanged at the end of the session."""
    from dcgan_mnist import train
    folder = tmp_path_factory.mktemp("trained_run")
    flags = write_random_pair(folder, seed=3) + TRAINED_RUN_FLAGS + [
        "--checkpoint-dir", str(folder / "checkpoints"), "--vis-dir", str(folder / "vis")]
    assert train.main(flags) == 0
    before = listing(folder)
    yield folder
    assert listing(folder) == before, "a test changed the shared trained run: use trained_copy"


@pytest.fixture
def trained_copy(trained_run, tmp_path):
    """A copy of the trained run for a test to change: tmp_path / "run"."""
    shutil.copytree(trained_run, tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """fault_runner's tiny data set, once per session."""
    import fault_runner as fr
    folder = tmp_path_factory.mktemp("data")
    fr.tiny_data(folder)
    return str(folder)


def printed_by(main, argv):
    """main(argv) in this process: (exit status, what it printed on stdout). For session fixtures,
    which have no capsys; a TextIOWrapper, as sys.stdout is (a command reconfigures it)."""
    log = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(log):
        status = main(argv)
    log.flush()
    return status, log.buffer.getvalue().decode()


@pytest.fixture(scope="session")
def fault_reference(data_dir, tmp_path_factory):
    """fault_runner's run undisturbed, in this process, to the end: its folder (ckpt/, vis/). The
    runs that faults interrupt must end exactly where it did; test_faults_at_scale's first trainer,
    a real process, does. Read it only (copy it to change it)."""
    import fault_runner as fr
    run_dir = str(tmp_path_factory.mktemp("reference"))
    status, out = printed_by(fr.train.main, fr.tiny_flags(data_dir, run_dir))
    assert status == 0, out[-3000:]
    assert f"done: {fr.TOTAL} iterations" in out
    return run_dir


# The replicated runs' data and flags (test_distribute.py, test_faults_at_scale.py): 64 random images,
# batch 8, so 8 iterations an epoch, D and G steps alternating, a grid every 5 iterations.
REPLICA_FLAGS = ["--valid-size", "0", "--batch-size", "8", *SMALL_FLAGS, "--step", "5", "--seed", "7",
                 "--log-every", "1000"]


@pytest.fixture(scope="session")
def replica_flags(tmp_path_factory):
    """REPLICA_FLAGS with the data they train on."""
    return write_random_pair(tmp_path_factory.mktemp("replica_data"), seed=0) + REPLICA_FLAGS


@pytest.fixture(scope="session")
def one_device_run(replica_flags, tmp_path_factory):
    """What replicated runs must end as: replica_flags on one device, in this process, 2 epochs (16
    iterations), every iteration's figures printed (log.txt). Its folder: ckpt/ (ckpt-8 ends the first
    epoch, ckpt-16 the run), vis/, log.txt."""
    from dcgan_mnist import train
    folder = tmp_path_factory.mktemp("one_device")
    status, printed = printed_by(train.main, replica_flags + [
        "--strategy", "one", "--n-epochs", "2", "--log-every", "1", "--checkpoint-dir", str(folder / "ckpt"),
        "--vis-dir", str(folder / "vis")])
    assert status == 0, printed[-3000:]
    (folder / "log.txt").write_text(printed)
    return folder


def pytest_collection_modifyitems(items):
    """Tests marked `early` first. pytest-xdist hands out its groups first, then single tests in this
    order: a long test left to the end keeps one worker busy while the other has nothing to do."""
    items.sort(key=lambda item: item.get_closest_marker("early") is None)


# ---------------------------------------------------------------- a run on real digits

# Of the 10,000 MNIST test digits, shuffled: 1,000 train the run, 2,000 are held out. With 1,000
# training digits, the real row's CAS (1,000 real training digits) is the evaluator's own
# classifier, cached: one classifier fewer to train.
RUN_DIGITS = 3000
UNSEEN = 2000  # the next ones: real digits neither the run nor its evaluator ever sees
MNIST_RUN_STEPS = 100  # Adam steps of every classifier of test_evaluate.py's on it, the evaluator's and CAS's


# Session-scoped: a module fixture is made again whenever a worker returns to this module.
@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory):
    """A run of one iteration on RUN_DIGITS real digits (its figures come from the evaluator, not
    the GAN), its evaluator at 100 images per label (real row and reference: 1,000 digits each),
    and UNSEEN other real digits. In the xdist group "mnist_run" (test_evaluate.py's and test_demo.py's
    tests, whose page's digits its classifier reads): made once."""
    from dcgan_mnist import data, evaluate, train
    from dcgan_mnist.config import Config
    shipped = data.load_shipped()  # MNIST's 10,000 test digits, installed with the package
    images, labels = shipped.train_images, shipped.train_labels
    # Shuffled: the test file's two halves come from different writers.
    order = np.random.default_rng(0).permutation(len(images))
    run, unseen = order[:RUN_DIGITS], order[RUN_DIGITS:RUN_DIGITS + UNSEEN]
    folder = tmp_path_factory.mktemp("mnist_run")
    write_idx(folder / "images", images[run])
    write_idx(folder / "labels", labels[run])
    flags = ["--train-images", str(folder / "images"), "--train-labels", str(folder / "labels"), "--valid-size", "2000",
             "--seed", "1"]
    assert train.main(SMALL_FLAGS + flags + ["--max-iterations", "1", "--checkpoint-dir", str(folder / "ckpt"),
                                             "--vis-dir", str(folder / "vis")]) == 0
    cfg = Config(train_images=str(folder / "images"), train_labels=str(folder / "labels"), valid_size=2000, seed=1)
    evaluator = evaluate.Evaluator(evaluate.run_data(cfg), n_per_label=100, cache_dir=str(folder / "cache"),
                                   steps=MNIST_RUN_STEPS)
    return dict(folder=folder, evaluator=evaluator, images=images[unseen], labels=labels[unseen])
