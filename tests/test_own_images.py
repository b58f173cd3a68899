"""Training on one's own images (--image-folder, --image-size, --dim-channel) through every command.

The folders are real images written here as PNG files from the digits shipped with the package: grey
28 x 28 as they are, and colour (each digit tinted) 28 x 28 resized to 32 x 32 by the run. What the
loader does file by file (formats, hidden files, every refusal) is tests/test_imagefolder.py's.
"""
import contextlib
import io
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import SMALL_FLAGS, call_main, listing, write_idx
from dcgan_mnist import checkpoint, classifier, data, evaluate, export, generate, train

RUN_FLAGS = SMALL_FLAGS + ["--batch-size", "16", "--log-every", "100"]
COLOUR_CLASSES = ("zero", "one", "two", "three")


def digits(n, classes=10):
    """The first n shipped digits of labels below `classes`: uint8 [n, 28, 28], labels [n]."""
    shipped = data.load_shipped()
    keep = np.flatnonzero(shipped.train_labels < classes)[:n]
    return shipped.train_images[keep], shipped.train_labels[keep]


def write_folder(root, images, labels, names):
    """One PNG per image in root/<its class name>/; returns the order the loader reads them in (class by
    class in sorted name order, file names sorted within each)."""
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / names[label] / f"{i:05d}.png")
    rank = np.argsort(np.argsort(names))  # the position of each class's name in sorted order
    return np.lexsort((np.arange(len(labels)), rank[labels]))


def checkpoint_weights(folder):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(folder)))
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith(("model/", "ema/"))]
    return {n: reader.get_tensor(n) for n in names}


def test_a_grey_folder_trains_to_the_weights_of_the_same_images_as_idx(tmp_path, capsys):
    images, labels = digits(200)
    order = write_folder(tmp_path / "folder", images, labels, [str(d) for d in range(10)])
    write_idx(tmp_path / "images", images[order])
    write_idx(tmp_path / "labels", labels[order])
    common = RUN_FLAGS + ["--seed", "5", "--max-iterations", "4", "--valid-size", "40"]
    runs = {"folder": ["--image-folder", tmp_path / "folder"],
            "idx": ["--train-images", tmp_path / "images", "--train-labels", tmp_path / "labels"]}
    for name, source in runs.items():
        code, out, err = call_main(capsys, train.main, *common, *source, "--checkpoint-dir", tmp_path / name / "ck",
                                   "--vis-dir", tmp_path / name / "vis")
        assert code == 0, err
        assert "data: 160 training images" in out, out
    folder_weights, idx_weights = checkpoint_weights(tmp_path / "folder" / "ck"), checkpoint_weights(tmp_path / "idx"
                                                                                                     / "ck")
    assert folder_weights.keys() == idx_weights.keys() and len(folder_weights) == 12
    for name, value in folder_weights.items():
        np.testing.assert_array_equal(value, idx_weights[name], err_msg=name)
    assert (tmp_path / "folder/vis/sample_0000.jpg").read_bytes() == (tmp_path / "idx/vis/sample_0000.jpg").read_bytes()
    record = json.loads((tmp_path / "folder/ck/run.json").read_text())["config"]
    assert record["image_folder"] == str(tmp_path / "folder") and record["class_names"] == list("0123456789")
    assert (record["image_size"], record["dim_channel"], record["dim_y"]) == ([28, 28], 1, 10)


