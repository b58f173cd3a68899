"""The quality figures on known inputs, the classifier's cache, the CLI and the training hook.

Small classifiers (3 to 100 Adam steps) and small sets keep this fast; the full evaluation is
scripts/quality_run.py.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import MNIST_RUN_STEPS as STEPS
from conftest import ROOT, SMALL_FLAGS, write_idx
from dcgan_mnist import classifier, data, evaluate, metrics, train
from dcgan_mnist.config import Config

# ---------------------------------------------------------------- a run on real digits (conftest.mnist_run)

@pytest.fixture(scope="session")
def real_digits(mnist_run):
    """The run's classifier and the unseen digits."""
    return mnist_run["evaluator"].classifier, mnist_run["images"], mnist_run["labels"]


@pytest.fixture(scope="session")
def unseen_scored(mnist_run):
    """evaluate --npz on 1,000 of the unseen digits, through the command line: its JSON, its
    confusion picture's path and what it printed."""
    folder = mnist_run["folder"]
    np.savez(folder / "unseen.npz", images=mnist_run["images"][:1000], labels=mnist_run["labels"][:1000])
    out, picture = folder / "unseen.json", folder / "unseen-confusion.png"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(classifier, "CLASSIFIER_STEPS", STEPS)
        assert evaluate.main(["--checkpoint-dir", str(folder / "ckpt"), "--npz", str(folder / "unseen.npz"),
                              "--n-per-label", "100", "--cache-dir", str(folder / "cache"), "--out", str(out),
                              "--confusion", str(picture)]) == 0
    return json.loads(out.read_text()), picture


FIGURES = {"label_agreement", "per_label_agreement", "classifier_score", "frechet_distance", "kid", "kid_std",
           "precision", "recall", "cas", "copies", "n"}


@pytest.mark.xdist_group("mnist_run")  # one worker computes the real-digit run, once (with test_demo.py's)
def test_unseen_real_digits_score_like_the_held_out_real_row(mnist_run, unseen_scored):
    result, _ = unseen_scored
    unseen, real = result["generated"], result["real"]
    assert set(unseen) == set(real) == FIGURES and unseen["n"] == real["n"] == 1000
    assert abs(unseen["kid"]) < 2 * unseen["kid_std"], f"KID {unseen['kid']} +- {unseen['kid_std']}: not about 0"
    assert abs(real["kid"]) < 2 * real["kid_std"], f"real row KID {real['kid']} +- {real['kid_std']}: not about 0"
    assert unseen["precision"] == pytest.approx(real["precision"], abs=0.05)
    assert unseen["recall"] == pytest.approx(real["recall"], abs=0.05)
    accuracy = result["classifier"]["heldout_accuracy"]
    assert unseen["cas"] == pytest.approx(accuracy, abs=0.04) and real["cas"] == pytest.approx(accuracy, abs=0.04)
    assert unseen["copies"] <= 0.03 and real["copies"] <= 0.03  # about 0.01 by the definition
    assert unseen["label_agreement"] == pytest.approx(real["label_agreement"], abs=0.03)
    assert all(a > 0.8 for a in unseen["per_label_agreement"])


@pytest.mark.xdist_group("mnist_run")
def test_the_runs_own_training_digits_are_all_copies(mnist_run):
    evaluator = mnist_run["evaluator"]
    result = evaluator.score(evaluator.train_images[:1000], evaluator.train_labels[:1000])
    assert result["generated"]["copies"] == 1
    assert result["generated"]["cas"] is None  # not asked for


@pytest.mark.xdist_group("mnist_run")
def test_the_smallest_set_evaluate_takes_is_scored(mnist_run):
    evaluator, images, labels = mnist_run["evaluator"], mnist_run["images"], mnist_run["labels"]
    n = evaluate.NPZ_MIN_IMAGES  # as many as --n-per-label 1 draws
    figures = evaluator.score(images[:n], labels[:n])["generated"]
    assert figures["n"] == n and all(np.isfinite(figures[name]) for name in ("kid", "kid_std", "precision", "recall"))


