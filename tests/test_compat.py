"""Checkpoints written by an earlier version keep working: tests/data/checkpoint-0.1.0 is a run that
version 0.1.0 wrote through its command line (make.sh there says how), with the digits its generate
drew and the weights it reached when it resumed. This checkout's code must draw the same digits from
it and resume it to the same weights."""
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, call_main
from dcgan_mnist import generate, train

OLD = ROOT / "tests" / "data" / "checkpoint-0.1.0"
LEARNING_RATE = 0.05  # large, so that a wrong resume shows
EXPECTED = np.load(OLD / "expected.npz")
# The flags the old run was written with (make.sh there): its sizes are the run's, not the scaffold's.
FLAGS = ["--train-images", OLD / "data" / "images", "--train-labels", OLD / "data" / "labels", "--valid-size", "0",
         "--batch-size", "8", "--dim-w1", "32", "--dim-w2", "8", "--dim-w3", "8", "--seed", "3",
         "--learning-rate", str(LEARNING_RATE), "--step", "1000", "--visualize-dim", "16", "--log-every", "1000"]


@pytest.fixture
def old_run(tmp_path):
    """A copy of the old run's folder: the tests must not change the one in the repository."""
    shutil.copytree(OLD / "ckpt", tmp_path / "ckpt")
    return tmp_path / "ckpt"


@pytest.mark.parametrize("weights", ["average", "trained"])
def test_generate_draws_the_digits_the_old_version_drew(old_run, tmp_path, capsys, weights):
    out = tmp_path / "digits.npz"
    code, stdout, err = call_main(capsys, generate.main, "--checkpoint-dir", old_run, "--weights", weights,
                                  "--labels", "0123456789", "--n-per-label", "3", "--seed", "5", "--npz", out)
    assert code == 0, err
    drawn = np.load(out)
    np.testing.assert_array_equal(drawn["labels"], EXPECTED[f"{weights}/labels"])
    difference = np.abs(drawn["images"].astype(int) - EXPECTED[f"{weights}/images"]).max()
    assert difference <= 1, f"{weights}: pixels differ by up to {difference}/255 from version 0.1.0's"


def test_an_old_run_resumes_to_the_weights_the_old_version_reached(old_run, tmp_path, capsys):
    code, stdout, err = call_main(capsys, train.main, *FLAGS, "--checkpoint-dir", old_run,
                                  "--vis-dir", tmp_path / "vis", "--max-iterations", "9")
    assert code == 0, err
    assert f"resuming from {old_run}/ckpt-5 at iteration 5" in stdout
    reader = tf.train.load_checkpoint(str(old_run / "ckpt-9"))
    names = [k for k in EXPECTED if k.startswith("resumed/")]
    assert len(names) == 12  # the DCGAN's eight weights and the four averages
    # Equal to float rounding. Adam moves a weight by lr * m / sqrt(v) per iteration, at most about lr; float32
    # sums in another order (oneDNN's kernels differ by instruction set: AVX-512 or AVX2 only) change m / sqrt(v)
    # by its gradient's relative rounding error, large only where a gradient nearly cancels. A thousandth of
    # lr bounds it: measured 3e-7 on AVX-512, 1.9e-5 with AVX2's kernels (2 of 3,600 elements of discrim_W2).
    # A wrong resume (Adam's moments, the noise, the batches) moves weights by up to lr per iteration;
    # noise 0.1% off moves them 1.4e-4 and fails too.
    tolerance = 1e-3 * LEARNING_RATE
    for name in names:
        np.testing.assert_allclose(reader.get_tensor(name[len("resumed/"):] + "/.ATTRIBUTES/VARIABLE_VALUE"),
                                   EXPECTED[name], rtol=0, atol=tolerance, err_msg=name)
