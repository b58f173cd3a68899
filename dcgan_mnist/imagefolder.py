"""A folder of labelled images as training data: --image-folder DIR.

DIR holds one subfolder per class. The classes are the subfolders' names in sorted order (label 0 is
the first), as keras.utils.image_dataset_from_directory numbers them. Inside DIR:
- an image is a file ending in .png, .jpg, .jpeg, .bmp or .gif (any case), at any depth inside a
  class folder (nested folders belong to their class, as in Keras and torchvision's ImageFolder);
  other files are passed over, and the run's log says how many;
- names starting with '.' are hidden and skipped, files and folders alike (.DS_Store,
  .ipynb_checkpoints, and macOS's ._x.jpg, which end in .jpg but are no images);
- a file at the top of DIR is in no class: passed over (the log names it if it is an image);
- symbolic links are followed, to files and to folders; a broken one, or a folder that links back
  to a folder holding it, is an error naming it.
Images are read in sorted order (classes, then paths within a class), so the same folder always
gives the same array and the same data.fingerprint.

Size and channels come from the images unless image_size / dim_channel are given:
- sizes: every image must be the size of the first, a multiple of 4 in height and width (the
  network halves them twice); with image_size, every image of another size is resized with Pillow's
  LANCZOS filter and reducing_gap None: antialiased (each output pixel weighs every input pixel
  under it), exact (no JPEG draft mode, no two-step reduction). Another aspect ratio is stretched,
  as Keras's image_dataset_from_directory does by default.
- channels: 1 when every image is grey (Pillow modes 1, L, LA, I;16 and I, a palette of greys), else
  3, the grey images converted to colour (R = G = B). dim_channel 1 turns colour into grey by
  Pillow's ITU-R 601-2 luma, L = 0.299 R + 0.587 G + 0.114 B. An RGB file is colour even when its
  pixels are grey: its mode, not its content, decides, and the log says --dim-channel 1 makes it grey.
- alpha is dropped, as Keras's decode_image(channels=3) and ImageFolder's convert("RGB") drop it:
  a transparent pixel shows the colour it stores. 16-bit grey is scaled to 8 bits (value / 257,
  rounded); GIFs give their first frame; EXIF orientation is not applied (nor is it by Keras).

Memory: the decoded array is uint8 [N, H, W] or [N, H, W, 3], N x H x W x C bytes: 60,000 28 x 28
grey images take 47 MB, 50,000 32 x 32 colour images 154 MB. Images are decoded straight into it;
when the first image is grey and a later one colour, the grey array is widened once (a moment at
4/3 of the final size) and the colour images decoded again into it.

Speed: Pillow decodes, on IMAGE_WORKERS threads for images of PARALLEL_PIXELS or more (before or after
a resize); it lets go of the GIL while it decodes, converts and resizes, so large images decode in
parallel. A 28 x 28 PNG costs about 0.1 ms of CPU, most of it Pillow's Python code around its decoder,
which holds the GIL, so small images are decoded on one thread: a second one, fighting for the GIL,
took 60,000 of them from 7 s to 12 s (python scripts/benchmark.py load; docs/measurements.md).
"""
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from PIL import Image

from dcgan_mnist.cli import DataError
from dcgan_mnist.config import image_size_problem, size_flag

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
CHUNK = 256  # images a thread decodes per task: few enough tasks that handing them out costs nothing
IMAGE_WORKERS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))
PARALLEL_PIXELS = 64 * 64  # smaller images (read or resized to) decode on one thread: see Speed above


class Folder(NamedTuple):
    images: np.ndarray   # uint8 [N, H, W] (grey, dim_channel 1) or [N, H, W, 3] (colour)
    labels: np.ndarray   # int64 [N]: index of the class in class_names
    class_names: tuple   # the class subfolders' names, sorted (label 0 is the first)
    notes: tuple         # lines for the run's log: what was passed over, resized, converted


def _count(n, thing):
    return f"{n:,} {thing}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------- requests and sizes

def check_size(height, width, where):
    """DataError naming where unless height x width suits the network (config.image_size_problem)."""
    problem = image_size_problem((height, width))
    if problem:
        raise DataError(f"{where}: images are {height} x {width} (height x width); {problem} resizes them")


