"""A newcomer's first minutes: the main job on a machine with no network trains on the digits shipped
with the package, the generator shipped with it draws digits before any training, and --precision bf16
says so where the CPU only emulates bfloat16."""
import gzip
import json
import os
import re
import shutil
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from conftest import SMALL_FLAGS, call_main, listing, relative_error
from dcgan_mnist import checkpoint, data, evaluate, export, generate, step, train
from dcgan_mnist.config import Config

FLOAT16_ROUNDOFF = 2.0 ** -11  # float16 keeps 11 significant bits: a weight moves by at most 2^-11 of itself
FLOAT16_SUBNORMAL = 2.0 ** -25  # half the spacing of float16's smallest numbers, where |w| < 6.1e-5


def offline(monkeypatch, tmp_path):
    """No network, as on a machine without one: every download goes to a closed port on this machine
    and is refused at once. No cached download either."""
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    # urllib's shared opener reads the proxies once, when first used: an earlier download in this
    # process would otherwise keep going direct.
    monkeypatch.setattr(urllib.request, "_opener", None)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def test_offline_the_default_run_trains_on_the_shipped_digits_and_resumes_on_them(tmp_path, monkeypatch, capsys):
    offline(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    flags = SMALL_FLAGS + ["--batch-size", "64", "--log-every", "100", "--seed", "2"]
    code, out, err = call_main(capsys, train.main, *flags, "--max-iterations", "2")
    assert code == 0, err
    assert re.search(r"^data: no MNIST training files in --data-dir data and no download \(.*Connection refused.*\); "
                     r"training on MNIST's 10,000 test digits shipped with dcgan_mnist \(--dataset mnist_test\) "
                     r"instead; for the full 60,000, put MNIST's files in data/ or run again with a network$",
                     out, re.M), out
    assert "data: 8000 training images from MNIST's 10,000 test digits shipped with dcgan_mnist (2000 held out)" in out
    record = json.loads((tmp_path / "checkpoints" / "run.json").read_text())["config"]
    assert (record["dataset"], record["valid_size"]) == ("mnist_test", 2000)
    assert (tmp_path / "vis" / "sample_0000.jpg").is_file()
    assert tf.train.latest_checkpoint("checkpoints") == "checkpoints/ckpt-2"
    # The same command resumes on the digits its record names, without trying the network again.
    code, out, err = call_main(capsys, train.main, *flags, "--max-iterations", "3")
    assert code == 0, err
    assert "resuming from checkpoints/ckpt-2 at iteration 2" in out and "no download" not in out
    # Asked for by name, MNIST is not replaced: the run stops before writing anything.
    code, out, err = call_main(capsys, train.main, *flags, "--dataset", "mnist", "--checkpoint-dir", "other",
                               "--vis-dir", "other-vis")
    assert code == 2 and err.startswith("error: no training data in --data-dir data and the download failed")
    assert not (tmp_path / "other").exists() and not (tmp_path / "other-vis").exists()


def test_mnist_test_holds_out_2000_unless_told_otherwise():
    assert Config(dataset="mnist_test").held_out() == 2000
    assert Config(dataset="mnist").held_out() == Config(dataset="fashion_mnist").held_out() == 10000
    assert Config(dataset="mnist_test", valid_size=500).held_out() == 500
    shipped = data.load_shipped()
    assert shipped.train_images.shape == (10000, 28, 28) and shipped.name == "mnist_test"
    assert np.bincount(shipped.train_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_a_damaged_shipped_file_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    damaged = tmp_path / "digits"
    shutil.copytree(data.SHIPPED_DIR, damaged)
    images = damaged / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(images.read_bytes()))
    raw[16 + 28 * 14 + 14] ^= 0x01  # one pixel of the first digit, one level: a valid gzip of other content
    images.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(data, "SHIPPED_DIR", str(damaged))
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(capsys, train.main, "--dataset", "mnist_test", *SMALL_FLAGS)
    assert code == 2
    assert err == f"error: {images}: damaged: its content fails its SHA-256 check; reinstall dcgan-mnist\n"
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "vis").exists()


def made_from(run):
    return checkpoint.restore_generator(str(run / "checkpoints"))


