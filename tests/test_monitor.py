"""--logdir (TensorBoard summaries), --progress (a tqdm bar per epoch), progress.gif and --gif."""
import functools
import glob
import os

import numpy as np
import pytest
from PIL import Image

from conftest import SMALL_FLAGS, write_random_pair
from dcgan_mnist import train

# 64 images, batch 8: 8 iterations per epoch; a grid every 5 iterations.
TINY = ["--valid-size", "0", "--batch-size", "8", *SMALL_FLAGS, "--step", "5", "--seed", "3", "--strategy", "one",
        "--visualize-dim", "16"]


@pytest.fixture
def flags(tmp_path):
    return TINY + write_random_pair(tmp_path, seed=1) + [
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--vis-dir", str(tmp_path / "vis")]


def read_events(logdir):
    """{tag: [(step, value)]} for scalars and {tag: [(step, encoded image)]} for images."""
    import tensorflow as tf
    from tensorboard.util import tensor_util
    scalars, images = {}, {}
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tensor_util.make_ndarray(value.tensor)
                if value.metadata.plugin_data.plugin_name == "images":
                    images.setdefault(value.tag, []).append((event.step, array))
                else:
                    scalars.setdefault(value.tag, []).append((event.step, float(array)))
    return scalars, images


def test_logdir_writes_scalars_and_grids(flags, tmp_path, capsys):
    logdir = tmp_path / "tb"
    assert train.main(flags + ["--n-epochs", "2", "--logdir", str(logdir), "--log-every", "2"]) == 0
    log = capsys.readouterr().out
    scalars, images = read_events(str(logdir))
    for tag in ("loss/discrim", "loss/gen", "P/real", "P/gen"):
        assert [step for step, _ in scalars[tag]] == list(range(0, 16, 2)), tag
    # The logged figures are the printed ones.
    assert f"gen loss: {str(np.float32(scalars['loss/gen'][3][1]))}" in log
    assert f"Average P(real)= {str(np.float32(scalars['P/real'][3][1]))}" in log
    seconds = scalars["time/seconds_per_iteration"]
    assert [step for step, _ in seconds] == list(range(2, 16, 2)) and all(s > 0 for _, s in seconds)
    # Grids at iterations 0, 5, 10, 15, as PNGs equal to the JPEG grids up to compression.
    assert [step for step, _ in images["samples"]] == [0, 5, 10, 15]
    import io
    width, height, png = images["samples"][-1][1]
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    assert (int(width), int(height)) == (112, 112) and pixels.shape == (112, 112, 3)
    jpeg = np.asarray(Image.open(tmp_path / "vis" / "sample_0003.jpg"), dtype=np.int16)
    assert np.abs(jpeg - pixels).mean() < 3


def test_progress_bar_replaces_the_six_lines(flags, capsys, monkeypatch):
    from dcgan_mnist import monitor
    monkeypatch.setattr(monitor, "tqdm", functools.partial(monitor.tqdm, mininterval=0))  # draw every iteration
    assert train.main(flags + ["--n-epochs", "2", "--progress"]) == 0
    captured = capsys.readouterr()
    assert "updating" not in captured.out and "gen loss:" not in captured.out
    assert "epoch 1/2: 8 iterations" in captured.out and "epoch 2/2: 8 iterations" in captured.out
    bar = captured.err
    assert "epoch 1/2" in bar and "epoch 2/2" in bar and "8/8" in bar
    assert "it/s" in bar or "s/it" in bar  # tqdm shows whichever reads better
    assert "D=" in bar and "G=" in bar and "P(real)=" in bar and "P(gen)=" in bar
    assert "<" in bar  # elapsed<remaining: the ETA


def test_progress_gif_at_the_end_and_on_demand(flags, tmp_path, capsys):
    assert train.main(flags + ["--n-epochs", "2", "--log-every", "100"]) == 0
    gif = tmp_path / "vis" / "progress.gif"
    with Image.open(gif) as image:
        assert image.n_frames == 4 and image.size == (112, 112)
        frames = []
        for i in range(image.n_frames):
            image.seek(i)
            frames.append(np.asarray(image.convert("RGB"), dtype=np.int16))
    for i, frame in enumerate(frames):  # in the order the grids were written
        grid = np.asarray(Image.open(tmp_path / "vis" / f"sample_{i:04d}.jpg"), dtype=np.int16)
        assert np.abs(frame - grid).mean() < 2
    assert not np.array_equal(frames[0], frames[-1])

    os.remove(gif)
    os.remove(tmp_path / "vis" / "sample_0001.jpg")
    checkpoints = sorted(os.listdir(tmp_path / "ckpt"))
    capsys.readouterr()
    assert train.main(["--gif", "--vis-dir", str(tmp_path / "vis")]) == 0
    assert f"wrote {gif}" in capsys.readouterr().out
    with Image.open(gif) as image:
        assert image.n_frames == 3
    assert sorted(os.listdir(tmp_path / "ckpt")) == checkpoints  # nothing trained

    empty = tmp_path / "empty"
    empty.mkdir()
    assert train.main(["--gif", "--vis-dir", str(empty)]) == 2
    assert "--vis-dir" in capsys.readouterr().err and os.listdir(empty) == []
