"""The quality picture from a hand-written metrics.jsonl: no training needed."""
import json

import numpy as np
import pytest
from matplotlib import colors, rcParams
from PIL import Image

from conftest import call_main
from dcgan_mnist import plot


def figures(la, cs, fd, n=100):
    return {"label_agreement": la, "classifier_score": cs, "frechet_distance": fd, "n": n}


def write_metrics(folder, lines):
    folder.mkdir(exist_ok=True)
    path = folder / "metrics.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def measurement(iteration, average=True):
    line = {"iteration": iteration, "epoch": iteration / 62, "wall_time": iteration * 0.3,
            **figures(0.5 + iteration / 4000, 2 + iteration / 300, 400 / (1 + iteration / 100))}
    if average:
        line["average"] = figures(0.45 + iteration / 3500, 1.8 + iteration / 280, 450 / (1 + iteration / 90))
    return line


def call(capsys, *argv):
    return call_main(capsys, plot.main, *argv)


def test_three_panels_with_the_real_line(tmp_path, capsys):
    write_metrics(tmp_path / "ckpt", [measurement(i) for i in range(100, 1600, 100)])
    (tmp_path / "eval.json").write_text(json.dumps({"generated": figures(0.9, 8, 20), "real": figures(0.98, 9.6, 2)}))
    code, out, err = call(capsys, "--checkpoint-dir", tmp_path / "ckpt", "--out", tmp_path / "q.png",
                          "--real", tmp_path / "eval.json", "--title", "a run")
    assert code == 0, err
    metrics = tmp_path / "ckpt" / "metrics.jsonl"
    assert out.splitlines() == [f"wrote {tmp_path / 'q.png'}: 15 measurements, iterations 100 to 1500, of the "
                                f"trained weights and the averaged generator, from {metrics}"]
    with Image.open(tmp_path / "q.png") as image:
        assert image.format == "PNG" and image.size == (1200, 360)
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    # Three panels side by side, each with both curves across its width and the real line, dashed
    # grey, beyond every measurement: above the curves where higher is better, below for the distance.
    trained, averaged = (colour(c["color"]) for c in list(rcParams["axes.prop_cycle"])[:2])
    for i, panel in enumerate(np.split(pixels, 3, axis=1)):
        width = panel.shape[1]
        rows = []
        for curve in (trained, averaged):
            ys, xs = np.nonzero(near(panel, curve))
            assert xs.size and xs.max() - xs.min() > width / 2, f"panel {i}: a curve is missing"
            rows.append(ys)
        dashes = np.nonzero(near(panel, colour("gray")).sum(axis=1) > width / 3)[0]
        assert dashes.size, f"panel {i}: no held-out real line"
        curves = np.concatenate(rows)
        if i < 2:
            assert dashes.max() < curves.min(), f"panel {i}: the real line is not above the curves"
        else:
            assert dashes.min() > curves.max(), "the real Frechet distance is not below the curves"
    assert not list(tmp_path.glob(".tmp-*"))


def colour(name):
    return np.array(colors.to_rgb(name)) * 255


def near(pixels, rgb, tolerance=40):
    """Where pixels are within tolerance (of 255, per channel) of rgb."""
    return np.abs(pixels - rgb).max(axis=2) <= tolerance


def test_without_real_figures_or_an_average_it_says_so(tmp_path, capsys, monkeypatch):
    write_metrics(tmp_path / "checkpoints", [measurement(i, average=False) for i in (10, 20)])
    monkeypatch.chdir(tmp_path)
    code, out, err = call(capsys)  # the defaults: --checkpoint-dir checkpoints, --out quality.png
    assert code == 0, err
    assert "of the trained weights only (no averaged generator)" in out
    assert out.splitlines()[1].startswith("no held-out real line (this metrics.jsonl has none): pass --real FILE")
    assert Image.open(tmp_path / "quality.png").size == (1200, 360)


def test_a_resumed_run_keeps_the_later_measurement_of_an_iteration(tmp_path):
    early, again = measurement(200), measurement(200)
    again["label_agreement"] = 0.75
    path = write_metrics(tmp_path, [measurement(100), early, measurement(300), again])
    records, real = plot.read_metrics(str(path))
    assert [r["iteration"] for r in records] == [100, 200, 300] and records[1]["label_agreement"] == 0.75
    assert real is None


def test_the_hooks_real_line_is_the_reference_and_the_latest_one_wins(tmp_path, capsys):
    first, resumed = dict(real=figures(0.9, 9.0, 4.0)), dict(real=figures(0.95, 9.5, 3.0))
    path = write_metrics(tmp_path, [first, measurement(100), resumed, measurement(200)])
    records, real = plot.read_metrics(str(path))
    assert [r["iteration"] for r in records] == [100, 200] and real == resumed["real"]
    code, out, err = call(capsys, "--checkpoint-dir", tmp_path, "--out", tmp_path / "q.png")
    assert code == 0 and "no held-out real line" not in out, err
    write_metrics(tmp_path, [dict(real={"label_agreement": "x"}), measurement(100)])
    code, _, err = call(capsys, "--checkpoint-dir", tmp_path, "--out", tmp_path / "r.png")
    assert code == 2 and "line 1, real: label_agreement is missing or not a number" in err
    assert not (tmp_path / "r.png").exists()


@pytest.mark.parametrize("lines, flags, message", [
    (None, [], "metrics.jsonl: no such file (train with --eval-every N or --eval-every-epoch"),
    ([], [], "metrics.jsonl: no measurements (train with --eval-every"),
    (["", "  "], [], "metrics.jsonl: no measurements"),
    ([measurement(100), '{"iteration": 200, "epo'], [], "metrics.jsonl line 2: not JSON"),
    (["[1, 2]"], [], "metrics.jsonl line 1: not a measurement (no iteration)"),
    ([{"iteration": 5, "label_agreement": 0.5, "classifier_score": 2.0}], [],
     "metrics.jsonl line 1: frechet_distance is missing or not a number"),
    ([{**measurement(5), "classifier_score": "high"}], [], "line 1: classifier_score is missing or not a number"),
    ([{**measurement(5), "average": 3}], [], "line 1: average is not an object"),
    ([{**measurement(5), "average": {"label_agreement": 1}}], [], "line 1, average: classifier_score is missing"),
    ([measurement(5)], ["--real", "missing.json"], "--real missing.json: No such file or directory"),
    ([measurement(5)], ["--real", "ckpt/metrics.jsonl"], "--real ckpt/metrics.jsonl: not a file of python -m"),
    ([measurement(5)], ["--out", "q.jpg"], "--out q.jpg: must end in .png"),
    ([measurement(5)], ["--out", "none/q.png"], "--out none/q.png: folder none does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch, lines, flags, message):
    if lines is not None:
        write_metrics(tmp_path / "ckpt", lines)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code, out, err = call(capsys, "--checkpoint-dir", "ckpt", "--out", "q.png", *flags)
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
