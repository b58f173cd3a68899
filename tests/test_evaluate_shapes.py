"""The evaluation on images other than MNIST's: colour 32 x 32 images of four classes, made from the
shipped digits (the digits 0 to 3, padded to 32 x 32 and each tinted its own colour), as a run's image
folder. The classifier, the figures, the command on such a run, the --npz checks, the report, the
pictures and the training hook, with a classifier of a few dozen Adam steps; the generated row comes
from a small generator with random weights, so only its shapes and ranges are checked.
"""
import argparse
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dcgan_mnist import checkpoint, classifier, data, evaluate, metrics, model, plot, report
from dcgan_mnist.config import Config, ConfigError
from dcgan_mnist.hook import TrainingHook

# The digits 0 to 3, label y the digit y: names in sorted order, as an image folder numbers its classes.
NAMES = ("0-zero", "1-one", "2-two", "3-three")
K = len(NAMES)
SIZE = (32, 32)
N_TRAIN, N_HELD, N_UNSEEN = 1000, 400, 400
# Adam steps of the classifier, of BATCH images: it reads over 90% of these digits right (chance: 1 in 4).
STEPS = 40
BATCH = 32
N_PER_LABEL = 25  # the real row and the distances: 100 images

pytestmark = pytest.mark.xdist_group("evaluate_shapes")  # one worker trains the module's classifier, once


def tinted(grey, rng):
    """uint8 [N, 28, 28] -> uint8 [N, 32, 32, 3]: padded with black, each image in a colour of its own."""
    padded = np.pad(grey, ((0, 0), (2, 2), (2, 2)))
    colours = rng.uniform(0.25, 1.0, size=(len(grey), 1, 1, 3))
    return np.round(padded[..., None] * colours).astype(np.uint8)


def tinted_digits(n):
    """n of the shipped digits 0 to 3, shuffled, tinted: (uint8 images [n, 32, 32, 3], labels [n])."""
    shipped = data.load_shipped()
    rng = np.random.default_rng(0)
    keep = rng.permutation(np.flatnonzero(shipped.train_labels < K))[:n]
    return tinted(shipped.train_images[keep], rng), shipped.train_labels[keep]


def small_generator(dim_y=K, seed=0):
    return model.Generator(image_size=SIZE, dim_channel=3, dim_y=dim_y, dim_W1=16, dim_W2=8, dim_W3=8,
                           rng=model.weights_rng(seed))


def colour_config(**settings):
    """A run's record as train.py writes it for the folder of tinted digits (its generator small)."""
    return Config(image_size=SIZE, dim_channel=3, dim_y=K, class_names=NAMES, dim_W1=16, dim_W2=8, dim_W3=8,
                  valid_size=N_HELD, seed=1, **settings)