@pytest.mark.xdist_group("mnist_run")
def test_a_set_in_label_order_is_sampled_at_random_for_the_distances(mnist_run):
    # generate --npz writes its digits label by label: the distances' m = 1,000 of these 2,000
    # must be drawn from all ten labels, not be the first ones (0 to 4).
    evaluator, images, labels = mnist_run["evaluator"], mnist_run["images"], mnist_run["labels"]
    order = np.argsort(labels, kind="stable")
    figures = evaluator.score(images[order], labels[order])["generated"]
    assert figures["n"] == 2000 and evaluator.m == 1000
    assert abs(figures["kid"]) < 2 * figures["kid_std"], f"KID {figures['kid']} +- {figures['kid_std']}"
    assert figures["recall"] > 0.8


@pytest.mark.xdist_group("mnist_run")
def test_ten_real_digits_repeated_lose_recall_cas_and_kid(mnist_run, unseen_scored):
    evaluator, images, labels = mnist_run["evaluator"], mnist_run["images"], mnist_run["labels"]
    ten = [int(np.flatnonzero(labels == y)[0]) for y in range(10)]  # one unseen digit of each label
    repeated = np.repeat(ten, 100)
    result = evaluator.score(images[repeated], labels[repeated], cas=True)
    few, real = result["generated"], unseen_scored[0]["real"]
    assert few["label_agreement"] >= 0.8 and few["precision"] >= 0.7  # most of the ten are good digits
    assert few["recall"] < 0.05, f"recall {few['recall']} of ten digits"
    assert few["cas"] < real["cas"] - 0.2, f"CAS {few['cas']} of ten digits, {real['cas']} of 1,000 real ones"
    assert few["kid"] > real["kid"] + 10 * real["kid_std"] and few["kid"] > 3 * few["kid_std"], \
        f"KID {few['kid']} +- {few['kid_std']} of ten digits, {real['kid']} +- {real['kid_std']} of 1,000 real ones"


@pytest.mark.xdist_group("mnist_run")
def test_held_out_real_digits_score_high(real_digits):
    reader, images, labels = real_digits
    feats, probs = classifier.features_and_probs(reader, images)
    assert metrics.label_agreement(probs, labels) > 0.9
    assert metrics.classifier_score(probs) > 8
    # Two halves of the same real digits are close; noise is far.
    noise = np.random.default_rng(0).integers(0, 256, size=images[:1000].shape, dtype=np.uint8)
    noise_feats, _ = classifier.features_and_probs(reader, noise)
    real_fd = metrics.frechet_distance(feats[:1000], feats[1000:])
    assert metrics.frechet_distance(noise_feats, feats[1000:]) > 10 * real_fd


@pytest.mark.xdist_group("mnist_run")
def test_noise_and_one_repeated_image_score_low(real_digits):
    reader, images, labels = real_digits
    noise = np.random.default_rng(0).integers(0, 256, size=images.shape, dtype=np.uint8)
    _, probs = classifier.features_and_probs(reader, noise)
    assert metrics.label_agreement(probs, labels) < 0.3
    assert metrics.classifier_score(probs) < 3
    repeated = np.repeat(images[:1], len(images), axis=0)
    _, probs = classifier.features_and_probs(reader, repeated)
    assert metrics.label_agreement(probs, labels) < 0.2  # right for one label in ten
    assert metrics.classifier_score(probs) == pytest.approx(1, abs=1e-3)


@pytest.mark.xdist_group("mnist_run")
def test_confusion_picture_is_written(unseen_scored):
    result, picture = unseen_scored
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.size == (600, 540)
    shares = np.array(result["confusion"]["generated"])
    assert shares.shape == (10, 10) and np.allclose(shares.sum(axis=1), 1)
    np.testing.assert_allclose(np.diag(shares), result["generated"]["per_label_agreement"])


