"""The tests' one scaffold, a plain module (no pytest, no TensorFlow) so that conftest.py and the
subprocess drivers (fault_runner.py) share it: the one IDX writer, the one small model, random
digits drawn from a seed, the relative error tests compare with, and the flags of the one small
trained run (conftest's trained_run)."""
import gzip
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")

# The small model every test run trains: upstream's architecture, narrower layers, so a run takes
# seconds. As a dict for Config(**...) and as flags for a command line.
SMALL_MODEL = dict(dim_W1=16, dim_W2=8, dim_W3=8)
SMALL_FLAGS = ["--dim-w1", "16", "--dim-w2", "8", "--dim-w3", "8"]

# The trained run (conftest.trained_run): the small model, 64 random images of seed 3, batch 16,
# three iterations (D, G, D) with a checkpoint after each, an averaged generator (the default), and
# a noise size other than the default, so a tool that must read it from the run's record is seen to.
TRAINED_RUN_DIM_Z = 12
TRAINED_RUN_FLAGS = SMALL_FLAGS + ["--dim-z", str(TRAINED_RUN_DIM_Z), "--valid-size", "0", "--batch-size", "16",
                                   "--seed", "4", "--max-iterations", "3", "--checkpoint-every", "1",
                                   "--log-every", "100"]


def idx_bytes(array, magic=None):
    """An unsigned-byte IDX file's bytes for array: magic 0, 0, 8, ndim (or the magic given); big-endian
    uint32 dimensions; the bytes."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic or bytes([0, 0, 0x08, array.ndim])
    return magic + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()


def write_idx(path, array, gz=False):
    """array as an IDX file at path (gzipped if gz); returns the path."""
    raw = idx_bytes(array)
    path = pathlib.Path(path)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def random_digits(n, seed=0, labels="cycle"):
    """n random 28 x 28 uint8 images from seed, and labels: 0..9 in turn ("cycle") or random ("random")."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    return images, (np.arange(n) % 10 if labels == "cycle" else rng.integers(0, 10, size=n))


def write_random_pair(folder, seed, n=64, images="images", labels="labels"):
    """n random images with random labels from seed, as IDX files folder/images and folder/labels;
    returns the --train-images/--train-labels flags that train on them."""
    folder = pathlib.Path(folder)
    x, y = random_digits(n, seed, labels="random")
    write_idx(folder / images, x)
    write_idx(folder / labels, y)
    return ["--train-images", str(folder / images), "--train-labels", str(folder / labels)]


def relative_error(x, exact):
    """The Frobenius norm of x - exact relative to exact's, in float64."""
    exact = np.asarray(exact, np.float64)
    return float(np.linalg.norm(np.asarray(x, np.float64) - exact) / (np.linalg.norm(exact) or 1.0))