@pytest.fixture(scope="module")
def colour(tmp_path_factory):
    """A run's record (cfg) on a folder of tinted digits, the Split it evaluates on, its Evaluator
    (classifier cached in "cache") and unseen tinted digits."""
    folder = tmp_path_factory.mktemp("colour")
    images, labels = tinted_digits(N_TRAIN + N_HELD + N_UNSEEN)
    for i, (image, label) in enumerate(zip(images[:N_TRAIN + N_HELD], labels)):
        (folder / "digits" / NAMES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / "digits" / NAMES[label] / f"{i:04d}.png")
    cfg = colour_config(image_folder=str(folder / "digits"))
    split = evaluate.run_data(cfg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(classifier, "CLASSIFIER_BATCH", BATCH)
        evaluator = evaluate.Evaluator(split, N_PER_LABEL, cache_dir=str(folder / "cache"), steps=STEPS,
                                       label_names=NAMES)
    return dict(cfg=cfg, split=split, evaluator=evaluator, cache=folder / "cache", images=images[-N_UNSEEN:],
                labels=labels[-N_UNSEEN:])


def test_unseen_real_colour_images_of_four_classes_are_read_well(colour):
    e, images, labels = colour["evaluator"], colour["images"], colour["labels"]
    assert e.classifier.input_shape == (None, 32, 32, 3) and e.classifier.output_shape == (None, K)
    fingerprint = data.fingerprint(*colour["split"][:2])
    assert os.path.basename(e.classifier_file) == \
        f"classifier-v{classifier.CLASSIFIER_VERSION}-{fingerprint}-32x32x3-4classes-seed0.keras"
    assert e.accuracy > 0.8 and e.n_labels == K and e.m == K * N_PER_LABEL  # on the held-out images
    result = e.score(images, labels)
    assert result["label_names"] == list(NAMES)
    for row in ("generated", "real"):
        g, shares = result[row], np.array(result["confusion"][row])
        assert len(g["per_label_agreement"]) == K and all(a > 0.6 for a in g["per_label_agreement"])
        assert g["label_agreement"] > 0.8 and 1.5 < g["classifier_score"] <= K + 1e-9
        assert shares.shape == (K, K) and np.allclose(shares.sum(axis=1), 1)
        np.testing.assert_allclose(np.diag(shares), g["per_label_agreement"])
    unseen, real = result["generated"], result["real"]
    assert unseen["n"] == N_UNSEEN and real["n"] == result["frechet_n"] == K * N_PER_LABEL
    assert unseen["label_agreement"] == pytest.approx(real["label_agreement"], abs=0.1)
    assert unseen["copies"] <= 0.05 and 0 <= unseen["precision"] <= 1 and 0 <= unseen["recall"] <= 1
    text = report.table([("--npz", unseen), ("held-out real", real)], result)
    assert "classifier score out of 4;" in text and "label 3-three" in text and "label 4" not in text


def test_a_colour_generator_of_four_labels_is_drawn_and_scored(colour):
    e = colour["evaluator"]
    images, labels = e.draw(small_generator())
    assert images.dtype == np.uint8 and images.shape == (K * N_PER_LABEL, 32, 32, 3)
    assert np.bincount(labels).tolist() == [N_PER_LABEL] * K
    result = e(small_generator())
    g = result["generated"]
    assert g["n"] == K * N_PER_LABEL and len(g["per_label_agreement"]) == K
    assert 0 <= g["label_agreement"] <= 1 and 1 - 1e-9 <= g["classifier_score"] <= K + 1e-9
    assert np.isfinite(g["frechet_distance"]) and np.isfinite(g["kid"]) and 0 <= g["copies"] <= 1
    assert np.array(result["confusion"]["generated"]).shape == (K, K)
    with pytest.raises(ValueError, match="a generator of 10 labels, an evaluator of 4"):
        e.draw(small_generator(dim_y=10))


def test_evaluate_scores_a_colour_run_of_four_classes(colour, tmp_path, capsys, monkeypatch):
    # The run's record and a checkpoint of a generator with random weights, as train.py leaves them.
    split, cfg = colour["split"], dataclasses.replace(colour["cfg"], checkpoint_dir=str(tmp_path / "ckpt"))
    os.makedirs(cfg.checkpoint_dir)
    checkpoint.write_run(cfg, data.fingerprint(split.train_images, split.train_labels, cfg.class_names))
    tf.train.Checkpoint(model=small_generator()).save(os.path.join(cfg.checkpoint_dir, "ckpt"))
    monkeypatch.setattr(classifier, "CLASSIFIER_STEPS", STEPS)  # quick, should a key miss the fixture's cache
    out, picture = tmp_path / "figures.json", tmp_path / "confusion.png"
    named, write_confusion = [], plot.write_confusion
    monkeypatch.setattr(plot, "write_confusion", lambda *args: named.append(args[3]) or write_confusion(*args))
    assert evaluate.main(["--checkpoint-dir", cfg.checkpoint_dir, "--n-per-label", "5", "--no-cas", "--cache-dir",
                          str(colour["cache"]), "--out", str(out), "--confusion", str(picture)]) == 0
    printed = capsys.readouterr().out
    assert "classifier: training" not in printed  # the fixture's classifier: the same data, shape and labels
    assert "classifier score out of 4;" in printed and "label 3-three" in printed
    result = json.loads(out.read_text())
    assert result["label_names"] == list(NAMES) and result["generated"]["n"] == 5 * K
    assert np.array(result["confusion"]["generated"]).shape == (K, K)
    with Image.open(picture) as image:
        assert image.size == (600, 540) and named == [NAMES]  # its ticks named by class


def test_too_few_images_per_label_for_the_figures_is_refused(colour):
    with pytest.raises(ConfigError, match=r"2 images per label of 4 labels are 8; the figures need at least 10: "
                                          r"give --n-per-label \(in training --eval-n-per-label\) 3 or more"):
        evaluate.Evaluator(colour["split"], 2, cache_dir=str(colour["cache"]), steps=STEPS, label_names=NAMES)


def test_the_training_hook_measures_a_colour_run(colour, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(classifier, "CACHE_DIR", str(colour["cache"]))
    monkeypatch.setattr(classifier, "CLASSIFIER_STEPS", STEPS)
    cfg = colour_config(checkpoint_dir=str(tmp_path), eval_every=1, eval_n_per_label=5)
    hook = TrainingHook(cfg, small_generator(), None, colour["split"])
    figures = hook(1, 0.5)
    assert "classifier: training" not in capsys.readouterr().out  # the fixture's, cached: the same key
    assert 0 <= figures["eval/label_agreement"] <= 1 and figures["eval/classifier_score"] <= K + 1e-9
    records, real = plot.read_metrics(str(tmp_path / "metrics.jsonl"))
    assert len(records[0]["per_label_agreement"]) == len(real["per_label_agreement"]) == K
    assert records[0]["n"] == real["n"] == 5 * K
    fig = plot.draw(records, real, "a colour run")
    assert fig.axes[1].get_title() == "classifier score (out of 4, higher is better)"


# ---------------------------------------------------------------- no classifier needed

def test_the_cache_key_names_other_shapes_and_keeps_mnists():
    name = f"classifier-v{classifier.CLASSIFIER_VERSION}-abc"
    mnist = os.path.join("c", f"{name}-seed0.keras")  # as before other shapes were taken: old files stay valid
    assert classifier.classifier_path("abc", 0, "c") == mnist
    assert classifier.classifier_path("abc", 0, "c", (28, 28, 1), 10) == mnist
    colour = os.path.join("c", f"{name}-32x32x3-4classes-seed0.keras")
    assert classifier.classifier_path("abc", 0, "c", (32, 32, 3), 4) == colour
    others = {classifier.classifier_path("abc", 0, "c", shape, k) for shape, k in
              [((28, 28, 1), 4), ((28, 28, 3), 10), ((32, 28, 1), 10)]}
    assert len(others) == 3 and mnist not in others


@pytest.mark.parametrize("shape", [(4, 4, 1), (8, 12, 3), (28, 28, 1)])
def test_the_classifier_takes_any_size_the_network_does(shape):
    built = classifier.build_classifier(0, shape, 3)
    assert built(np.zeros((2, *shape), np.float32)).shape == (2, 3)
    padded = any(layer.name.startswith("zero_padding") for layer in built.layers)
    assert padded == (min(shape[:2]) < classifier.MIN_SIDE)  # MNIST's classifier is as it was


def shifts_found(images, moved, r):
    """For each image [H, W, C] and its moved copy, the (dy, dx) within r pixels that moves it so
    (zeros shifted in), or None when no such whole-pixel shift does."""
    H, W = images.shape[1:3]
    found = []
    for image, out in zip(images, moved):
        match = None
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                expected = np.zeros_like(image)
                expected[max(0, dy):H + min(0, dy), max(0, dx):W + min(0, dx)] = \
                    image[max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)]
                match = (dy, dx) if np.array_equal(expected, out) else match
        found.append(match)
    return found


def test_the_shift_moves_images_of_any_size_by_whole_pixels_within_its_bound():
    # 64 x 32: a shift of a fixed fraction, not of each side, would move the rows by up to 2 pixels.
    images = np.random.default_rng(0).uniform(1, 255, size=(32, 64, 32, 3)).astype(np.float32)
    shift = classifier.build_classifier(0, (64, 32, 3), K).get_layer("shift")
    found = shifts_found(images, shift(images, training=True).numpy(), 2 * classifier.CLASSIFIER_SHIFT)
    r = classifier.CLASSIFIER_SHIFT
    assert all(f is not None and max(map(abs, f)) <= r for f in found), found
    assert len(set(found)) > 3


def bad_colour_npz(folder):
    """(file, what the one-line error says) for files a colour 32 x 32 run of four labels refuses."""
    images, labels = np.zeros((20, 32, 32, 3), np.uint8), np.arange(20) % K
    cases = [(dict(images=images[..., 0], labels=labels), "images must have 4 dimensions [N, 32, 32, 3], got shape "
                                                          "(20, 32, 32): the run's images are colour"),
             (dict(images=images[:, 2:30, 2:30], labels=labels), "images are 28 x 28 x 3, expected 32 x 32 x 3"),
             (dict(images=np.zeros((20, 32, 32, 4), np.uint8), labels=labels), "images are 32 x 32 x 4, expected"),
             (dict(images=images, labels=labels + 1), "label 4 outside 0 to 3 (labels range from 1 to 4)")]
    for i, (arrays, says) in enumerate(cases):
        path = folder / f"bad-{i}.npz"
        np.savez(path, **arrays)
        yield path, says


def test_npz_is_checked_against_the_runs_shape_and_labels(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    cfg = colour_config(checkpoint_dir=str(ckpt))
    checkpoint.write_run(cfg, "0" * 16)  # the record alone: the file is refused before a checkpoint is looked for
    for path, says in bad_colour_npz(tmp_path):
        out = tmp_path / "figures.json"
        code = evaluate.main(["--checkpoint-dir", str(ckpt), "--npz", str(path), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"error: --npz {path}") and err.count("\n") == 1 and says in err, err
        assert not out.exists()
    np.savez(tmp_path / "good.npz", images=np.zeros((12, 32, 32, 3), np.uint8), labels=np.arange(12) % K)
    flags = argparse.Namespace(pretrained=False, checkpoint_dir=str(ckpt), checkpoint=None)
    images, labels = evaluate.read_scored(str(tmp_path / "good.npz"), evaluate.recorded_run(flags))
    assert images.shape == (12, 32, 32, 3) and labels.tolist() == (np.arange(12) % K).tolist()
    # A grey run takes [N, H, W, 1] as [N, H, W].
    np.savez(tmp_path / "grey.npz", images=np.zeros((12, 28, 28, 1), np.uint8), labels=np.arange(12) % 10)
    assert evaluate.read_scored(str(tmp_path / "grey.npz"), Config())[0].shape == (12, 28, 28)


def test_the_confusion_picture_names_the_classes(tmp_path):
    shares = np.full((K, K), 0.1) + 0.6 * np.eye(K)
    fig = plot.draw_confusion(shares, "four classes", NAMES)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [t.get_text() for t in ax.get_yticklabels()] == list(NAMES)
    plot.write_confusion(shares.tolist(), "four classes", str(tmp_path / "c.png"), NAMES)
    with Image.open(tmp_path / "c.png") as image:
        assert image.size == (600, 540)
    # Without a record of the number of labels, the panels say the digits' maximum.
    assert plot.draw([{"iteration": 1, "label_agreement": 0.5, "classifier_score": 2.0, "frechet_distance": 9.0}],
                     None, "t").axes[1].get_title() == "classifier score (out of 10, higher is better)"


def test_metrics_take_the_number_of_labels_from_the_probabilities():
    labels = np.array([0, 0, 1, 2, 2, 2])
    read = np.array([0, 2, 1, 2, 2, 0])
    probs = np.eye(K)[read]
    assert metrics.per_label_agreement(probs, labels) == [0.5, 1.0, pytest.approx(2 / 3), None]
    shares = metrics.confusion(probs, labels)
    assert shares.shape == (K, K) and shares[0, 2] == 0.5 and not shares[3].any()
    assert metrics.classifier_score(np.eye(K)[np.arange(400) % K]) == pytest.approx(K)


def test_report_gives_many_labels_in_blocks_of_ten():
    names = tuple(f"c{i}" for i in range(12))
    row = dict(n=12, label_agreement=0.5, classifier_score=3.0, frechet_distance=1.0, kid=0.0, kid_std=0.0,
               precision=0.5, recall=0.5, cas=None, copies=0.0, per_label_agreement=[0.5] * 11 + [None])
    result = dict(classifier=dict(heldout_accuracy=0.9, heldout_n=40, trained_on=100, file="f"), frechet_n=12,
                  frechet_reference_n=20, label_names=list(names))
    lines = report.table([("generated", row)], result).splitlines()
    heads = [line for line in lines if line.startswith("agreement of")]
    assert len(heads) == 2 and "label c9" in heads[0] and heads[1].split()[2:] == ["label", "c10", "label", "c11"]
    assert "classifier score out of 12;" in lines[-2]
