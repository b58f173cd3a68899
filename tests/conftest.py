"""Shared test helpers: small IDX files the tests write themselves, and a small model."""
import gzip
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

import fault_runner as fr

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")

# A model small enough that a test run takes seconds; same architecture, narrower layers.
SMALL_MODEL = dict(dim_W1=32, dim_W2=8, dim_W3=8)
SMALL_FLAGS = ["--dim-w1", "32", "--dim-w2", "8", "--dim-w3", "8"]


def idx_bytes(array, ndim=None):
    """An unsigned-byte IDX file's bytes for array."""
    array = np.asarray(array, dtype=np.uint8)
    ndim = array.ndim if ndim is None else ndim
    header = bytes([0, 0, 0x08, ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path, array, gz=False):
    raw = idx_bytes(array)
    path = pathlib.Path(path)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_random_pair(folder, seed):
    """64 random images with random labels as IDX files folder/images, folder/labels; returns the
    --train-images/--train-labels flags that train on them."""
    rng = np.random.default_rng(seed)
    write_idx(folder / "images", rng.integers(0, 256, size=(64, 28, 28)))
    write_idx(folder / "labels", rng.integers(0, 10, size=64))
    return ["--train-images", str(folder / "images"), "--train-labels", str(folder / "labels")]


def random_digits(n, seed=0):
    """n random 28 x 28 uint8 images and labels covering 0..9."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n) % 10


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
    """Run python -m dcgan_mnist.<module> in a subprocess; returns CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", f"dcgan_mnist.{module}", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """fault_runner's tiny data set, once per test module."""
    folder = tmp_path_factory.mktemp("data")
    fr.tiny_data(folder)
    return str(folder)


def free_ports(n):
    """n free TCP ports on 127.0.0.1, for the workers of a multi-worker run."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def call_main(capsys, main, *argv):
    """A command's main(argv) in this process: (exit status, stdout, stderr); argparse's
    SystemExit counts as the status."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
