"""--image-folder's loader (dcgan_mnist/imagefolder.py) on folders of real images the tests write: the
shipped digits as PNG, BMP, GIF and JPEG files, in colour and grey, and every bad folder's one-line error."""
import os

import numpy as np
import pytest
from PIL import Image

from conftest import listing
from dcgan_mnist import data, imagefolder
from dcgan_mnist.data import DataError
from dcgan_mnist.imagefolder import fit_images, load_image_folder

DIGITS = data.load_shipped()
PICK = np.sort(np.concatenate([np.flatnonzero(DIGITS.train_labels == d)[:5] for d in range(10)]))
IMAGES, LABELS = DIGITS.train_images[PICK], DIGITS.train_labels[PICK]  # 5 of each digit, in the shipped order


def colour(images):
    """Digits in colour: a different mix of the digit in each channel."""
    return np.stack([images, 255 - images, images // 2], axis=-1)


def in_folder_order(images, labels, names=None):
    """(images, labels) as a folder of them gives them: classes in sorted name order (names[label], by default
    the label's digit), files by index within each class."""
    names = names or [str(d) for d in range(10)]
    used = sorted({names[label] for label in labels})
    order = sorted(range(len(labels)), key=lambda i: (names[labels[i]], i))
    return images[order], np.array([used.index(names[labels[i]]) for i in order])


def write(root, images, labels, ext=".png", names=None, **save):
    """images into root/CLASS/INDEX.ext, CLASS being names[label] (default: the label's digit); returns
    in_folder_order(images, labels, names), what loading the folder should give."""
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / (names[label] if names else str(label))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}{ext}", **save)
    return in_folder_order(images, labels, names)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Many chunks on several threads, even for 50 images: the parallel path is the one under test."""
    monkeypatch.setattr(imagefolder, "CHUNK", 7)
    monkeypatch.setattr(imagefolder, "IMAGE_WORKERS", 3)
    monkeypatch.setattr(imagefolder, "PARALLEL_PIXELS", 0)  # threads even for small images


def error_of(*args, **kwargs):
    with pytest.raises(DataError) as e:
        load_image_folder(*args, **kwargs)
    assert e.value.exit_code == 2 and "\n" not in str(e.value)
    return str(e.value)


# ---------------------------------------------------------------- what a good folder gives

@pytest.mark.parametrize("ext", [".png", ".bmp", ".gif", ".PNG"])
def test_grey_folder_round_trips_exactly(tmp_path, ext):
    want_images, want_labels = write(tmp_path, IMAGES, LABELS, ext)
    got = load_image_folder(tmp_path)
    assert got.images.dtype == np.uint8 and got.images.shape == (50, 28, 28)
    assert np.array_equal(got.images, want_images)
    assert got.labels.dtype == np.int64 and np.array_equal(got.labels, want_labels)
    assert got.class_names == tuple(str(d) for d in range(10)) and got.notes == ()


def test_classes_numbered_in_sorted_order_as_keras_numbers_them(tmp_path):
    import keras
    names = ["zebra", "Apple", "10", "9", "mango", "b", "B", "a_b", "a-b", "ab"]
    want_images, want_labels = write(tmp_path, IMAGES, LABELS, names=names)
    got = load_image_folder(tmp_path)
    assert got.class_names == tuple(sorted(names))
    assert got.class_names == ("10", "9", "Apple", "B", "a-b", "a_b", "ab", "b", "mango", "zebra")
    assert np.array_equal(got.labels, want_labels) and np.array_equal(got.images, want_images)
    ds = keras.utils.image_dataset_from_directory(tmp_path, image_size=(28, 28), color_mode="grayscale",
                                                  shuffle=False, batch_size=None, verbose=False)
    assert tuple(ds.class_names) == got.class_names
    keras_images, keras_labels = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    assert np.array_equal(np.array(keras_labels), got.labels)
    assert np.array_equal(np.array(keras_images)[..., 0], got.images)  # the same order of files, too


def test_non_images_passed_over_by_extension_and_noted(tmp_path):
    want_images, want_labels = write(tmp_path, IMAGES, LABELS)
    (tmp_path / "3" / "notes.txt").write_text("not an image")
    (tmp_path / "3" / "scan.tiff").write_bytes(b"II*\0 not read")
    (tmp_path / "7" / "labels.csv").write_text("a,b")
    (tmp_path / "README.md").write_text("about these digits")  # at the top: no class, no note
    got = load_image_folder(tmp_path)
    assert np.array_equal(got.images, want_images) and np.array_equal(got.labels, want_labels)
    assert got.notes == ("passed over 3 files in the class folders that are not .png, .jpg, .jpeg, .bmp, .gif by name",)


def test_hidden_files_and_folders_skipped(tmp_path):
    want_images, want_labels = write(tmp_path, IMAGES, LABELS)
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "4" / "._000.png").write_bytes(b"\0\5\26\7 AppleDouble, no PNG")  # would fail to decode
    write(tmp_path / ".ipynb_checkpoints", IMAGES[:3], LABELS[:3])  # would be a class, and add images
    write(tmp_path / "5" / ".hidden", IMAGES[:3], LABELS[:3])
    got = load_image_folder(tmp_path)
    assert got.class_names == tuple(str(d) for d in range(10)) and got.notes == ()
    assert np.array_equal(got.images, want_images) and np.array_equal(got.labels, want_labels)


def test_nested_folders_belong_to_their_class_in_sorted_path_order(tmp_path):
    for path, image in (("a/2.png", 2), ("a/1/9.png", 1), ("a/0.png", 0), ("b/x/y/z.png", 3), ("b/w.png", 4)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(IMAGES[image]).save(tmp_path / path)
    got = load_image_folder(tmp_path)
    assert np.array_equal(got.images, IMAGES[[0, 1, 2, 4, 3]]) and got.labels.tolist() == [0, 0, 0, 1, 1]


def test_symbolic_links_followed(tmp_path):
    store, root = tmp_path / "store", tmp_path / "root"
    want_images, want_labels = write(store, IMAGES, LABELS)
    root.mkdir()
    for d in range(9):  # classes 0 to 8 are links to folders; class 9 a folder of links to files
        (root / str(d)).symlink_to(store / str(d), target_is_directory=True)
    (root / "9").mkdir()
    for f in sorted((store / "9").iterdir()):
        (root / "9" / f.name).symlink_to(f)
    got = load_image_folder(root)
    assert np.array_equal(got.images, want_images) and np.array_equal(got.labels, want_labels)


def test_colour_folder_round_trips_exactly(tmp_path):
    want_images, want_labels = write(tmp_path, colour(IMAGES), LABELS)
    got = load_image_folder(tmp_path)
    assert got.images.shape == (50, 28, 28, 3) and np.array_equal(got.images, want_images)
    assert np.array_equal(got.labels, want_labels) and got.notes == ()


@pytest.mark.parametrize("first", ["grey", "colour"])
def test_grey_images_among_colour_ones_become_colour(tmp_path, first):
    images = colour(IMAGES)
    position = np.argsort(np.argsort(LABELS, kind="stable"))  # each image's place in the folder's order
    grey = position % 2 == (0 if first == "grey" else 1)  # every other image grey, the first as said
    images[grey] = IMAGES[grey][..., None]  # R = G = B: what converting a grey image must give
    write(tmp_path, images, LABELS)
    for i in np.flatnonzero(grey):  # the grey ones saved again as grey (mode L) files
        Image.fromarray(IMAGES[i]).save(tmp_path / str(LABELS[i]) / f"{i:03d}.png")
    got = load_image_folder(tmp_path)
    assert got.images.shape == (50, 28, 28, 3) and np.array_equal(got.images, in_folder_order(images, LABELS)[0])
    assert len(got.notes) == 1 and got.notes[0].startswith("converted 25 grey images to colour (the folder holds")
    assert "--dim-channel 1 trains on grey" in got.notes[0]


def test_palettes_of_greys_are_grey_and_of_colours_colour(tmp_path):
    write(tmp_path / "grey", IMAGES, LABELS)
    for f in (tmp_path / "grey").rglob("*.png"):
        with Image.open(f) as im:
            im.convert("P").save(f)  # a palette of the greys it uses
    assert load_image_folder(tmp_path / "grey").images.ndim == 3
    write(tmp_path / "colour", colour(IMAGES), LABELS, ".gif")  # a GIF of a colour image is a palette image
    assert load_image_folder(tmp_path / "colour").images.ndim == 4


def test_alpha_dropped_and_noted(tmp_path):
    rgba = np.concatenate([colour(IMAGES), np.zeros_like(IMAGES)[..., None]], axis=-1)  # all transparent
    want_images, _ = write(tmp_path, rgba, LABELS)
    got = load_image_folder(tmp_path)
    assert np.array_equal(got.images, want_images[..., :3])  # the colours kept under the transparency
    assert got.notes == ("dropped the alpha channel (transparency) of 50 images",)


def test_16_bit_grey_scaled_to_8_bits(tmp_path):
    for label in (0, 1):
        (tmp_path / str(label)).mkdir()
        Image.fromarray(IMAGES[label].astype(np.uint16) * 257).save(tmp_path / str(label) / "x.png")
        with Image.open(tmp_path / str(label) / "x.png") as im:
            assert im.mode == "I;16"
    got = load_image_folder(tmp_path)
    assert np.array_equal(got.images, IMAGES[:2]) and got.notes == ("scaled 2 16-bit images to 8 bits",)


def test_jpeg_decodes_as_pillow_decodes_it(tmp_path):
    write(tmp_path, colour(IMAGES), LABELS, ".jpg", quality=90)
    files = sorted(tmp_path.rglob("*.jpg"), key=lambda p: (p.parent.name, p.name))
    got = load_image_folder(tmp_path)
    assert np.array_equal(got.images, np.stack([np.asarray(Image.open(f)) for f in files]))


# ---------------------------------------------------------------- resizing and converting

def checkerboard(size):
    return ((np.indices((size, size)).sum(axis=0) % 2) * 255).astype(np.uint8)


def test_resize_is_antialiased(tmp_path):
    for label in (0, 1):
        (tmp_path / str(label)).mkdir()
        Image.fromarray(checkerboard(64)).save(tmp_path / str(label) / "board.png")
    got = load_image_folder(tmp_path, image_size=32)
    assert got.images.shape == (2, 32, 32)
    off = np.abs(got.images.astype(int) - 127.5)  # aliased, a 1-pixel checkerboard halved would be 0s or 255s
    assert off[:, 2:-2, 2:-2].max() <= 1 and off.max() <= 4  # Lanczos weighs fewer pixels at the corners
    assert got.notes == ("resized 2 of 2 images to 32 x 32 (--image-size; Lanczos, antialiased)",)


def test_resize_is_pillows_lanczos(tmp_path):
    want_images, _ = write(tmp_path, IMAGES, LABELS)
    got = load_image_folder(tmp_path, image_size=(32, 20))  # up in height, down in width
    lanczos = [np.asarray(Image.fromarray(x).resize((20, 32), Image.Resampling.LANCZOS, reducing_gap=None))
               for x in want_images]
    assert np.array_equal(got.images, np.stack(lanczos))


def test_images_of_any_sizes_resized_to_image_size(tmp_path):
    for i, (h, w) in enumerate([(28, 28), (64, 48), (17, 90), (32, 32)]):
        (tmp_path / str(i % 2)).mkdir(exist_ok=True)
        Image.fromarray(np.full((h, w), 40 * i, np.uint8)).save(tmp_path / str(i % 2) / f"{i}.png")
    got = load_image_folder(tmp_path, image_size=(32, 36))
    assert got.images.shape == (4, 32, 36)
    assert [int(x.min()) for x in got.images] == [0, 80, 40, 120] == [int(x.max()) for x in got.images]
    assert got.notes == ("resized 4 of 4 images to 32 x 36 (--image-size; Lanczos, antialiased)",)


def test_dim_channel_converts_both_ways(tmp_path):
    write(tmp_path / "c", colour(IMAGES), LABELS)
    got = load_image_folder(tmp_path / "c", dim_channel=1)
    order = np.argsort(LABELS, kind="stable")
    luma = np.stack([np.asarray(Image.fromarray(x).convert("L")) for x in colour(IMAGES)])[order]
    assert np.array_equal(got.images, luma) and got.notes == ("converted 50 colour images to grey (--dim-channel 1)",)
    write(tmp_path / "g", IMAGES, LABELS)
    got = load_image_folder(tmp_path / "g", dim_channel=3)
    assert np.array_equal(got.images, np.repeat(IMAGES[order][..., None], 3, axis=3))
    assert got.notes == ("converted 50 grey images to colour (--dim-channel 3)",)


@pytest.mark.parametrize("image_size, dim_channel", [((32, 32), 3), (36, None), (None, 3), (None, 1)])
def test_fit_images_does_what_the_folder_loader_does(tmp_path, image_size, dim_channel):
    want_images, _ = write(tmp_path, IMAGES, LABELS)
    images, notes = fit_images(want_images, image_size, dim_channel)
    got = load_image_folder(tmp_path, image_size, dim_channel)
    assert np.array_equal(images, got.images) and notes == got.notes
    assert (notes == ()) == (image_size is None and dim_channel in (None, 1))


def test_fit_images_returns_the_same_array_when_nothing_is_asked(tmp_path):
    for args in ((), ((28, 28), 1), (28, None), (None, 1)):
        assert fit_images(IMAGES, *args)[0] is IMAGES and fit_images(IMAGES, *args)[1] == ()


# ---------------------------------------------------------------- bad folders: one line naming it

def bad_folder(root, case):
    """Write a bad folder of case into root; (path to load, keyword arguments, what the error must say)."""
    write(root, IMAGES[:20], LABELS[:20])
    if case == "undecodable":
        (root / "3" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        return root, {}, [str(root / "3" / "broken.png"), "cannot read it as an image"]
    if case == "truncated":
        whole = (root / "4" / "004.png").read_bytes()
        (root / "4" / "004.png").write_bytes(whole[:len(whole) // 2])
        return root, {}, [str(root / "4" / "004.png"), "cannot read it as an image", "truncated"]
    if case == "sizes differ":
        Image.fromarray(np.zeros((32, 24), np.uint8)).save(root / "9" / "big.png")
        return root, {}, [f"{root / '9' / 'big.png'} is 32 x 24 but {root / '0' / '003.png'} is 28 x 28",
                          "--image-size resizes"]
    if case == "size not a multiple of 4":
        for f in root.rglob("*.png"):
            Image.fromarray(np.zeros((30, 30), np.uint8)).save(f)
        return root, {}, [str(root / "0" / "003.png"), "30 x 30", "--image-size 28 or --image-size 32 resizes"]
    if case == "class without images":
        (root / "ghost").mkdir()
        (root / "ghost" / "notes.txt").write_text("nothing here")
        return root, {}, [str(root / "ghost"), "no images in this class folder"]
    if case == "one class":
        (root / "7" / "only").mkdir()
        Image.fromarray(IMAGES[0]).save(root / "7" / "only" / "x.png")
        return root / "7", {}, ["--image-folder", str(root / "7"), "1 subfolder (only)", "at least two classes"]
    if case == "only loose images":
        return root / "1", {}, ["--image-folder", str(root / "1"), "0 subfolders and 3 images at its top"]
    if case == "empty":
        (root / "empty").mkdir()
        return root / "empty", {}, ["--image-folder", str(root / "empty"), ": empty;", "one subfolder of images per"]
    if case == "a file":
        return root / "0" / "003.png", {}, ["--image-folder", str(root / "0" / "003.png"), "not a folder"]
    if case == "missing":
        return root / "nowhere", {}, ["--image-folder", str(root / "nowhere"), "no such folder"]
    if case == "broken link":
        (root / "5" / "gone.png").symlink_to(root / "elsewhere.png")
        return root, {}, [str(root / "5" / "gone.png"), f"a broken symbolic link to {root / 'elsewhere.png'}"]
    if case == "link loop":
        (root / "6" / "again").symlink_to(root / "6", target_is_directory=True)
        return root, {}, [str(root / "6" / "again"), "a loop"]
    if case == "image size 30":
        return root, {"image_size": 30}, ["--image-size 30:", "--image-size 28 or --image-size 32 would do"]
    if case == "image size 2":
        return root, {"image_size": (2, 8)}, ["--image-size 2 8:", "at least 4", "--image-size 4 8 would do"]
    if case == "dim channel 2":
        return root, {"dim_channel": 2}, ["--dim-channel 2:", "1 (grey) or 3 (colour)"]
    raise AssertionError(case)


BAD = ["undecodable", "truncated", "sizes differ", "size not a multiple of 4", "class without images", "one class",
       "only loose images", "empty", "a file", "missing", "broken link", "link loop", "image size 30", "image size 2",
       "dim channel 2"]


@pytest.mark.parametrize("case", BAD)
def test_bad_folder_refused_in_one_line_naming_it(tmp_path, case):
    root = tmp_path / "images"
    path, kwargs, expected = bad_folder(root, case)
    before = listing(tmp_path)
    message = error_of(path, **kwargs)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    assert listing(tmp_path) == before


def test_loose_images_beside_classes_passed_over_with_a_note(tmp_path):
    want_images, want_labels = write(tmp_path, IMAGES, LABELS)
    for name in ("stray.png", "b.jpg", "c.gif", "d.bmp"):
        Image.fromarray(IMAGES[0]).save(tmp_path / name)
    got = load_image_folder(tmp_path)
    assert np.array_equal(got.images, want_images) and np.array_equal(got.labels, want_labels)
    assert got.notes == (f"passed over 4 images at the top of --image-folder {tmp_path}, in no class subfolder: "
                         "b.jpg, c.gif, d.bmp, ...",)


def test_first_bad_file_in_order_is_named(tmp_path):
    write(tmp_path, IMAGES, LABELS)
    for name in ("9/zzz.png", "2/000.png", "5/mmm.png"):  # 2/000.png comes first in the folder's order
        (tmp_path / name).write_bytes(b"GIF89a broken")
    assert error_of(tmp_path).startswith(f"{tmp_path / '2' / '000.png'}: cannot read it as an image")


def test_memory_stated_in_the_docstring():
    doc = " ".join(imagefolder.__doc__.split())
    assert f"60,000 28 x 28 grey images take {60000 * 28 * 28 / 1e6:.0f} MB" in doc
    assert f"50,000 32 x 32 colour images {50000 * 32 * 32 * 3 / 1e6:.0f} MB" in doc
    assert os.path.basename(imagefolder.__file__) == "imagefolder.py"
