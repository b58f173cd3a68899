"""The training loop: which variables each iteration updates, the D/G schedule, exact resume,
the command line's log and grids, and short runs on real data."""
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import FASHION, SMALL_FLAGS, SMALL_MODEL, call_main, random_digits, run_cli, write_idx
from dcgan_mnist import checkpoint
from dcgan_mnist import train as train_module
from dcgan_mnist.config import Config
from dcgan_mnist.model import DCGAN
from dcgan_mnist.step import TrainSteps
from dcgan_mnist.train import train


def small_cfg(tmp_path, tiny_idx, **kw):
    base = dict(data_dir=str(tiny_idx), valid_size=0, batch_size=8, seed=7, step=2,
                checkpoint_dir=str(tmp_path / "ckpt"), vis_dir=str(tmp_path / "vis"), **SMALL_MODEL)
    base.update(kw)
    return Config(**base)


def checkpoint_values(ckpt_dir):
    reader = tf.train.load_checkpoint(str(ckpt_dir))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k not in ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")}


def weights(values, prefix):
    return {k: v for k, v in values.items() if k.startswith(f"model/{prefix}")}


def test_d_iteration_updates_only_d_and_g_iteration_only_g(tmp_path, tiny_idx, capsys):
    cfg = small_cfg(tmp_path, tiny_idx, max_iterations=1)
    start = DCGAN(**cfg.model_kwargs(), seed=cfg.seed)  # the run's initial weights, from its seed
    train(cfg)
    after_d = checkpoint_values(cfg.checkpoint_dir)
    for v in start.gen_vars:
        np.testing.assert_array_equal(after_d[f"model/{v.name.split(':')[0]}/.ATTRIBUTES/VARIABLE_VALUE"], v.numpy())
    for v in start.discrim_vars:
        assert not np.array_equal(after_d[f"model/{v.name.split(':')[0]}/.ATTRIBUTES/VARIABLE_VALUE"], v.numpy())

    train(small_cfg(tmp_path, tiny_idx, max_iterations=2))  # resumes: iteration 1 is a G iteration
    after_g = checkpoint_values(cfg.checkpoint_dir)
    for k, v in weights(after_d, "discrim").items():
        np.testing.assert_array_equal(after_g[k], v)
    for k, v in weights(after_d, "gen").items():
        assert not np.array_equal(after_g[k], v)
    assert "updating D" in capsys.readouterr().out


def test_schedule_follows_iteration_mod_k(tmp_path, tiny_idx, capsys):
    train(small_cfg(tmp_path, tiny_idx, max_iterations=7, k=3))
    out = capsys.readouterr().out
    updates = re.findall(r"=========== updating (\w) ==========\niteration: (\d+)", out)
    assert updates == [("D" if i % 3 == 0 else "G", str(i)) for i in range(7)]