def bad_npz_files(folder):
    """(name, file, what the one-line error must say) for files evaluate --npz refuses."""
    images, labels = np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10
    cases = {"missing": None,
             "garbage": b"not an npz at all",
             "truncated": b"PK\x03\x04" + bytes(30),
             "npy": images,
             "no labels": dict(images=images),
             "no images": dict(labels=labels),
             "float images": dict(images=images.astype(np.float32), labels=labels),
             "flat images": dict(images=images.reshape(20, 784), labels=labels),
             "28x27 images": dict(images=images[:, :, :27], labels=labels),
             "9 images": dict(images=images[:9], labels=labels[:9]),
             "labels 10": dict(images=images, labels=labels + 1),
             "labels -1": dict(images=images, labels=labels - 1),
             "float labels": dict(images=images, labels=labels.astype(float)),
             "labels short": dict(images=images, labels=labels[:19]),
             "object labels": dict(images=images, labels=np.array([None] * 20))}
    # The file's checks are data.check_pair's, as for any training data; the --npz minimum is evaluate's.
    says = {"missing": "No such file", "garbage": "not an .npz file", "truncated": "not a readable .npz",
            "npy": "not an .npz", "no labels": "no array 'labels'", "no images": "no array 'images'",
            "float images": "uint8 pixels, got float32", "flat images": "[N, 28, 28], got shape (20, 784)",
            "28x27 images": "28 x 27, expected 28 x 28",
            "9 images": "9 images; KID and precision/recall need at least 10",
            "labels 10": "label 10 outside 0 to 9 (labels range from 1 to 10)",
            "labels -1": "label -1 outside 0 to 9 (labels range from -1 to 8)",
            "float labels": "integers, got float64", "labels short": "has 20 images but", "object labels":
            "not a readable .npz"}
    for name, content in cases.items():
        path = folder / (name.replace(" ", "-") + (".npy" if name == "npy" else ".npz"))
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, dict):
            np.savez(path, **content)
        elif content is not None:
            np.save(path, content)
        yield name, path, says[name]


def test_evaluate_refuses_a_bad_npz_in_one_line_and_writes_nothing(tmp_path, capsys):
    # No run at all in --checkpoint-dir: the file is checked before anything else.
    out, picture = tmp_path / "figures.json", tmp_path / "confusion.png"
    for name, path, says in bad_npz_files(tmp_path):
        code = evaluate.main(["--checkpoint-dir", str(tmp_path / "none"), "--npz", str(path), "--out", str(out),
                              "--confusion", str(picture)])
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.startswith(f"error: --npz {path}") and err.count("\n") == 1 and says in err, (name, err)
        assert not out.exists() and not picture.exists(), name


def test_confusion_wants_a_png(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        evaluate.main(["--checkpoint-dir", str(tmp_path), "--confusion", str(tmp_path / "c.jpg")])
    assert exit.value.code == 2 and "--confusion" in capsys.readouterr().err


# ---------------------------------------------------------------- cache and determinism

def toy_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n)


def test_classifier_is_cached_by_its_training_data_and_deterministic_with_its_seed(tmp_path):
    images, labels = toy_data()
    first, path, trained = classifier.load_or_train_classifier(images, labels, 0, str(tmp_path), steps=3)
    assert trained and os.path.isfile(path)
    again, path2, trained = classifier.load_or_train_classifier(images, labels, 0, str(tmp_path), steps=3)
    assert not trained and path2 == path
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    labels = labels.copy()
    labels[0] = (labels[0] + 1) % 10  # one label changed: other data, another classifier
    other, path3, trained = classifier.load_or_train_classifier(images, labels, 0, str(tmp_path), steps=3)
    assert trained and path3 != path
    retrained, _, trained = classifier.load_or_train_classifier(images, labels, 0, str(tmp_path), retrain=True,
                                                                steps=3)
    assert trained
    # Trained again on the same data with the same seed: the same weights, bit for bit; another seed, others.
    for a, b in zip(other.get_weights(), retrained.get_weights()):
        np.testing.assert_array_equal(a, b)
    another_seed = classifier.train_classifier(images, labels, 1, steps=3)
    assert not np.array_equal(other.get_weights()[0], another_seed.get_weights()[0])