def _requested_size(image_size):
    """image_size (N, (N,) or (H, W)) as (H, W), or None; DataError naming --image-size if the network cannot
    take it."""
    if image_size is None:
        return None
    size = tuple(image_size) if isinstance(image_size, (tuple, list, np.ndarray)) else (image_size,)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size):
        raise DataError(f"--image-size {' '.join(map(str, size))}: give one size N (N x N) or two, H W")
    height, width = (int(s) for s in size)
    problem = image_size_problem((height, width))
    if problem:
        raise DataError(f"{size_flag(height, width)}: {problem} would do")
    return height, width


def _requested_channels(dim_channel):
    if dim_channel not in (None, 1, 3):
        raise DataError(f"--dim-channel {dim_channel}: must be 1 (grey) or 3 (colour)")
    return dim_channel


# ---------------------------------------------------------------- finding the images

def _entries(folder):
    """The folder's os.DirEntry list, hidden names left out, sorted by name."""
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as e:
        raise DataError(f"{folder}: cannot read this folder: {e.strerror or e}") from None


def _is_image_name(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _kind(entry):
    """'folder', 'file' or 'other' (a socket, a fifo); DataError for a broken symbolic link or a loop."""
    try:
        if entry.is_dir():
            return "folder"
        if entry.is_file():
            return "file"
        if entry.is_symlink():
            os.stat(entry.path)  # raises: the link points nowhere (or round in a circle)
    except OSError as e:
        raise DataError(f"{entry.path}: a broken symbolic link to {os.readlink(entry.path)} ({e.strerror or e}); "
                        "remove it or mend it") from None
    return "other"


def _class_files(folder, ancestors=()):
    """(images, count of other files) in folder and the folders inside it, in sorted path order."""
    try:
        stat = os.stat(folder)
    except OSError as e:
        raise DataError(f"{folder}: cannot read this folder: {e.strerror or e}") from None
    here = (stat.st_dev, stat.st_ino)
    if here in ancestors:
        raise DataError(f"{folder}: a symbolic link to a folder that holds it (a loop); remove it")
    images, others = [], 0
    for entry in _entries(folder):
        kind = _kind(entry)
        if kind == "folder":
            found, more = _class_files(entry.path, ancestors + (here,))
            images += found
            others += more
        elif kind == "file" and _is_image_name(entry.name):
            images.append(entry.path)
        else:
            others += 1
    return images, others


def _scan(root):
    """(class names, image paths, labels, notes) of --image-folder root."""
    if not os.path.isdir(root):
        what = "not a folder" if os.path.exists(root) else "no such folder"
        raise DataError(f"--image-folder {root}: {what} (it must hold one subfolder of images per class)")
    classes, stray = [], []
    for entry in _entries(root):
        kind = _kind(entry)
        if kind == "folder":
            classes.append(entry.name)
        elif kind == "file" and _is_image_name(entry.name):
            stray.append(entry.name)
    if len(classes) < 2:
        found = f"{_count(len(classes), 'subfolder')}" + (f" ({classes[0]})" if classes else "")
        if stray:
            found += f" and {_count(len(stray), 'image')} at its top, in no class"
        raise DataError(f"--image-folder {root}: {'empty' if not (classes or stray) else found}; it must hold one "
                        f"subfolder of images per class, at least two classes")
    paths, labels, others = [], [], 0
    for label, name in enumerate(classes):
        found, more = _class_files(os.path.join(root, name))
        if not found:
            raise DataError(f"{os.path.join(root, name)}: no images in this class folder (images end in "
                            f"{', '.join(IMAGE_EXTENSIONS)}); add some or remove the folder")
        paths += found
        labels += [label] * len(found)
        others += more
    notes = []
    if stray:
        notes.append(f"passed over {_count(len(stray), 'image')} at the top of --image-folder {root}, in no class "
                     f"subfolder: {', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''}")
    if others:
        notes.append(f"passed over {_count(others, 'file')} in the class folders that {'is' if others == 1 else 'are'} "
                     f"not {', '.join(IMAGE_EXTENSIONS)} by name")
    return tuple(classes), paths, np.array(labels, dtype=np.int64), notes


# ---------------------------------------------------------------- one image

def is_grey(im):
    """Whether a Pillow image is grey by its mode: grey modes, and palettes whose every colour is a grey."""
    if im.mode in GREY_MODES:
        return True
    if im.mode in ("P", "PA"):
        palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    return False


class _Target(NamedTuple):
    size: tuple   # (H, W) of the array
    resize: bool  # resize an image of another size (image_size given); else it is an error
    grey: bool    # the array is grey
    convert: bool  # convert an image to the array's channels (dim_channel given, or the array is colour)


def _fit(im, target, done):
    """A loaded Pillow image as a uint8 array of the target's size and channels; what that took is counted in
    done (a Counter). ValueError for a colour mode Pillow cannot convert."""
    grey = is_grey(im)
    if im.mode.startswith("I") or im.mode == "F":
        # Pillow's own conversion would clip a 16-bit value at 255, not scale it.
        im = Image.fromarray(np.clip(np.rint(np.asarray(im, dtype=np.float64) / 257), 0, 255).astype(np.uint8))
        done["16-bit"] += 1
    if "A" in im.mode or "a" in im.mode or "transparency" in im.info:
        done["alpha"] += 1
        if im.mode in ("P", "PA"):  # a palette's transparency goes through RGBA, or Pillow warns
            im = im.convert("RGBA")
    mode = "L" if target.grey else "RGB"
    if im.mode != mode:
        if grey != target.grey:
            done["colour to grey" if target.grey else "grey to colour"] += 1
        try:
            im = im.convert(mode)
        except ValueError as e:
            raise ValueError(f"its colour mode {im.mode} cannot be converted to {mode}: {e}") from None
    if im.size != target.size[::-1]:
        done["resized"] += 1
        im = im.resize(target.size[::-1], Image.Resampling.LANCZOS, reducing_gap=None)
    return np.asarray(im)


def _read_into(path, out, i, target, done):
    """Decode the image at path into out[i]: None, or why not: ("colour", None) for a colour image the target
    leaves to later, ("size", (H, W)), ("bad", why)."""
    try:
        im = Image.open(path)
    except Exception as e:  # Pillow fails in many ways on a damaged file: OSError, SyntaxError, ValueError...
        return "bad", f"{type(e).__name__}: {e}"
    with im:
        if im.size != target.size[::-1] and not target.resize:
            return "size", im.size[::-1]
        if not target.convert and not is_grey(im):
            return "colour", None
        try:
            im.load()  # the pixels: a truncated or corrupt file fails here
        except Exception as e:
            return "bad", f"{type(e).__name__}: {e}"
        try:
            out[i] = _fit(im, target, done)
        except ValueError as e:
            return "bad", str(e)
    return None


def _read_chunk(paths, indices, out, target):
    """Decode paths[indices] into out: (counts of what was done, indices of colour images left out, first problem)."""
    done, colour = Counter(), []
    for i in indices:
        problem = _read_into(paths[i], out, i, target, done)
        if problem and problem[0] == "colour":
            colour.append(i)
        elif problem:
            return done, colour, (i, problem)
    return done, colour, None


# ---------------------------------------------------------------- all the images

def _decode_all(paths, indices, out, target, workers):
    """_read_chunk over indices, chunk by chunk on `workers` threads: (counts, colour indices), or the
    first problem's DataError (by index order: the same folder fails the same way), the rest left undone."""
    chunks = [indices[i:i + CHUNK] for i in range(0, len(indices), CHUNK)]
    done, colour = Counter(), []
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(_read_chunk, paths, chunk, out, target) for chunk in chunks]
        for future in futures:
            counts, more, problem = future.result()
            if problem:
                pool.shutdown(cancel_futures=True)
                raise _problem(paths, target, *problem)
            done.update(counts)
            colour += more
    return done, colour