def tinted(images, seed):
    """Each grey digit in a colour of its own (a random RGB in [0.3, 1]^3 times its ink): uint8 [N, 28, 28, 3]."""
    colours = np.random.default_rng(seed).uniform(0.3, 1.0, size=(len(images), 1, 1, 3))
    return np.round(images[..., None] * colours).astype(np.uint8)


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A colour folder of four named classes (240 tinted digits, 28 x 28), trained at --image-size 32 for
    three iterations with a checkpoint after each: its folder (images/, run/ck, run/vis) and the output."""
    root = tmp_path_factory.mktemp("colour")
    images, labels = digits(240, classes=len(COLOUR_CLASSES))
    write_folder(root / "images", tinted(images, seed=2), labels, COLOUR_CLASSES)
    flags = RUN_FLAGS + ["--image-folder", root / "images", "--image-size", "32", "--seed", "7", "--max-iterations",
                         "3", "--checkpoint-every", "1", "--checkpoint-dir", root / "run/ck", "--vis-dir",
                         root / "run/vis"]
    output = io.TextIOWrapper(io.BytesIO())  # train reconfigures stdout's buffering, as a real one's
    with contextlib.redirect_stdout(output):
        assert train.main([str(f) for f in flags]) == 0
    output.seek(0)
    return root, flags, output.read()


def test_a_colour_folder_trains_at_the_size_asked_for(colour_run):
    root, _, out = colour_run
    assert "resized" in out and "32 x 32" in out, out
    assert "data: 200 training images" in out and "(40 held out)" in out, out  # a sixth of 240 held out
    record = json.loads((root / "run/ck/run.json").read_text())["config"]
    assert record["class_names"] == sorted(COLOUR_CLASSES)
    assert (record["image_size"], record["dim_channel"], record["dim_y"], record["valid_size"]) == ([32, 32], 3, 4, 40)
    grid = np.asarray(Image.open(root / "run/vis/sample_0000.jpg"))
    assert grid.shape == (448, 448, 3)  # 14 x 14 cells of 32 x 32
    weights = checkpoint_weights(root / "run/ck")
    assert weights["model/gen_W2/.ATTRIBUTES/VARIABLE_VALUE"].shape == (16 + 4, 8 * 8 * 8)  # 8 x 8: a quarter of 32
    assert weights["model/gen_W4/.ATTRIBUTES/VARIABLE_VALUE"].shape == (5, 5, 3, 8 + 4)


def test_generate_draws_colour_classes_by_name_or_index(colour_run, tmp_path, capsys):
    root, _, _ = colour_run
    ck = ["--checkpoint-dir", root / "run/ck"]
    code, out, err = call_main(capsys, generate.main, *ck, "--labels", "zero,three,0", "--n-per-label", "3",
                               "--out", tmp_path / "grid.png", "--npz", tmp_path / "drawn.npz")
    assert code == 0, err
    drawn = np.load(tmp_path / "drawn.npz")
    assert drawn["images"].shape == (9, 32, 32, 3) and drawn["images"].dtype == np.uint8
    # Classes are numbered in sorted name order: one (index 0), three, two, zero.
    assert drawn["labels"].tolist() == [3, 3, 3, 1, 1, 1, 0, 0, 0]
    assert Image.open(tmp_path / "grid.png").size == (3 * 32, 3 * 32)
    code, _, err = call_main(capsys, generate.main, *ck, "--interpolate", "classes", "--pairs", "zero:two,one:three",
                             "--steps", "4", "--out", tmp_path / "walk.png", "--gif", tmp_path / "walk.gif")
    assert code == 0, err
    assert Image.open(tmp_path / "walk.png").size == (4 * 32, 2 * 32)
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 4 and gif.convert("RGB").size == (2 * 32, 32)
    code, _, err = call_main(capsys, generate.main, *ck, "--labels", "four")
    assert code == 2 and "no label 'four': the run's labels are one, three, two, zero" in err


def test_export_serves_colour_images_of_the_runs_size(colour_run, tmp_path, capsys):
    root, _, _ = colour_run
    code, out, err = call_main(capsys, export.main, "--checkpoint-dir", root / "run/ck", "--out", tmp_path / "served")
    assert code == 0, err
    assert "-> images uint8 [N, 32, 32, 3]" in out
    serve = tf.saved_model.load(str(tmp_path / "served")).signatures["serving_default"]
    z = np.random.default_rng(3).uniform(-1, 1, size=(5, 100)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 0], np.int32)
    served = serve(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    model = checkpoint.restore_generator(str(root / "run/ck")).generator
    np.testing.assert_array_equal(served, generate.draw(model, z, np.eye(4)[labels], seed=0))
    assert served.shape == (5, 32, 32, 3)


def test_evaluate_scores_a_colour_run(colour_run, tmp_path, capsys, monkeypatch):
    root, _, _ = colour_run
    monkeypatch.setattr(classifier, "CLASSIFIER_STEPS", 20)
    # 4 x 50 generated images, as many as the run's training images: the real row's CAS is then the
    # evaluator's own classifier (evaluate.py), one classifier fewer to train.
    code, out, err = call_main(capsys, evaluate.main, "--checkpoint-dir", root / "run/ck", "--n-per-label", "50",
                               "--cache-dir", tmp_path / "cache", "--out", tmp_path / "figures.json")
    assert code == 0, err
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["generated"]["n"] == 200 and len(figures["generated"]["per_label_agreement"]) == 4
    assert figures["label_names"] == sorted(COLOUR_CLASSES) and "out of 4" in out
    assert figures["real"]["label_agreement"] > 0.25  # the classifier reads real colour digits above chance


def test_a_resume_continues_and_a_changed_folder_is_refused(colour_run, tmp_path, capsys):
    root, flags, _ = colour_run
    shutil.copytree(root / "run", tmp_path / "run")
    flags = [str(f).replace(str(root / "run"), str(tmp_path / "run")) for f in flags]
    flags[flags.index("--max-iterations") + 1] = "4"
    code, out, err = call_main(capsys, train.main, *flags)
    assert code == 0, err
    assert "resuming from" in out and "at iteration 3" in out and "done: 4 iterations" in out
    before = listing(tmp_path / "run")
    changed = tmp_path / "images"
    shutil.copytree(root / "images", changed)
    first = sorted((changed / "one").iterdir())[0]
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(first)
    flags[flags.index("--image-folder") + 1] = str(changed)
    flags[flags.index("--max-iterations") + 1] = "5"
    code, out, err = call_main(capsys, train.main, *flags)
    assert code == 2 and "trained on other data" in err and len(err.splitlines()) == 1, err
    assert listing(tmp_path / "run") == before


@pytest.mark.parametrize("case", ["undecodable", "mixed sizes", "size 30", "dim-y", "no folder", "image-size 30"])
def test_bad_folders_and_flags_are_refused_in_one_line_before_anything_is_written(tmp_path, capsys, case):
    folder = tmp_path / "images"
    images, labels = digits(40, classes=2)
    write_folder(folder, images, labels, ["cat", "dog"])
    flags = ["--image-folder", folder]
    expected = {"undecodable": "cat/broken.png", "mixed sizes": "--image-size", "size 30": "30",
                "dim-y": "--dim-y 3", "no folder": "--image-folder", "image-size 30": "--image-size 30"}[case]
    if case == "undecodable":
        (folder / "cat" / "broken.png").write_bytes(b"not a png")
    elif case == "mixed sizes":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "dog" / "big.png")
    elif case == "size 30":
        shutil.rmtree(folder)
        write_folder(folder, np.zeros((40, 30, 30), np.uint8) + images[:, :1, :1], labels, ["cat", "dog"])
    elif case == "dim-y":
        flags += ["--dim-y", "3"]
    elif case == "no folder":
        flags = ["--image-folder", tmp_path / "none"]
    else:
        flags += ["--image-size", "30"]
    before = listing(tmp_path)
    code, out, err = call_main(capsys, train.main, *RUN_FLAGS, *flags, "--checkpoint-dir", tmp_path / "ck",
                               "--vis-dir", tmp_path / "vis")
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert listing(tmp_path) == before and not os.path.exists(tmp_path / "ck")
