"""MNIST-style data: IDX and npz reading, validation, download, splits, the tf.data pipeline.

Upstream's load.py read four raw IDX files from data/ with 60000 / 10000 hard-coded. Here counts
and shapes come from the files' own headers, every file is checked, and a malformed one raises
DataError with a one-line message naming the file and what is wrong.
"""
import gzip
import hashlib
import math
import os
import zlib
from typing import NamedTuple, Optional

import keras
import numpy as np
import tensorflow as tf

from dcgan_mnist import imagefolder
from dcgan_mnist.cli import DataError
from dcgan_mnist.config import N_LABELS

# IDX: a 4-byte magic (0, 0, type code, number of dimensions), one big-endian uint32 per
# dimension, then the data. MNIST files are unsigned bytes (type code 0x08).
IDX_UBYTE = 0x08
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# Where each dataset comes from when no local files are found. Content checks are SHA-256 of the
# uncompressed arrays' files, so any gzip wrapper of the same data passes.
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # Keras's mnist.npz
FASHION_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
# MNIST's 10,000 test digits, installed with the package (--dataset mnist_test; digits/README.md says
# whose they are), so that the main job trains on real digits on a machine with no network.
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits")
SHIPPED_SHA256 = {
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SHIPPED_SOURCE = "MNIST's 10,000 test digits shipped with dcgan_mnist"


class Dataset(NamedTuple):
    train_images: np.ndarray           # uint8 [N, H, W] (grey) or [N, H, W, 3] (colour); MNIST: [N, 28, 28]
    train_labels: np.ndarray           # int64 [N], 0..9 (an image folder's: 0..classes - 1)
    test_images: Optional[np.ndarray]  # the test pair, when present
    test_labels: Optional[np.ndarray]
    source: str                        # where it was read from, for the log
    name: Optional[str] = None         # --dataset it is (run.json records it), when it is one of them
    fallback: Optional[str] = None     # why the shipped digits stand in for the data asked for
    class_names: Optional[tuple] = None  # an image folder's classes, label 0 first; None: the digits
    notes: tuple = ()                  # what was done to the images (resized, converted), for the log


# ---------------------------------------------------------------- reading and checking

def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip stream ({e})") from None
    return raw


def read_idx(path, ndim, sha256=None):
    """Read an unsigned-byte IDX file with ndim dimensions (raw or gzip) into a uint8 array; with
    sha256, only if its (uncompressed) content has that hash."""
    raw = _read_bytes(path)
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(f"{path}: damaged: its content fails its SHA-256 check; reinstall dcgan-mnist")
    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, not even an IDX header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE:
        raise DataError(f"{path}: wrong magic number 0x{raw[:4].hex()}: expected 0x000008{ndim:02x} "
                        f"(an unsigned-byte IDX file)")
    if raw[3] != ndim:
        raise DataError(f"{path}: wrong number of dimensions {raw[3]}: expected {ndim} "
                        f"({'images' if ndim == 3 else 'labels'})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated: the header needs {header} bytes, the file has {len(raw)}")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    size = math.prod(dims)  # Python ints: a damaged header cannot overflow into a plausible size
    if len(raw) - header < size:
        raise DataError(f"{path}: truncated: header says {' x '.join(map(str, dims))} = {size} bytes of "
                        f"data, the file has {len(raw) - header}")
    if len(raw) - header > size:
        raise DataError(f"{path}: {len(raw) - header - size} bytes after the {size} the header declares")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def check_pair(images, labels, images_name, labels_name, n_labels=N_LABELS):
    """Check an image array and its labels 0 to n_labels - 1; return (uint8 [N, H, W] or [N, H, W, 3],
    int64 [N]). Any size: whether the network takes it is checked against the run's settings (train.py)."""
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise DataError(f"{images_name}: images must be [N, H, W] (grey) or [N, H, W, 3] (colour), got shape "
                        f"{images.shape}")
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if images.dtype != np.uint8:
        raise DataError(f"{images_name}: images must be uint8 pixels, got {images.dtype}")
    if labels.ndim != 1:
        raise DataError(f"{labels_name}: labels must have 1 dimension, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{labels_name}: labels must be integers, got {labels.dtype}")
    if len(images) != len(labels):
        raise DataError(f"{images_name} has {len(images)} images but {labels_name} has {len(labels)} labels")
    if len(labels) == 0:
        raise DataError(f"{images_name}: no images")
    if labels.min() < 0 or labels.max() >= n_labels:
        bad = labels[(labels < 0) | (labels >= n_labels)][0]
        raise DataError(f"{labels_name}: label {bad} outside 0 to {n_labels - 1} (labels range from {labels.min()} "
                        f"to {labels.max()})")
    return images, labels.astype(np.int64)


def load_idx_pair(images_path, labels_path, sha256=None):
    """sha256: {file name without .gz: hash} of the files' content, when it is known."""
    sha256 = sha256 or {}
    return check_pair(read_idx(images_path, 3, sha256.get(_stem(images_path))),
                      read_idx(labels_path, 1, sha256.get(_stem(labels_path))), images_path, labels_path)


def _stem(path):
    name = os.path.basename(path)
    return name[:-3] if name.endswith(".gz") else name


def load_shipped(fallback=None):
    """The 10,000 digits shipped with the package, checked against their SHA-256 sums."""
    paths = [os.path.join(SHIPPED_DIR, n + ".gz") for n in TEST_FILES]
    return Dataset(*load_idx_pair(*paths, sha256=SHIPPED_SHA256), None, None, source=SHIPPED_SOURCE,
                   name="mnist_test", fallback=fallback)


MNIST_NPZ = (("x_train", "y_train"), ("x_test", "y_test"))  # Keras's mnist.npz, the test pair optional
MNIST_NPZ_HOLDS = "an mnist.npz holds x_train, y_train, x_test, y_test"


def read_npz(path, keys, where=None):
    """{key: array} of the arrays named keys that the .npz file holds (those it has); DataError
    naming where (default: path) when it is no readable .npz."""
    where = where or path
    try:
        with open(path, "rb") as head:
            magic = head.read(6)
    except OSError as e:
        raise DataError(f"{where}: cannot read: {e.strerror or e}") from None
    # Neither a zip (an .npz) nor an .npy: np.load would try pickle and say so, unhelpfully.
    if not magic.startswith(b"PK") and magic != b"\x93NUMPY":
        raise DataError(f"{where}: not an .npz file (an .npz is a zip archive of arrays)")
    try:
        f = np.load(path, allow_pickle=False)
        if isinstance(f, np.lib.npyio.NpzFile):
            with f:  # reading an array can fail too: a damaged member, a pickled object array
                return {key: f[key] for key in keys if key in f.files}
    except Exception as e:  # a damaged archive fails in many ways: BadZipFile, zlib.error, EOFError, ValueError...
        raise DataError(f"{where}: not a readable .npz file ({type(e).__name__}: {' '.join(str(e).split())})") from None
    raise DataError(f"{where}: one array (an .npy file), not an .npz of named arrays")


def load_npz(path, pairs=MNIST_NPZ, where=None, holds=MNIST_NPZ_HOLDS):
    """The (images, labels) pairs of an .npz file, each checked (check_pair), in one tuple: by default
    a Keras-style mnist.npz's x_train, y_train and x_test, y_test ((None, None) when absent). The
    first pair is required: DataError naming where (default: path) and what the file `holds` if not."""
    where = where or path
    arrays = read_npz(path, [key for pair in pairs for key in pair], where)
    for key in pairs[0]:
        if key not in arrays:
            raise DataError(f"{where}: no array '{key}' ({holds})")
    loaded = ()
    for images, labels in pairs:
        present = images in arrays and labels in arrays
        loaded += check_pair(arrays[images], arrays[labels], f"{where}[{images}]", f"{where}[{labels}]") \
            if present else (None, None)
    return loaded


def _find(folder, name):
    """The path of IDX file `name` in folder, raw or .gz, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def load_folder(folder):
    """IDX files (raw or .gz) or an mnist.npz in folder -> Dataset, or None if it has neither."""
    train = [_find(folder, n) for n in TRAIN_FILES]
    if all(train):
        test = [_find(folder, n) for n in TEST_FILES]
        test_pair = load_idx_pair(*test) if all(test) else (None, None)
        return Dataset(*load_idx_pair(*train), *test_pair, source=folder)
    npz = os.path.join(folder, "mnist.npz")
    if os.path.isfile(npz):
        return Dataset(*load_npz(npz), source=npz)
    if any(train):
        have, lack = (train[0], TRAIN_FILES[1]) if train[0] else (train[1], TRAIN_FILES[0])
        raise DataError(f"{folder}: has {os.path.basename(have)} but not {lack}[.gz]")
    return None


# ---------------------------------------------------------------- download

def _keras_home():
    return os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras"))


def _content_matches(path, sha256):
    """True when the file's (uncompressed) content has this SHA-256; a damaged gzip does not."""
    try:
        return hashlib.sha256(_read_bytes(path)).hexdigest() == sha256
    except DataError:
        return False


def _fetch(fname, origin, cache_subdir, sha256):
    """keras.utils.get_file into a .part name, renamed only once its content checks out, so an
    interrupted or damaged download never poisons the cache."""
    final = os.path.join(_keras_home(), cache_subdir, fname)
    if os.path.isfile(final) and _content_matches(final, sha256):
        return final
    try:  # get_file falls back to /tmp/.keras when the cache folder does not exist yet
        os.makedirs(os.path.dirname(final), exist_ok=True)
    except OSError:
        pass
    try:
        # force_download: get_file would take a .part left by a killed download as complete.
        part = keras.utils.get_file(fname + ".part", origin=origin, cache_subdir=cache_subdir,
                                    cache_dir=_keras_home(), force_download=True)
    except Exception as e:
        raise DataError(f"cannot download {origin} ({type(e).__name__}: {e})") from None
    if not _content_matches(part, sha256):
        os.remove(part)
        raise DataError(f"{origin}: downloaded file fails its content check; removed, try again")
    final = os.path.join(os.path.dirname(part), fname)  # where get_file wrote (it may fall back to /tmp)
    os.replace(part, final)
    return final


def download(dataset):
    if dataset == "mnist":
        path = _fetch("mnist.npz", KERAS_ORIGIN + "mnist.npz", "datasets", MNIST_NPZ_SHA256)
        return Dataset(*load_npz(path), source=path)
    paths = {n: _fetch(n + ".gz", KERAS_ORIGIN + n + ".gz", "datasets/fashion-mnist", FASHION_SHA256[n])
             for n in TRAIN_FILES + TEST_FILES}
    return Dataset(*load_idx_pair(*(paths[n] for n in TRAIN_FILES)),
                   *load_idx_pair(*(paths[n] for n in TEST_FILES)), source="Fashion-MNIST (downloaded)")


def load_dataset(cfg):
    """The data a run trains on, by the flags (load_by_flags), resized and converted where
    --image-size and --dim-channel ask (an image folder's images are, as they are decoded)."""
    dataset = load_by_flags(cfg)
    if cfg.image_folder is not None:
        return dataset
    train, notes = imagefolder.fit_images(dataset.train_images, cfg.image_size, cfg.dim_channel)
    test = dataset.test_images
    if test is not None:  # held out, and so the same as the training images
        test, _ = imagefolder.fit_images(test, cfg.image_size, cfg.dim_channel)
    return dataset._replace(train_images=train, test_images=test, notes=tuple(notes))


def load_by_flags(cfg):
    """--image-folder; --train-images/--train-labels; --dataset mnist_test, the shipped digits; else
    --data-dir, else (Fashion-MNIST) Debian's dataset-fashion-mnist, else a download; when that fails
    too and no --dataset was asked for, the shipped digits."""
    if cfg.image_folder is not None:
        found = imagefolder.load_image_folder(cfg.image_folder, cfg.image_size, cfg.dim_channel)
        return Dataset(found.images, found.labels, None, None, source=cfg.image_folder,
                       class_names=found.class_names, notes=found.notes)
    name = cfg.dataset or "mnist"
    if cfg.train_images is not None:
        return Dataset(*load_idx_pair(cfg.train_images, cfg.train_labels), None, None,
                       source=f"{cfg.train_images}, {cfg.train_labels}", name=name)
    if name == "mnist_test":
        return load_shipped()
    if os.path.isdir(cfg.data_dir):
        found = load_folder(cfg.data_dir)
        if found is not None:
            return found._replace(name=name)
    if name == "fashion_mnist" and os.path.isdir(DEBIAN_FASHION_DIR):
        found = load_folder(DEBIAN_FASHION_DIR)
        if found is not None:
            return found._replace(name=name)
    try:
        return download(name)._replace(name=name)
    except DataError as e:
        if cfg.dataset is None:  # nothing asked for: train on the digits at hand rather than stop
            return load_shipped(fallback=(
                f"data: no MNIST training files in --data-dir {cfg.data_dir} and no download ({e}); training on "
                f"{SHIPPED_SOURCE} (--dataset mnist_test) instead; for the full 60,000, put MNIST's files in "
                f"{cfg.data_dir}/ or run again with a network"))
        raise DataError(
            f"no training data in --data-dir {cfg.data_dir} and the download failed ({e}); put "
            f"{TRAIN_FILES[0]}[.gz] and {TRAIN_FILES[1]}[.gz] (or mnist.npz) in {cfg.data_dir}/, "
            f"or pass --train-images FILE --train-labels FILE") from None


def fingerprint(images, labels, class_names=None):
    """A short hash of the training data, so a run never resumes on other data by mistake: the pixels,
    the labels and, for an image folder, the names the labels stand for."""
    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
    if class_names is not None:  # digit data hash as before, so their runs keep resuming
        h.update("\0".join(class_names).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- splits and pipeline

def mnist_with_valid_set(images, labels, valid_size, seed):
    """Upstream's split with its shuffle seeded: the last valid_size of a shuffled copy are held
    out for validation. Returns (trX, vaX, trY, vaY)."""
    order = np.random.default_rng(seed).permutation(len(images))
    images, labels = images[order], labels[order]
    n_train = len(images) - valid_size
    return images[:n_train], images[n_train:], labels[:n_train], labels[n_train:]


class Split(NamedTuple):
    """A run's data as train.py splits it: the training split, and the held-out images that neither
    the GAN nor the evaluation's classifier trains on (the validation split, then the data's test set
    when it has one)."""
    train_images: np.ndarray
    train_labels: np.ndarray
    held_images: np.ndarray
    held_labels: np.ndarray
    source: str      # where the data were read from
    valid_size: int  # how many of the held-out images are the validation split


def split_run(dataset, valid_size, seed):
    """The Split of a Dataset by a run's --valid-size and seed (mnist_with_valid_set)."""
    trX, vaX, trY, vaY = mnist_with_valid_set(dataset.train_images, dataset.train_labels, valid_size, seed)
    if dataset.test_images is not None:
        vaX = np.concatenate([vaX, dataset.test_images])
        vaY = np.concatenate([vaY, dataset.test_labels])
    return Split(trX, trY, vaX, vaY, dataset.source, valid_size)


def epoch_order(n, seed, epoch):
    """The shuffle of one epoch: a function of (seed, epoch) only, so a resumed run replays it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def training_batches(images, labels, batch_size, seed, epoch, skip=0):
    """The epoch's batches after the first `skip`: (float32 images [B, H, W, C] in [0, 1],
    int32 labels [B]). images: uint8 [N, H, W] or [N, H, W, 3], labels [N], numpy or tensors; train.py passes
    tensors made once (as_tensors) so that every epoch reads the same single copy. Images stay
    uint8 until this pipeline scales them; only the trailing partial batch is dropped (upstream's
    zip dropped a full one more when N % B == 0)."""
    order = epoch_order(len(images), seed, epoch)
    order = order[skip * batch_size:(len(images) // batch_size) * batch_size]
    ds = tf.data.Dataset.from_tensor_slices(order.astype(np.int64)).batch(batch_size, drop_remainder=True)
    images_t, labels_t = as_tensors(images, labels)

    def gather(idx):
        x = tf.cast(tf.gather(images_t, idx), tf.float32) / 255.0
        return (x[..., None] if len(x.shape) == 3 else x), tf.gather(labels_t, idx)

    return without_autotune(ds.map(gather).prefetch(1))  # a gather of one batch: microseconds


def without_autotune(ds):
    """ds without tf.data's autotuning thread. In TensorFlow 2.21, freeing an iterator waits for that
    thread's current sleep (up to a minute) to end, and every epoch's iterator is freed: a run can
    sit idle that long at an epoch's end (docs/speed.md)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def as_tensors(images, labels):
    """(uint8 images, int32 labels) as tensors; tensors already are pass through uncopied."""
    return tf.convert_to_tensor(images, tf.uint8), tf.cast(tf.convert_to_tensor(labels), tf.int32)