def _problem(paths, target, i, problem):
    kind, detail = problem
    if kind == "size":
        (h, w), (H, W) = detail, target.size
        return DataError(f"{paths[i]} is {h} x {w} but {paths[0]} is {H} x {W} (height x width): the images must "
                         f"all be one size; --image-size resizes them to one")
    return DataError(f"{paths[i]}: cannot read it as an image ({detail})")


def _first(path, size, channels):
    """The target of a folder whose first image is at path (its size and channels unless asked for), and
    that image's own size."""
    try:
        with Image.open(path) as im:
            own_size, grey = im.size[::-1], is_grey(im)
    except Exception as e:
        raise DataError(f"{path}: cannot read it as an image ({type(e).__name__}: {e})") from None
    if size is None:
        check_size(*own_size, path)
    grey = grey if channels is None else channels == 1
    return _Target(size or own_size, size is not None, grey, convert=channels is not None or not grey), own_size


def _notes(done, n, target, colour_example=None):
    """The log's lines for what _fit did (a Counter) to n images."""
    H, W = target.size
    notes = []
    if done["resized"]:
        notes.append(f"resized {done['resized']:,} of {_count(n, 'image')} to {H} x {W} (--image-size; Lanczos, "
                     "antialiased)")
    if done["grey to colour"]:
        why = "--dim-channel 3" if colour_example is None else \
            f"the folder holds colour images too, e.g. {colour_example}; --dim-channel 1 trains on grey"
        notes.append(f"converted {_count(done['grey to colour'], 'grey image')} to colour ({why})")
    if done["colour to grey"]:
        notes.append(f"converted {_count(done['colour to grey'], 'colour image')} to grey (--dim-channel 1)")
    if done["alpha"]:
        notes.append(f"dropped the alpha channel (transparency) of {_count(done['alpha'], 'image')}")
    if done["16-bit"]:
        notes.append(f"scaled {_count(done['16-bit'], '16-bit image')} to 8 bits")
    return notes