def test_resume_equals_uninterrupted(tmp_path, tiny_idx, capsys):
    # 64 images, batch 8, 32 held out -> 4 iterations an epoch: the resume crosses an epoch.
    one = small_cfg(tmp_path / "a", tiny_idx, valid_size=32, max_iterations=6, step=1)
    train(one)
    train(small_cfg(tmp_path / "b", tiny_idx, valid_size=32, max_iterations=3, step=1))
    capsys.readouterr()
    train(small_cfg(tmp_path / "b", tiny_idx, valid_size=32, max_iterations=6, step=1))
    resumed = capsys.readouterr().out
    assert "resuming from" in resumed
    assert re.findall(r"^iteration: (\d+)$", resumed, re.M) == ["3", "4", "5"]  # on from where it stopped
    a, b = checkpoint_values(tmp_path / "a" / "ckpt"), checkpoint_values(tmp_path / "b" / "ckpt")
    assert a.keys() == b.keys() and any("optimizer" in k for k in a) and any("noise_rng" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    last = "sample_0005.jpg"
    assert (tmp_path / "a/vis" / last).read_bytes() == (tmp_path / "b/vis" / last).read_bytes()


def test_keep_checkpoints_keeps_the_newest_n_and_a_resume_may_change_it(tmp_path, tiny_idx, capsys):
    folder = tmp_path / "ckpt"

    def on_disk():
        return [os.path.basename(p) for p in checkpoint.found_on_disk(str(folder))]

    train(small_cfg(tmp_path, tiny_idx, max_iterations=5, checkpoint_every=1, keep_checkpoints=2))
    assert on_disk() == ["ckpt-4", "ckpt-5"]
    assert tf.train.get_checkpoint_state(str(folder)).all_model_checkpoint_paths[-2:] == [
        str(folder / "ckpt-4"), str(folder / "ckpt-5")]
    train(small_cfg(tmp_path, tiny_idx, max_iterations=9, checkpoint_every=1, keep_checkpoints=3))
    assert "resuming from" in capsys.readouterr().out
    assert on_disk() == ["ckpt-7", "ckpt-8", "ckpt-9"]


def test_without_seed_one_is_drawn_printed_and_kept(tmp_path, tiny_idx, capsys):
    train(small_cfg(tmp_path, tiny_idx, seed=None, max_iterations=1))
    seed = int(re.search(r"seed: (\d+)", capsys.readouterr().out).group(1))
    train(small_cfg(tmp_path, tiny_idx, seed=None, max_iterations=2))
    assert f"seed: {seed}" in capsys.readouterr().out


def test_cli_smoke_prints_upstream_log_and_writes_grid(tmp_path, tiny_idx):
    r = run_cli("train", "--data-dir", tiny_idx, "--valid-size", "0", "--batch-size", "8", "--max-iterations", "3",
                "--seed", "1", *SMALL_FLAGS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    i = lines.index("=========== updating D ==========")
    assert lines[i + 1] == "iteration: 0"
    for j, prefix in enumerate(["gen loss: ", "discrim loss: ", "Average P(real)= ", "Average P(gen)= "]):
        assert lines[i + 2 + j].startswith(prefix)
        float(lines[i + 2 + j][len(prefix):])
    assert "=========== updating G ==========" in lines
    assert re.search(r"epoch 1/100: 3 iterations in [\d.]+ s, [\d.]+ s/iteration, \d+ images/s", r.stdout)
    assert r.stderr == ""  # no TensorFlow start-up noise
    grid = Image.open(tmp_path / "vis" / "sample_0000.jpg")
    assert grid.size == (392, 392) and grid.mode == "RGB"
    assert (tmp_path / "checkpoints" / "run.json").exists()


def test_log_every_thins_the_log(tmp_path, tiny_idx, capsys):
    train(small_cfg(tmp_path, tiny_idx, max_iterations=7, log_every=3))
    assert re.findall(r"iteration: (\d+)", capsys.readouterr().out) == ["0", "3", "6"]


def test_thinned_log_trains_the_same_weights(tmp_path, tiny_idx):
    """Unprinted G iterations skip D's pass on the real batch (step.py): the weights, Adam's
    state and the noise stream must come out as when every iteration is printed."""
    every = tmp_path / "every"
    thinned = tmp_path / "thinned"
    train(small_cfg(every, tiny_idx, max_iterations=8, log_every=1))
    train(small_cfg(thinned, tiny_idx, max_iterations=8, log_every=5))  # 6 of 8 unprinted, 3 of them G
    a, b = checkpoint_values(every / "ckpt"), checkpoint_values(thinned / "ckpt")
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-9, err_msg=name)


def test_step_outputs_are_read_only_where_the_log_prints(tmp_path, tiny_idx, monkeypatch):
    """--log-every 5: the step's four figures come back to the host (numpy/float) only at
    printed iterations, plus once at each epoch's end (train.py waits for the last step before
    reading the clock); nothing in between, so a thinned log leaves the step unsynchronised."""
    from tensorflow.python.framework import ops

    outputs, reads = {}, []  # id(tensor) -> (iteration, tensor), kept alive so ids stay unique
    made = train_module.make_train_steps

    def counted(*args, **kwargs):
        def wrap(step):
            def call(*a):
                out = step(*a)
                n = len(outputs) // 4
                outputs.update({id(t): (n, t) for t in out})
                return out
            return call
        return TrainSteps(*(wrap(s) for s in made(*args, **kwargs)))

    original = ops._EagerTensorBase._numpy

    def numpy(self):
        if id(self) in outputs:
            reads.append(outputs[id(self)][0])
        return original(self)

    monkeypatch.setattr(train_module, "make_train_steps", counted)
    monkeypatch.setattr(ops._EagerTensorBase, "_numpy", numpy)
    train(small_cfg(tmp_path, tiny_idx, max_iterations=16, log_every=5))  # 8 iterations per epoch
    assert len(outputs) == 16 * 4
    assert sorted(set(reads)) == [0, 5, 7, 10, 15]  # printed 0, 5, 10, 15; epochs end after 7 and 15


def test_bad_flag_and_bad_data_exit_2_with_one_line(tmp_path, capsys, monkeypatch):
    """In this process; the real process's status and clean stderr: tests/test_bad_input.py."""
    monkeypatch.chdir(tmp_path)
    code, _, err = call_main(capsys, train_module.main, "--k", "0")
    assert code == 2 and err.strip() == "error: --k 0: must be at least 1"
    (tmp_path / "bad").mkdir()
    images, labels = random_digits(8)
    write_idx(tmp_path / "bad" / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "bad" / "train-labels-idx1-ubyte", np.full(8, 11))
    code, _, err = call_main(capsys, train_module.main, "--data-dir", tmp_path / "bad", "--valid-size", "0")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "train-labels-idx1-ubyte: label 11 outside 0 to 9" in err
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "vis").exists()


