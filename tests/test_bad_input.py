"""Every bad flag and every malformed data file: one line on stderr naming it, exit status 2,
no traceback, and nothing written (not even a folder)."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

import fault_runner as fr
from conftest import SMALL_FLAGS, idx_bytes
from dcgan_mnist import train

IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A valid pair and one file for each way a data file can be malformed."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 28, 28)), rng.integers(0, 10, 40)
    good_images, good_labels = idx_bytes(images), idx_bytes(labels)
    made = {
        "images": good_images,
        "labels": good_labels,
        "wrong_magic": b"\x00\x00\x0d\x03" + good_images[4:],
        "wrong_ndim": idx_bytes(images.reshape(40, 784)),
        "truncated": good_images[:-100],
        "header_only": good_images[:10],
        "trailing": good_images + b"\x00" * 7,
        "fewer_labels": idx_bytes(labels[:39]),
        "label_11": idx_bytes(np.where(np.arange(40) == 5, 11, labels)),
        "not_multiple_of_4": idx_bytes(rng.integers(0, 256, (40, 30, 30))),
        "corrupt_gz": gzip.compress(good_images)[:-30] + b"\xff" * 30,
        "images.gz": gzip.compress(good_images),
    }
    paths = {}
    for name, raw in made.items():
        paths[name] = str(d / name)
        with open(paths[name], "wb") as f:
            f.write(raw)
    npz_dir = d / "npz_without_arrays"
    npz_dir.mkdir()
    np.savez(npz_dir / "mnist.npz", images=images, labels=labels)
    paths["npz_dir"] = str(npz_dir)
    bad_npz_dir = d / "npz_damaged"
    bad_npz_dir.mkdir()
    (bad_npz_dir / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    paths["bad_npz_dir"] = str(bad_npz_dir)
    paths["a_file"] = paths["labels"]  # a file where a folder is expected
    return paths


OK = ["--train-images", "{images}", "--train-labels", "{labels}", "--valid-size", "0", *SMALL_FLAGS,
      "--batch-size", "8"]

# (flags replacing or adding to OK, words the one line must contain)
CASES = {
    "batch_size_0": (["--batch-size", "0"], ["--batch-size 0", "at least 1"]),
    "batch_size_negative": (["--batch-size", "-4"], ["--batch-size -4", "at least 1"]),
    "batch_size_above_training_set": (["--batch-size", "41"], ["--batch-size 41", "larger than the 40"]),
    "batch_size_not_a_number": (["--batch-size", "many"], ["--batch-size", "invalid int value"]),
    "k_0": (["--k", "0"], ["--k 0", "at least 1"]),
    "step_0": (["--step", "0"], ["--step 0", "at least 1"]),
    "learning_rate_0": (["--learning-rate", "0"], ["--learning-rate 0", "above 0"]),
    "learning_rate_negative": (["--learning-rate", "-0.1"], ["--learning-rate -0.1", "above 0"]),
    "learning_rate_nan": (["--learning-rate", "nan"], ["--learning-rate nan", "above 0"]),
    "negative_epochs": (["--n-epochs", "-1"], ["--n-epochs -1", "not be negative"]),
    "checkpoint_every_0": (["--checkpoint-every", "0"], ["--checkpoint-every 0", "at least 1"]),
    "keep_checkpoints_0": (["--keep-checkpoints", "0"], ["--keep-checkpoints 0", "at least 1"]),
    "visualize_dim_not_square": (["--visualize-dim", "15"], ["--visualize-dim 15", "square"]),
    "valid_size_leaves_nothing": (["--valid-size", "40"], ["--valid-size 40", "no training images"]),
    "unknown_dataset": (["--dataset", "cifar10"], ["--dataset", "invalid choice: 'cifar10'"]),
    "unknown_flag": (["--epochs", "3"], ["unrecognized arguments: --epochs 3"]),
    "missing_images_file": (["--train-images", "/nonexistent/images"], ["--train-images /nonexistent/images",
                                                                        "no such file"]),
    "labels_without_images": ("replace", ["--train-images is missing"]),
    "wrong_magic": (["--train-images", "{wrong_magic}"], ["wrong_magic", "wrong magic number 0x00000d03"]),
    "wrong_ndim": (["--train-images", "{wrong_ndim}"], ["wrong_ndim", "wrong number of dimensions 2"]),
    "truncated": (["--train-images", "{truncated}"], ["truncated", "truncated: header says 40 x 28 x 28"]),
    "header_only": (["--train-images", "{header_only}"], ["header_only", "truncated: the header needs 16"]),
    "trailing_bytes": (["--train-images", "{trailing}"], ["trailing", "7 bytes after"]),
    "count_mismatch": (["--train-labels", "{fewer_labels}"], ["has 40 images but", "fewer_labels has 39 labels"]),
    "label_outside_0_9": (["--train-labels", "{label_11}"], ["label_11", "label 11 outside 0 to 9"]),
    "images_not_multiple_of_4": (["--train-images", "{not_multiple_of_4}"],
                                 ["not_multiple_of_4", "images are 30 x 30", "--image-size 28 or --image-size 32"]),
    "corrupt_gzip": (["--train-images", "{corrupt_gz}"], ["corrupt_gz", "corrupt gzip stream"]),
    "npz_without_arrays": ("npz_dir", ["mnist.npz", "no array 'x_train'"]),
    "npz_damaged": ("bad_npz_dir", ["mnist.npz", "not a readable .npz file"]),
    "checkpoint_dir_under_a_file": (["--checkpoint-dir", "{a_file}/ckpt"], ["--checkpoint-dir", "is a file"]),
    "vis_dir_is_a_file": (["--vis-dir", "{a_file}"], ["--vis-dir", "is a file, not a folder"]),
}


def argv_for(case, files):
    extra, _ = CASES[case]
    if extra == "replace":
        return [a.format(**files) for a in ["--train-labels", "{labels}", "--valid-size", "0"]]
    if extra in ("npz_dir", "bad_npz_dir"):
        return ["--data-dir", files[extra], "--valid-size", "0"]
    argv = [a.format(**files) for a in OK]
    for flag, value in zip(extra[::2], extra[1::2]):
        value = value.format(**files)
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_one_line_exit_2_nothing_written(case, files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default --checkpoint-dir and --vis-dir are relative
    inputs_before = sorted(os.listdir(os.path.dirname(files["images"])))
    try:
        status = train.main(argv_for(case, files))
    except SystemExit as e:  # argparse's own errors
        status = e.code
    out, err = capsys.readouterr()
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for words in CASES[case][1]:
        assert words in lines[0], lines[0]
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == []
    assert sorted(os.listdir(os.path.dirname(files["images"]))) == inputs_before


def test_the_valid_case_of_the_table_trains(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(**files) for a in OK] + ["--max-iterations", "1"]
    argv[argv.index("--train-images") + 1] = files["images.gz"]  # gzip-wrapped IDX reads as well
    assert train.main(argv) == 0
    assert sorted(os.listdir(tmp_path)) == ["checkpoints", "vis"]


def test_bad_input_from_the_command_line_is_one_clean_line(files, tmp_path):
    """The real process: no TensorFlow start-up noise, no traceback, nothing written. One case, a damaged
    file: the table above checks every error's line in this process (bad flags among them), through
    the same error layer (cli.run)."""
    argv = ["--train-images", files["truncated"], "--train-labels", files["labels"]]
    done = subprocess.run([sys.executable, "-m", "dcgan_mnist.train", *argv],
                          capture_output=True, text=True, cwd=tmp_path, env=fr.env(), timeout=120)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "error:" in done.stderr and "Traceback" not in done.stderr
    assert os.listdir(tmp_path) == []