def load_image_folder(path, image_size=None, dim_channel=None):
    """The images of --image-folder path (the module's docstring says which and how) as a Folder; image_size
    ((H, W), or N for N x N) and dim_channel (1 or 3) resize and convert every image to them. DataError, naming
    the file or folder, for what cannot be used."""
    size, channels = _requested_size(image_size), _requested_channels(dim_channel)
    root = os.fspath(path)
    class_names, paths, labels, notes = _scan(root)
    target, first_size = _first(paths[0], size, channels)
    workers = IMAGE_WORKERS if max(np.prod(first_size), np.prod(target.size)) >= PARALLEL_PIXELS else 1
    out = np.empty((len(paths), *target.size) + (() if target.grey else (3,)), dtype=np.uint8)
    done, colour = _decode_all(paths, list(range(len(paths))), out, target, workers)
    if colour:  # the first image was grey, some others are not: the whole folder becomes colour
        out = np.repeat(out[..., None], 3, axis=3)  # Pillow's grey to RGB: R = G = B
        target = target._replace(grey=False, convert=True)
        again, _ = _decode_all(paths, colour, out, target, workers)
        done.update(again)
        done["grey to colour"] += len(paths) - len(colour)
    example = None if channels else paths[colour[0]] if colour else paths[0]  # a colour image, when one decided
    return Folder(out, labels, class_names, tuple(notes + _notes(done, len(paths), target, example)))


def fit_images(images, image_size=None, dim_channel=None):
    """images (uint8 [N, H, W], or [N, H, W, 3] in colour) resized to image_size and converted to dim_channel as
    load_image_folder does a folder's: (uint8 array, notes for the log). Unchanged (the same array) when neither
    is given or both match. The images' own size is the caller's to check (check_size, naming their file)."""
    size, channels = _requested_size(image_size), _requested_channels(dim_channel)
    images = np.asarray(images)
    if images.dtype != np.uint8 or not (images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)):
        raise ValueError(f"fit_images takes uint8 [N, H, W] or [N, H, W, 3], got {images.dtype} {images.shape}")
    grey = images.ndim == 3
    target = _Target(size or images.shape[1:3], True, grey if channels is None else channels == 1, True)
    if target.size == images.shape[1:3] and target.grey == grey:
        return images, ()
    if target.size == images.shape[1:3] and grey:  # what Pillow's grey to RGB gives, 6 times as fast
        return np.repeat(images[..., None], 3, axis=3), tuple(_notes(Counter({"grey to colour": len(images)}),
                                                                     len(images), target))
    out = np.empty((len(images), *target.size) + (() if target.grey else (3,)), dtype=np.uint8)
    done = Counter()
    for i, image in enumerate(images):
        out[i] = _fit(Image.fromarray(image), target, done)
    return out, tuple(_notes(done, len(images), target))