def test_other_settings_in_checkpoint_dir_are_refused(tmp_path, tiny_idx):
    train(small_cfg(tmp_path, tiny_idx, max_iterations=1))
    with pytest.raises(Exception, match=rf"--dim-w1 {SMALL_MODEL['dim_W1']} \(now 64\)"):
        train(small_cfg(tmp_path, tiny_idx, max_iterations=2, dim_W1=64))


def test_short_run_on_real_mnist_digits(tmp_path, capsys, monkeypatch):
    """The digits shipped with the package (--dataset mnist_test), at upstream's sizes."""
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(capsys, train_module.main, "--dataset", "mnist_test", "--max-iterations", "4",
                               "--step", "2", "--seed", "3")
    assert code == 0, err
    assert "data: 8000 training images from MNIST's 10,000 test digits shipped with dcgan_mnist (2000 held out)" in out
    assert sorted(p.name for p in (tmp_path / "vis").iterdir()) == \
        ["progress.gif", "sample_0000.jpg", "sample_0001.jpg"]
    losses = [float(x) for x in re.findall(r"gen loss: (\S+)", out)]
    assert len(losses) == 4 and all(np.isfinite(losses))


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_short_run_on_fashion_mnist(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(capsys, train_module.main, "--dataset", "fashion_mnist", "--max-iterations", "2",
                               "--seed", "3", *SMALL_FLAGS)
    assert code == 0, err
    assert "data: 50000 training images from /usr/share/datasets/fashion-mnist" in out


def test_run_record_holds_absolute_data_paths_so_other_commands_work_from_any_folder(tmp_path, monkeypatch):
    from dcgan_mnist import classifier, evaluate
    monkeypatch.setattr(classifier, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(classifier, "CLASSIFIER_STEPS", 2)
    images, labels = random_digits(64)
    (tmp_path / "job").mkdir()
    write_idx(tmp_path / "job" / "images", images)
    write_idx(tmp_path / "job" / "labels", labels)
    monkeypatch.chdir(tmp_path / "job")
    assert train_module.main(["--train-images", "images", "--train-labels", "labels", "--valid-size", "20",
                              "--batch-size", "16", "--max-iterations", "1", "--seed", "1", *SMALL_FLAGS]) == 0
    cfg = json.loads((tmp_path / "job" / "checkpoints" / "run.json").read_text())["config"]
    assert cfg["train_images"] == str(tmp_path / "job" / "images")
    assert cfg["train_labels"] == str(tmp_path / "job" / "labels")
    # evaluate reads the run's data again: from the parent folder, relative paths would miss it.
    monkeypatch.chdir(tmp_path)
    assert evaluate.main(["--checkpoint-dir", "job/checkpoints", "--n-per-label", "2", "--no-cas"]) == 0
