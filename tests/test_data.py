"""IDX/npz reading of files the tests write, each bad file's error, the split and the pipeline."""
import gzip
import hashlib

import numpy as np
import pytest

from conftest import FASHION, SHARED_MNIST, idx_bytes, random_digits, write_idx
from dcgan_mnist import data
from dcgan_mnist.config import Config
from dcgan_mnist.data import DataError


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    images, labels = random_digits(7)
    write_idx(tmp_path / "i", images, gz=gz)
    write_idx(tmp_path / "l", labels, gz=gz)
    x, y = data.load_idx_pair(tmp_path / "i", tmp_path / "l")
    assert x.dtype == np.uint8 and x.shape == (7, 28, 28) and (x == images).all()
    assert (y == labels).all()


def test_counts_come_from_header_not_hardcoded(tmp_path):
    images, labels = random_digits(3)
    write_idx(tmp_path / "i", images)
    write_idx(tmp_path / "l", labels)
    assert data.load_idx_pair(tmp_path / "i", tmp_path / "l")[0].shape == (3, 28, 28)


def bad_files():
    images, labels = random_digits(10)
    good_i, good_l = idx_bytes(images), idx_bytes(labels)
    cases = {
        "wrong magic": (b"\x00\x00\x09\x03" + good_i[4:], good_l, "wrong magic number"),
        "labels as images": (good_l, good_l, "wrong number of dimensions"),
        "truncated": (good_i[:-100], good_l, "truncated"),
        "truncated header": (good_i[:9], good_l, "truncated"),
        "trailing bytes": (good_i + b"xx", good_l, "bytes after"),
        "count mismatch": (good_i, idx_bytes(labels[:9]), "has 10 images but"),
        "label 11": (good_i, idx_bytes(np.where(labels == 3, 11, labels)), "label 11 outside 0 to 9"),
        "corrupt gzip": (gzip.compress(good_i)[:-30], good_l, "corrupt gzip"),
        "empty": (b"", good_l, "truncated"),
    }
    return cases


BAD_FILES = bad_files()


def test_idx_images_of_any_size_load(tmp_path):
    """The size is the network's to judge (train.fit_settings: multiples of 4, tests/test_own_images.py)."""
    (tmp_path / "images.idx").write_bytes(idx_bytes(np.arange(10 * 14 * 18).reshape(10, 14, 18) % 256))
    (tmp_path / "labels.idx").write_bytes(idx_bytes(np.arange(10)))
    images, labels = data.load_idx_pair(tmp_path / "images.idx", tmp_path / "labels.idx")
    assert images.shape == (10, 14, 18) and labels.tolist() == list(range(10))


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_idx_files_give_clear_errors(tmp_path, case):
    img, lab, expected = BAD_FILES[case]
    (tmp_path / "images.idx").write_bytes(img)
    (tmp_path / "labels.idx").write_bytes(lab)
    with pytest.raises(DataError) as e:
        data.load_idx_pair(tmp_path / "images.idx", tmp_path / "labels.idx")
    message = str(e.value)
    assert expected in message
    assert "images.idx" in message or "labels.idx" in message  # names the file
    assert "\n" not in message


def test_npz_reading_and_missing_arrays(tmp_path):
    images, labels = random_digits(12)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images[:4], y_test=labels[:4])
    found = data.load_folder(tmp_path)
    assert found.train_images.shape == (12, 28, 28) and found.test_images.shape == (4, 28, 28)
    np.savez(tmp_path / "mnist.npz", x_train=images)
    with pytest.raises(DataError, match="no array 'y_train'"):
        data.load_folder(tmp_path)
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.load_folder(tmp_path)


def test_folder_with_only_one_training_file(tmp_path):
    images, _ = random_digits(4)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    with pytest.raises(DataError, match="not train-labels-idx1-ubyte"):
        data.load_folder(tmp_path)