def test_pretrained_draws_the_digits_of_the_checkpoint_it_was_made_from(trained_run, tmp_path, monkeypatch, capsys):
    """write_pretrained (what scripts/make_pretrained.py ships) and --pretrained, on the shared run."""
    made = made_from(trained_run)
    assert made.drawn == "average"
    folder = tmp_path / "pretrained"
    command = f"python -m dcgan_mnist.train --checkpoint-dir {trained_run}/checkpoints"
    checkpoint.write_pretrained(made, folder, command=command, commit="test")
    monkeypatch.setattr(checkpoint, "PRETRAINED_DIR", str(folder))
    shipped = checkpoint.load_pretrained(str(folder))
    assert shipped.fingerprint == made.fingerprint and shipped.drawn == "average"
    # The record ships: the run's settings, but no path of this machine: the default data folder
    # relative to the working folder ("data"), the rest (in the temp folder) by their file names.
    paths = {name for name, value in vars(made.cfg).items() if isinstance(value, str) and value.startswith("/")}
    assert {"train_images", "train_labels", "checkpoint_dir"} <= paths
    assert {n: v for n, v in vars(shipped.cfg).items() if n not in paths} == \
        {n: v for n, v in vars(made.cfg).items() if n not in paths}
    assert {n: getattr(shipped.cfg, n) for n in paths} == {n: os.path.basename(getattr(made.cfg, n)) for n in paths}
    record = json.loads((folder / checkpoint.PRETRAINED_RECORD).read_text())
    assert record["command"] == "python -m dcgan_mnist.train --checkpoint-dir checkpoints"
    assert str(trained_run) not in json.dumps(record)
    for ours, theirs in zip(shipped.generator.gen_vars, made.generator.gen_vars):
        np.testing.assert_allclose(ours, theirs, rtol=FLOAT16_ROUNDOFF, atol=FLOAT16_SUBNORMAL, err_msg=theirs.name)
    # Each of the four weights is within 2^-11 of itself, so the logits are within 4 x 2^-11 of the
    # checkpoint's (first order; batchnorm divides out any common scale). Weights 1% off give 1e-2.
    rng = np.random.default_rng(0)
    Z = tf.constant(rng.uniform(-1, 1, (500, made.cfg.dim_z)), tf.float32)
    Y = tf.one_hot(np.arange(500) % 10, 10)
    error = relative_error(shipped.generator.generate(Z, Y), made.generator.generate(Z, Y))
    assert error < 4 * FLOAT16_ROUNDOFF, f"logits {error:.3g} from the checkpoint's"
    # Through the command: the same digits, pixel for pixel but for the rounding of a few
    outs = {}
    for name, source in (("pretrained.npz", ["--pretrained"]),
                         ("checkpoint.npz", ["--checkpoint-dir", trained_run / "checkpoints"])):
        code, outs[name], err = call_main(capsys, generate.main, *source, "--labels", "0123456789",
                                          "--n-per-label", "5", "--npz", tmp_path / name)
        assert code == 0, err
    assert f"from {folder}/generator.npz (averaged generator)" in outs["pretrained.npz"]
    with np.load(tmp_path / "pretrained.npz") as a, np.load(tmp_path / "checkpoint.npz") as b:
        np.testing.assert_array_equal(a["labels"], b["labels"])
        difference = np.abs(a["images"].astype(int) - b["images"].astype(int))
    assert difference.max() <= 2 and difference.mean() < 0.05, (difference.max(), difference.mean())


@pytest.mark.parametrize("command", [generate, evaluate, export])
@pytest.mark.parametrize("other", [["--checkpoint-dir", "checkpoints"], ["--checkpoint", "checkpoints/ckpt-3"]])
def test_pretrained_and_a_checkpoint_exclude_each_other(command, other, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    extra = ["--out", "out"] if command is export else []
    code, out, err = call_main(capsys, command.main, "--pretrained", *other, *extra)
    assert code == 2 and out == ""
    assert err == (f"error: --pretrained and {other[0]} exclude each other: draw from the shipped generator or "
                   f"from a run's checkpoint, not both\n")
    assert list(tmp_path.iterdir()) == []


def test_the_shipped_generator_is_what_its_record_says(tmp_path, monkeypatch, capsys):
    """dcgan_mnist/pretrained/: upstream's sizes, trained on the shipped digits' split its record
    names, 98% or more of its digits read as the label asked for; generate and export draw from it."""
    before = listing(tmp_path)
    shipped = checkpoint.load_pretrained()
    cfg = shipped.cfg
    assert cfg.generator_kwargs() == Config().generator_kwargs() and cfg.dataset == "mnist_test"
    digits = data.load_shipped()
    trX, _, trY, _ = data.mnist_with_valid_set(digits.train_images, digits.train_labels, cfg.valid_size, cfg.seed)
    assert shipped.fingerprint == data.fingerprint(trX, trY)
    record = json.loads(open(f"{checkpoint.PRETRAINED_DIR}/{checkpoint.PRETRAINED_RECORD}").read())
    assert record["command"].startswith("python -m dcgan_mnist.train --dataset mnist_test")
    assert record["evaluate"]["generated"]["label_agreement"] >= 0.98
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(capsys, generate.main, "--pretrained", "--labels", "0123456789", "--out", "digits.png")
    assert code == 0, err
    assert out.startswith(f"wrote digits.png: 10 rows (0123456789) x 10 from {shipped.path} (averaged generator)")
    code, out, err = call_main(capsys, export.main, "--pretrained", "--out", "served")
    assert code == 0, err
    served = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    images = served(z=tf.zeros([2, cfg.dim_z]), labels=tf.constant([3, 8]))["images"]
    assert images.shape == (2, 28, 28) and images.dtype == tf.uint8
    assert before == {} and sorted(p.name for p in tmp_path.iterdir()) == ["digits.png", "served"]


def test_bf16_on_a_cpu_without_bf16_instructions_says_so_and_goes_on(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(step, "cpu_flags", lambda: {"avx2", "fma"})
    code, out, err = call_main(capsys, train.main, "--train-images", trained_run / "images", "--train-labels",
                               trained_run / "labels", "--valid-size", "0", "--batch-size", "16", *SMALL_FLAGS,
                               "--precision", "bf16", "--max-iterations", "2", "--log-every", "100",
                               "--checkpoint-dir", tmp_path / "ckpt", "--vis-dir", tmp_path / "vis")
    assert code == 0, err
    assert re.search(r"^warning: --precision bf16: this CPU has no bf16 instructions \(avx512_bf16 or amx_bf16\), "
                     r"so TensorFlow emulates bfloat16; the step's largest matmul and conv took \d+\.\dx float32's "
                     r"time in bfloat16 here; on this CPU, --precision float32 is likely faster$", out, re.M), out
    assert "done: 2 iterations" in out
    monkeypatch.setattr(step, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert step.bf16_warning(Config()) is None