def shifted(image, dy, dx):
    """image [28, 28, C] moved dy pixels down and dx right, zeros shifted in."""
    out = np.zeros_like(image)
    src = image[max(0, -dy):28 - max(0, dy), max(0, -dx):28 - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def test_the_shift_augments_training_only_by_whole_pixels():
    images, labels = toy_data(64)
    x = images[..., None].astype(np.float32) + 1  # no zero pixel: a shifted-in zero shows
    shift = classifier.build_classifier(0).get_layer("shift")
    np.testing.assert_array_equal(shift(x, training=False).numpy(), x)
    moved = shift(x, training=True).numpy()
    r = classifier.CLASSIFIER_SHIFT
    seen = set()
    for image, out in zip(x, moved):
        found = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                 if np.array_equal(shifted(image, dy, dx), out)]
        assert len(found) == 1, "not a shift by whole pixels within CLASSIFIER_SHIFT"
        seen.add(found[0])
    assert len(seen) > 3 and (0, 0) in seen  # random per image
    # A trained classifier's inference is deterministic: no shift, no dropout. predict's batches of 32 and
    # one call on all 64 sum in another order on some CPUs (AVX2's kernels block by batch size): float32
    # rounding of a logit, a few units of 1.2e-7 times its size; the shift or dropout move logits by tenths.
    trained = classifier.train_classifier(images, labels, 0, steps=3)
    first = trained.predict(images[..., None], verbose=0)
    np.testing.assert_array_equal(first, trained.predict(images[..., None], verbose=0))
    np.testing.assert_allclose(first, trained(images[..., None], training=False).numpy(), rtol=0,
                               atol=1e-5 * np.abs(first).max())
    _, probs = classifier.features_and_probs(trained, images)
    np.testing.assert_array_equal(probs, classifier.features_and_probs(trained, images)[1])


def test_classifier_steps_grow_with_the_data_between_a_floor_and_a_ceiling(monkeypatch):
    assert classifier.classifier_steps(300) == classifier.CLASSIFIER_MIN_STEPS
    assert classifier.classifier_steps(8000) == 2000  # 32 epochs of the 8,000 MNIST digits
    assert classifier.classifier_steps(12000) == 3000
    assert classifier.classifier_steps(50000) == classifier.CLASSIFIER_MAX_STEPS == 6000
    monkeypatch.setattr(classifier, "CLASSIFIER_STEPS", 3)
    assert classifier.classifier_steps(50000) == 3


# ---------------------------------------------------------------- CLI and training hook

TINY = SMALL_FLAGS + ["--batch-size", "16", "--seed", "1", "--log-every", "100"]


@pytest.fixture
def toy_files(tmp_path):
    images, labels = toy_data(400)
    write_idx(tmp_path / "images", images)
    write_idx(tmp_path / "labels", labels)
    return ["--train-images", str(tmp_path / "images"), "--train-labels", str(tmp_path / "labels")]


