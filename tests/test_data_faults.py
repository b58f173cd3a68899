"""Damaged data files and downloads: a fuzz of random corruptions, each of which must load
correctly or raise DataError (never another exception, never a hang), and a download that
reaches the cache only once its content checks out."""
import gzip
import hashlib
import io
import os
import random
import signal

import numpy as np
import pytest

from conftest import idx_bytes
from dcgan_mnist import data
from dcgan_mnist.data import DataError

N_CASES = 300  # per format; seeded, so a failure replays


def corrupt(raw, rng, header_size):
    """One random damage: bit flips, a truncation, a header edit, a splice, or junk appended."""
    raw = bytearray(raw)
    kind = rng.choice(["flip", "flips", "truncate", "header", "header_int", "splice", "append"])
    if kind == "flip":
        i = rng.randrange(len(raw))
        raw[i] ^= 1 << rng.randrange(8)
    elif kind == "flips":
        for _ in range(rng.randint(2, 20)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        raw = raw[:rng.randrange(len(raw))]
    elif kind == "header":
        raw[rng.randrange(min(header_size, len(raw)))] = rng.randrange(256)
    elif kind == "header_int":  # a whole dimension or length field replaced, huge values included
        at = rng.randrange(0, max(1, min(header_size, len(raw)) - 4))
        raw[at:at + 4] = rng.choice([0, 1, 27, 29, 2 ** 31, 2 ** 32 - 1, rng.randrange(2 ** 32)]).to_bytes(4, "big")
    elif kind == "splice":
        a, b = sorted(rng.randrange(len(raw)) for _ in range(2))
        del raw[a:b]
    else:
        raw += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(raw), kind


@pytest.fixture
def no_hang():
    """Any single load taking more than 20 s fails the test instead of hanging CI."""
    def alarm(*_):
        raise TimeoutError("a load hung")
    old = signal.signal(signal.SIGALRM, alarm)
    yield lambda: signal.alarm(20)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def check_outcome(load, outcomes, kind):
    try:
        images, labels = load()
    except DataError as e:
        assert str(e), "a DataError names what is wrong"
        outcomes["DataError"] = outcomes.get("DataError", 0) + 1
        return
    # Loaded: then it is a valid MNIST-like pair.
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28) and len(images) == len(labels)
    assert labels.min() >= 0 and labels.max() <= 9
    outcomes["loaded"] = outcomes.get("loaded", 0) + 1


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
def test_fuzzed_idx_loads_or_raises_data_error(tmp_path, no_hang, compressed):
    rng = random.Random(1234 + compressed)
    np_rng = np.random.default_rng(0)
    images = idx_bytes(np_rng.integers(0, 256, (12, 28, 28)))
    labels = idx_bytes(np_rng.integers(0, 10, 12))
    outcomes = {}
    for case in range(N_CASES):
        which = rng.choice(["images", "labels"])
        raw = images if which == "images" else labels
        if compressed:  # damage either the gzip stream or the IDX inside it
            if rng.random() < 0.5:
                raw, kind = corrupt(gzip.compress(raw), rng, 10)
            else:
                damaged, kind = corrupt(raw, rng, 16 if which == "images" else 8)
                raw = gzip.compress(damaged)
        else:
            raw, kind = corrupt(raw, rng, 16 if which == "images" else 8)
        paths = {}
        for name, content in (("images", images), ("labels", labels)):
            paths[name] = str(tmp_path / f"{name}-{case}")
            with open(paths[name], "wb") as f:
                f.write(raw if name == which else content)
        no_hang()
        check_outcome(lambda paths=paths: data.load_idx_pair(paths["images"], paths["labels"]), outcomes, kind)
        for p in paths.values():
            os.remove(p)
    assert outcomes.get("DataError", 0) > N_CASES // 2, outcomes


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflated"])
def test_fuzzed_npz_loads_or_raises_data_error(tmp_path, no_hang, compressed):
    rng = random.Random(99 + compressed)
    np_rng = np.random.default_rng(1)
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(
        buf, x_train=np_rng.integers(0, 256, (6, 28, 28)).astype(np.uint8), y_train=np_rng.integers(0, 10, 6),
        x_test=np_rng.integers(0, 256, (2, 28, 28)).astype(np.uint8), y_test=np_rng.integers(0, 10, 2))
    valid = buf.getvalue()
    outcomes = {}
    for case in range(N_CASES):
        raw, kind = corrupt(valid, rng, 128)  # a zip's first local header and the .npy header after it
        path = str(tmp_path / f"mnist-{case}.npz")
        with open(path, "wb") as f:
            f.write(raw)
        no_hang()
        check_outcome(lambda path=path: data.load_npz(path)[:2], outcomes, kind)
        os.remove(path)
    assert outcomes.get("DataError", 0) > N_CASES // 3, outcomes


# ---------------------------------------------------------------- download

@pytest.fixture
def origin(tmp_path, monkeypatch):
    """A local file:// origin serving a small valid IDX file, and an empty Keras cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    raw = idx_bytes(np.arange(10) % 10)
    src = tmp_path / "served" / "labels.gz"
    src.parent.mkdir()
    src.write_bytes(gzip.compress(raw))
    return "file://" + str(src), hashlib.sha256(raw).hexdigest()


def cache(tmp_path):
    folder = tmp_path / "keras" / "datasets"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_download_renamed_into_the_cache_once_checked(origin, tmp_path):
    url, sha = origin
    path = data._fetch("labels.gz", url, "datasets", sha)
    assert path == str(tmp_path / "keras" / "datasets" / "labels.gz")
    assert cache(tmp_path) == ["labels.gz"]
    assert data._fetch("labels.gz", "file:///nonexistent", "datasets", sha) == path  # cached: no download


def test_download_with_wrong_content_never_reaches_the_cache(origin, tmp_path):
    url, _ = origin
    with pytest.raises(DataError, match="fails its content check"):
        data._fetch("labels.gz", url, "datasets", "0" * 64)
    assert cache(tmp_path) == []


def test_interrupted_download_never_poisons_the_cache(origin, tmp_path):
    url, sha = origin
    folder = tmp_path / "keras" / "datasets"
    folder.mkdir(parents=True)
    (folder / "labels.gz.part").write_bytes(b"\x1f\x8b half a download")  # left by a kill -9
    (folder / "labels.gz").write_bytes(b"\x1f\x8b damaged")  # and a damaged cached copy
    with pytest.raises(DataError, match="cannot download"):
        data._fetch("labels.gz", "file:///nonexistent/labels.gz", "datasets", sha)
    assert (folder / "labels.gz").read_bytes() == b"\x1f\x8b damaged"  # not replaced by anything unchecked
    path = data._fetch("labels.gz", url, "datasets", sha)  # the next try downloads afresh
    assert cache(tmp_path) == ["labels.gz"]
    assert data.read_idx(path, 1).tolist() == list(np.arange(10) % 10)