def test_empty_folder_offline_with_dataset_asked_for_says_what_to_put_where(tmp_path, monkeypatch):
    def offline(dataset):
        raise DataError("cannot download https://example.invalid/mnist.npz (URLError: offline)")
    monkeypatch.setattr(data, "download", offline)
    cfg = Config(data_dir=str(tmp_path), dataset="mnist")  # asked for: no stand-in (test_pretrained.py)
    with pytest.raises(DataError) as e:
        data.load_dataset(cfg)
    msg = str(e.value)
    assert str(tmp_path) in msg and "train-images-idx3-ubyte" in msg and "--train-images" in msg


def test_download_goes_through_part_file_and_content_check(tmp_path, monkeypatch):
    """An interrupted or wrong download never lands under the final name."""
    images, labels = random_digits(5)
    src = tmp_path / "src.npz"
    np.savez(src, x_train=images, y_train=labels)
    good_sha = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    calls = []

    def fake_get_file(fname, origin, cache_subdir, cache_dir, **kw):
        calls.append(fname)
        target = tmp_path / "keras" / cache_subdir / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())
        return str(target)

    import keras
    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    with pytest.raises(DataError, match="fails its content check"):
        data._fetch("mnist.npz", "https://example.invalid/mnist.npz", "datasets", "0" * 64)
    assert not (tmp_path / "keras" / "datasets" / "mnist.npz").exists()
    assert not (tmp_path / "keras" / "datasets" / "mnist.npz.part").exists()
    path = data._fetch("mnist.npz", "https://example.invalid/mnist.npz", "datasets", good_sha)
    assert path.endswith("mnist.npz") and calls == ["mnist.npz.part", "mnist.npz.part"]
    data._fetch("mnist.npz", "https://example.invalid/mnist.npz", "datasets", good_sha)
    assert len(calls) == 2  # cached and checked: no second download


def test_split_is_seeded_and_holds_out_the_last(tmp_path):
    images, labels = random_digits(50)
    a = data.mnist_with_valid_set(images, labels, 10, seed=3)
    b = data.mnist_with_valid_set(images, labels, 10, seed=3)
    c = data.mnist_with_valid_set(images, labels, 10, seed=4)
    assert a[0].shape == (40, 28, 28) and a[1].shape == (10, 28, 28)
    assert all((x == y).all() for x, y in zip(a, b))
    assert not (a[0] == c[0]).all()
    together = np.concatenate([a[0], a[1]]).reshape(50, -1)
    assert sorted(map(bytes, together)) == sorted(map(bytes, images.reshape(50, -1)))


def test_pipeline_scales_and_drops_only_the_partial_batch():
    images, labels = random_digits(40)
    batches = list(data.training_batches(images, labels, 8, seed=1, epoch=0))
    assert len(batches) == 5  # 40 % 8 == 0: upstream's zip would have given 4
    x, y = batches[0]
    assert x.shape == (8, 28, 28, 1) and x.dtype.name == "float32" and y.dtype.name == "int32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    order = data.epoch_order(40, 1, 0)
    np.testing.assert_allclose(x.numpy()[..., 0], images[order[:8]] / 255.0, rtol=1e-6)
    assert len(list(data.training_batches(images[:39], labels[:39], 8, 1, 0))) == 4
    skipped = list(data.training_batches(images, labels, 8, seed=1, epoch=0, skip=3))
    assert len(skipped) == 2 and (skipped[0][1].numpy() == batches[3][1].numpy()).all()
    # tf.data's autotuning thread made freeing an iterator wait up to a minute (data.without_autotune)
    assert data.training_batches(images, labels, 8, seed=1, epoch=0).options().autotune.enabled is False


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST files not found at {SHARED_MNIST}")
def test_real_mnist_test_set_reads_and_checks_out():
    x, y = data.load_idx_pair(SHARED_MNIST / "t10k-images-idx3-ubyte.gz", SHARED_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(x.mean() - 33.79) < 0.01
    labels = data.read_idx(SHARED_MNIST / "train-labels-idx1-ubyte.gz", 1)
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_found_in_debian_folder(tmp_path):
    found = data.load_dataset(Config(dataset="fashion_mnist", data_dir=str(tmp_path / "none")))
    assert found.train_images.shape == (60000, 28, 28) and found.test_images.shape == (10000, 28, 28)
    assert np.bincount(found.train_labels).tolist() == [6000] * 10
    assert found.source == str(FASHION)