@pytest.fixture
def small_eval(tmp_path, monkeypatch):
    monkeypatch.setattr(classifier, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(classifier, "CLASSIFIER_STEPS", 3)


def test_training_hook_writes_metrics_and_evaluate_reads_the_run(tmp_path, toy_files, small_eval, capsys):
    ckpt = str(tmp_path / "ckpt")
    # 300 training images / 16 = 18 iterations an epoch; 20 iterations cross one epoch's end.
    assert train.main(TINY + toy_files + ["--valid-size", "100", "--max-iterations", "20", "--eval-every", "8",
                                          "--eval-every-epoch", "--eval-n-per-label", "5",
                                          "--checkpoint-dir", ckpt, "--vis-dir", str(tmp_path / "vis")]) == 0
    out = capsys.readouterr().out
    assert "classifier: training on 300 images" in out
    with open(os.path.join(ckpt, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    # First the held-out real figures (plot's reference line), then one line per measurement.
    assert set(lines[0]) == {"real", "classifier_accuracy"} and lines[0]["real"]["n"] == 50
    lines = lines[1:]
    assert [m["iteration"] for m in lines] == [8, 16, 18, 20]  # every 8, the epoch's end, the run's end
    figures = {"label_agreement", "per_label_agreement", "classifier_score", "frechet_distance", "kid", "kid_std",
               "precision", "recall", "cas", "copies", "n"}
    for m in lines:  # the trained weights' figures, and the averaged generator's (--ema-decay's default)
        assert set(m) == {"iteration", "epoch", "wall_time", "average"} | figures
        assert set(m["average"]) == figures
        for g in (m, m["average"]):
            # 5 images of each label: each label's share is a count of fifths, and the share of all
            # 50 read as asked is the mean of the ten.
            assert g["n"] == 50 and len(g["per_label_agreement"]) == 10
            assert all(5 * share == round(5 * share) for share in g["per_label_agreement"])
            assert g["label_agreement"] == pytest.approx(np.mean(g["per_label_agreement"]), abs=1e-12)
            assert g["cas"] is None  # CAS: only evaluate measures it
        assert m["average"]["frechet_distance"] != m["frechet_distance"]
    assert out.count("quality at iteration") == 4
    assert "quality of the last weights (iteration 20)" in out

    out_json = str(tmp_path / "figures.json")
    assert evaluate.main(["--checkpoint-dir", ckpt, "--n-per-label", "5", "--out", out_json, "--no-cas"]) == 0
    out = capsys.readouterr().out
    assert "classifier: training" not in out  # cached by the hook's run
    assert "held-out real" in out and "accurate on 100 held-out real images" in out
    with open(out_json) as f:
        result = json.load(f)
    assert result["generated"]["n"] == 50 and result["real"]["n"] == 50 and result["frechet_n"] == 50
    assert set(result["generated"]) == set(result["real"]) == figures
    assert result["generated"]["cas"] is None and result["real"]["cas"] is None  # --no-cas
    # The same weights (by default the average), seed and sizes as the hook's last measurement: the same figures.
    assert "(averaged generator)" in out and result["weights"] == "average"
    assert_same_figures(result["generated"], lines[-1]["average"])
    assert evaluate.main(["--checkpoint-dir", ckpt, "--n-per-label", "5", "--out", out_json,
                          "--weights", "trained", "--no-cas"]) == 0
    assert "(trained weights)" in capsys.readouterr().out
    with open(out_json) as f:
        result = json.load(f)
    assert result["weights"] == "trained"
    assert_same_figures(result["generated"], lines[-1])


def assert_same_figures(evaluated, hooked):
    """Every figure evaluate gave equals the hook's (its record's extra keys aside), to float32 sums
    in another order."""
    assert set(evaluated) <= set(hooked)
    for name, value in evaluated.items():
        if value is None:
            assert hooked[name] is None, name
        else:
            assert np.asarray(value, float) == pytest.approx(np.asarray(hooked[name], float), rel=1e-4), name


def test_the_hook_scores_the_split_training_holds_without_loading_the_data_again(tmp_path, tiny_idx, small_eval,
                                                                                 monkeypatch, capsys):
    loads = []
    load_dataset = data.load_dataset
    monkeypatch.setattr(data, "load_dataset", lambda cfg: loads.append(cfg) or load_dataset(cfg))
    # 64 training images, 20 held out, and the folder's 20 test images: 40 held-out real images.
    assert train.main(TINY + ["--data-dir", str(tiny_idx), "--valid-size", "20", "--max-iterations", "2",
                              "--eval-every", "2", "--eval-n-per-label", "2", "--checkpoint-dir",
                              str(tmp_path / "ckpt"), "--vis-dir", str(tmp_path / "vis")]) == 0
    out = capsys.readouterr().out
    assert len(loads) == 1, f"the data were loaded {len(loads)} times"
    assert "classifier: training on 44 images" in out and "accurate on 40 held-out real images" in out


def test_importing_train_loads_neither_matplotlib_nor_the_classifier():
    """Only a run that measures quality loads the classifier (Keras's, through evaluate); none draws; the
    demo page's Gradio is an extra that no training loads."""
    code = ("import sys, dcgan_mnist.train; loaded = [m for m in ('matplotlib', 'dcgan_mnist.classifier', "
            "'dcgan_mnist.evaluate', 'gradio', 'dcgan_mnist.demo') if m in sys.modules]; assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr[-2000:]


def test_evaluate_over_seeds_prints_the_mean_and_half_the_range(tmp_path, toy_files, small_eval, capsys):
    ckpt = str(tmp_path / "ckpt")
    assert train.main(TINY + toy_files + ["--valid-size", "100", "--max-iterations", "1", "--checkpoint-dir", ckpt,
                                          "--vis-dir", str(tmp_path / "vis")]) == 0
    capsys.readouterr()
    out_json = str(tmp_path / "seeds.json")
    assert evaluate.main(["--checkpoint-dir", ckpt, "--seeds", "3", "4", "--n-per-label", "5", "--no-cas",
                          "--weights", "trained", "--out", out_json]) == 0
    out = capsys.readouterr().out
    with open(out_json) as f:
        written = json.load(f)
    assert written["seeds"] == [3, 4] and [r["seed"] for r in written["results"]] == [3, 4]
    assert all(r["weights"] == "trained" for r in written["results"])
    # The seed sets the classifier, the noise and the halves: the figures differ between seeds.
    first, second = (r["generated"]["frechet_distance"] for r in written["results"])
    assert first != second
    for row in ("generated", "real"):
        values = [r[row]["frechet_distance"] for r in written["results"]]
        assert written["summary"][row]["frechet_distance"] == pytest.approx(
            dict(mean=np.mean(values), half_range=(max(values) - min(values)) / 2))
        assert written["summary"][row]["cas"] is None  # --no-cas
    # One Markdown table: the head, its rule, the generated row and the held-out real row.
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) == 4 and table[0].startswith("| | agreement | score | Frechet | KID")
    mean = written["summary"]["generated"]["label_agreement"]
    assert table[2].startswith(f"| generated | {mean['mean']:.4f} ± {mean['half_range']:.4f} |")
    assert table[3].startswith("| held-out real |") and table[3].split(" | ")[7] == "-"  # CAS: not measured
    assert out.count("seed 3, data") == out.count("seed 4, data") == 1
    # --seed and --seeds exclude each other; --seed alone keeps writing one result.
    with pytest.raises(SystemExit):
        evaluate.main(["--checkpoint-dir", ckpt, "--seed", "1", "--seeds", "1", "2"])
    assert evaluate.main(["--checkpoint-dir", ckpt, "--seed", "3", "--n-per-label", "5", "--no-cas",
                          "--weights", "trained", "--out", out_json]) == 0
    with open(out_json) as f:
        assert json.load(f)["generated"] == written["results"][0]["generated"]


def test_evaluate_without_a_checkpoint_exits_2(tmp_path, capsys):
    assert evaluate.main(["--checkpoint-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no checkpoint in" in err


def test_evaluate_without_data_or_held_out_images_exits_2(tmp_path, toy_files, small_eval, capsys):
    ckpt = str(tmp_path / "ckpt")
    assert train.main(TINY + toy_files + ["--valid-size", "0", "--max-iterations", "1",
                                          "--checkpoint-dir", ckpt, "--vis-dir", str(tmp_path / "vis")]) == 0
    capsys.readouterr()
    assert evaluate.main(["--checkpoint-dir", ckpt]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only 0 held-out real images" in err and "--valid-size" in err

    _, labels = toy_data(400)
    write_idx(toy_files[3], (labels + 1) % 10)  # other labels than the run trained on
    assert evaluate.main(["--checkpoint-dir", ckpt]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the data the run was trained on" in err

    os.remove(toy_files[1])  # the run's training images are gone
    assert evaluate.main(["--checkpoint-dir", ckpt, "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and toy_files[1] in err
    assert not os.path.exists(tmp_path / "x.json")


def test_training_with_eval_but_no_held_out_images_writes_nothing(tmp_path, toy_files, small_eval, capsys):
    ckpt = tmp_path / "ckpt"
    assert train.main(TINY + toy_files + ["--valid-size", "0", "--eval-every", "5",
                                          "--checkpoint-dir", str(ckpt), "--vis-dir", str(tmp_path / "vis")]) == 2
    assert "--valid-size" in capsys.readouterr().err
    assert not ckpt.exists()


def test_eval_flags_are_checked():
    with pytest.raises(Exception, match="--eval-every 0"):
        Config(eval_every=0).validate()
    with pytest.raises(Exception, match="--eval-n-per-label 0"):
        Config(eval_n_per_label=0).validate()
