"""Digits on demand from a checkpoint the test made."""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import SMALL_FLAGS, call_main
from dcgan_mnist import checkpoint, generate, train


def call(capsys, *argv):
    return call_main(capsys, generate.main, *argv)


def test_generate_writes_npz_and_grid(tmp_path, tiny_idx, capsys, monkeypatch):
    """A run of its own: in upstream-quirks mode, which generate must take from the run's record."""
    monkeypatch.chdir(tmp_path)
    code, _, err = call_main(capsys, train.main, "--data-dir", tiny_idx, "--valid-size", "0", "--batch-size", "8",
                             "--max-iterations", "1", "--seed", "1", "--upstream-quirks", *SMALL_FLAGS)
    assert code == 0, err
    # No model flags: they come from the run's record (small dims, quirks mode).
    code, out, err = call(capsys, "--labels", "7710", "--n-per-label", "3", "--npz", "out.npz", "--out", "grid.png",
                          "--seed", "5")
    assert code == 0, err
    assert "wrote grid.png: 4 rows (7710) x 3 from" in out
    with np.load(tmp_path / "out.npz") as f:
        images, labels = f["images"], f["labels"]
    assert images.dtype == np.uint8 and images.shape == (12, 28, 28)
    assert labels.tolist() == [7, 7, 7, 7, 7, 7, 1, 1, 1, 0, 0, 0]
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (3 * 28, 4 * 28)  # one row per requested label
    cells = np.asarray(grid)[..., 0]
    np.testing.assert_array_equal(cells[28:56, 56:84], images[5])  # row 1, column 2 = sample 5
    code, _, err = call(capsys, "--labels", "7710", "--n-per-label", "3", "--npz", "again.npz", "--seed", "5")
    assert code == 0, err
    with np.load(tmp_path / "again.npz") as f:
        np.testing.assert_array_equal(f["images"], images)  # same seed, same digits
    code, _, err = call(capsys, "--labels", "7710", "--n-per-label", "3", "--npz", "other.npz", "--seed", "6")
    assert code == 0, err
    with np.load(tmp_path / "other.npz") as f:
        assert not np.array_equal(f["images"], images)  # another seed, other digits


def test_a_small_batch_of_one_label_is_drawn_among_the_context(trained_run):
    """--labels 7 --n-per-label 3 alone would be a batch of three 7s, normalised by its own
    statistics (a batch of one is normalised to zero: a blank). Each request is drawn in one batch
    with generate.CONTEXT ordinary draws, so even a lone digit is decided by its noise."""
    model = checkpoint.restore_generator(str(trained_run / "checkpoints")).generator
    images, labels = generate.generate(model, [7], 3, seed=4)
    z = np.random.default_rng(4).uniform(-1, 1, size=(3, model.dim_z)).astype(np.float32)
    np.testing.assert_array_equal(images, draw(model, z, np.eye(10)[[7, 7, 7]], 4))
    assert labels.tolist() == [7, 7, 7]
    alone, _ = generate.generate(model, [7], 1, seed=4)
    np.testing.assert_array_equal(alone[0], draw(model, z[:1], np.eye(10)[[7]], 4)[0])
    # Without the context a lone cell is normalised to zero: the same image whatever its noise.
    blanks = [generate.generate(model, [7], 1, seed=s, context=False)[0][0] for s in (4, 5)]
    np.testing.assert_array_equal(blanks[0], blanks[1])
    assert not np.array_equal(alone[0], generate.generate(model, [7], 1, seed=5)[0][0])


def test_generate_errors(tmp_path, capsys, monkeypatch, trained_run):
    """In this process; the real process's exit status and one line: tests/test_layout.py's --verbose test.
    Labels are read against the run's (digits here), so a bad one is refused once the run is found."""
    monkeypatch.chdir(tmp_path)
    code, _, err = call(capsys, "--checkpoint-dir", tmp_path / "none")
    assert code == 2 and err.startswith("error: no checkpoint in") and len(err.splitlines()) == 1
    run = ("--checkpoint-dir", trained_run / "checkpoints")
    for flags, message in [(["--labels", "1a"], "--labels '1a': no label '1a': the run's labels are 0, 1, 2"),
                           (["--labels", "3,10"], "--labels '3,10': no label '10'"),
                           (["--interpolate", "classes", "--pairs", "07,33"], "--pairs '07,33': give pairs of two "
                                                                                "different labels, e.g. 07,18,36")]:
        code, _, err = call(capsys, *run, *flags)
        assert code == 2 and message in err and len(err.splitlines()) == 1, (flags, err)
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.gif"))


def test_labels_are_digits_or_comma_separated_names_or_indices():
    digits = tuple("0123456789")
    assert generate.parse_labels("7714", digits) == [7, 7, 1, 4]
    assert generate.parse_labels("0,9, 3", digits) == [0, 9, 3]
    names = ("bag", "coat", "sneaker") + tuple(f"c{i}" for i in range(3, 26))
    assert generate.parse_labels("bag,sneaker", names) == [0, 2]
    assert generate.parse_labels("0,11,25", names) == [0, 11, 25]
    assert generate.parse_labels("12", names) == [12]  # past ten classes a number is one index, not digits
    assert generate.parse_labels("sneaker,c11,1", names) == [2, 11, 1]
    assert generate.parse_pairs("bag:sneaker,0:25", names) == [(0, 2), (0, 25)]
    assert generate.parse_pairs("07,18", digits) == [(0, 7), (1, 8)]
    few = ("cat", "dog")
    assert generate.parse_labels("10", few) == [1, 0]  # a run of up to ten classes takes digits, as MNIST's
    for text, names_ in [("bag,boot", names), ("26", names), ("", few), ("2", few), ("30", names)]:
        with pytest.raises(ValueError, match="no label"):
            generate.parse_labels(text, names_)
    assert generate.default_labels(digits) == "0123456789" and generate.default_labels(few) == "cat,dog"
    assert generate.parse_pairs(generate.default_pairs(names), names) == [(0, 25), (1, 24), (2, 23)]


# ---------------------------------------------------------------- --interpolate

@pytest.fixture
def run(trained_copy):
    """A copy of the trained run (conftest.trained_run: averaged generator, the default) to write into."""
    return trained_copy


def cells(path, rows, cols):
    """A grid image's cells as uint8 [rows, cols, 28, 28], after checking its size."""
    grid = np.asarray(Image.open(path))[..., 0]
    assert grid.shape == (rows * 28, cols * 28)
    return grid.reshape(rows, 28, cols, 28).transpose(0, 2, 1, 3)


def draw(model, Z, Y, seed):
    """The model's own images for noise Z and labels Y, as uint8 [B, 28, 28]: one batch with the
    interpolation's context, generate.CONTEXT draws of labels 0 to 9 in turn, noise of [seed, 1]."""
    context_z = np.random.default_rng([seed, 1]).uniform(-1, 1, size=(generate.CONTEXT, model.dim_z))
    context_y = np.eye(10)[np.arange(generate.CONTEXT) % 10]
    images = model.samples_generator(tf.constant(np.concatenate([Z, context_z]), tf.float32),
                                     tf.constant(np.concatenate([Y, context_y]), tf.float32)).numpy()
    return np.round(images[:len(Z), ..., 0] * 255.0).astype(np.uint8)


def test_class_interpolation_grid_gif_and_its_ends_are_plain_draws_of_the_two_digits(run, capsys, monkeypatch):
    monkeypatch.chdir(run)
    code, out, err = call(capsys, "--interpolate", "classes", "--pairs", "07,18,36", "--steps", "6", "--seed", "5",
                          "--out", "classes.png", "--gif", "classes.gif")
    assert code == 0, err
    assert "wrote classes.png: classes interpolation of pairs 07,18,36 (one row each), 6 steps" in out
    assert "(averaged generator)" in out and "wrote classes.gif" in out
    grid = cells(run / "classes.png", 3, 6)  # rows = pairs, columns = steps, 28 px cells

    # The same cells from the model itself: row i keeps noise vector i of the seed; its ends are
    # given as plain one-hot labels (as generate draws them), the steps between as soft labels.
    # One batch of the same composition, so batchnorm sees the same statistics and the grid is
    # reproduced bit for bit.
    model, *_, drawn = checkpoint.restore_generator(str(run / "checkpoints"))
    assert drawn == "average"
    z = np.random.default_rng(5).uniform(-1, 1, size=(3, model.dim_z)).astype(np.float32)
    e = np.eye(10)
    Z, Y = [], []
    for row, (a, b) in enumerate([(0, 7), (1, 8), (3, 6)]):
        for t in np.linspace(0, 1, 6):
            Z.append(z[row])
            Y.append(e[a] if t == 0 else e[b] if t == 1 else (1 - t) * e[a] + t * e[b])
    np.testing.assert_array_equal(grid, draw(model, np.array(Z), np.array(Y), 5).reshape(3, 6, 28, 28))
    assert not np.array_equal(grid[:, 0], grid[:, -1])  # the label does move the digits

    with Image.open(run / "classes.gif") as gif:
        assert gif.n_frames == 6  # one frame per step
        for t in range(6):
            gif.seek(t)
            frame = np.asarray(gif.convert("L"))
            assert frame.shape == (28, 3 * 28)  # step t of every row, side by side
            np.testing.assert_array_equal(frame.reshape(28, 3, 28).transpose(1, 0, 2), grid[:, t])


def test_latent_interpolation_moves_the_noise_between_two_draws_with_the_label_fixed(run, capsys):
    code, out, err = call(capsys, "--checkpoint-dir", run / "checkpoints", "--interpolate", "latent",
                          "--labels", "4", "--steps", "3", "--seed", "2", "--weights", "trained",
                          "--out", run / "latent.png")
    assert code == 0, err
    assert "latent interpolation of labels 4 (one row each), 3 steps" in out and "(trained weights)" in out
    grid = cells(run / "latent.png", 1, 3)
    model = checkpoint.restore_generator(str(run / "checkpoints"), weights="trained").generator
    z0, z1 = np.random.default_rng(2).uniform(-1, 1, size=(2, 1, model.dim_z)).astype(np.float32)
    midpoint = (z0.astype(np.float64) + z1) / 2  # exact in float64, as the interpolation's own mix is
    want = draw(model, np.concatenate([z0, midpoint, z1]), np.eye(10)[[4, 4, 4]], 2)
    np.testing.assert_array_equal(grid[0], want)


def test_a_row_hardly_depends_on_the_other_rows(run):
    # The context (generate.CONTEXT ordinary draws) sets the batch's statistics: 12 cells more move
    # them by about 2%. Measured on this run: at most 1 grey level apart; without the context, where
    # the row's 6 cells alone are the whole batch, 32.
    model = checkpoint.restore_generator(str(run / "checkpoints")).generator
    alone = generate.class_interpolation(model, [(0, 7)], 6, seed=3)
    among = generate.class_interpolation(model, [(0, 7), (1, 8), (3, 6)], 6, seed=3)
    assert np.abs(alone[0].astype(int) - among[0]).max() <= 2


def test_latent_interpolation_defaults_to_every_digit_and_ten_steps(run, capsys, monkeypatch):
    monkeypatch.chdir(run)
    code, out, err = call(capsys, "--interpolate", "latent")
    assert code == 0, err
    assert out.startswith("wrote latent-interpolation.png: latent interpolation of labels 0123456789 (one row each), "
                          "10 steps")
    cells(run / "latent-interpolation.png", 10, 10)


@pytest.mark.parametrize("flags, message", [
    (["--interpolate", "classes", "--pairs", "77"], "--pairs '77': give pairs of two different labels"),
    (["--interpolate", "classes", "--pairs", "07,1"], "--pairs '07,1': give"),
    (["--interpolate", "classes", "--pairs", "0a"], "--pairs '0a': give"),
    (["--interpolate", "classes", "--steps", "1"], "--steps 1: must be at least 2"),
    (["--interpolate", "latent", "--labels", "x"], "--labels 'x': no label 'x'"),
    (["--interpolate", "latent", "--pairs", "07"], "--pairs 07: only with --interpolate classes"),
    (["--interpolate", "classes", "--labels", "01"], "--labels 01: not with --interpolate classes"),
    (["--interpolate", "latent", "--n-per-label", "3"], "--n-per-label 3: only without --interpolate"),
    (["--interpolate", "latent", "--npz", "x.npz"], "--npz x.npz: only without --interpolate"),
    (["--steps", "4"], "--steps 4: only with --interpolate"),
    (["--gif", "x.gif"], "--gif x.gif: only with --interpolate"),
    (["--interpolate", "latent", "--gif", "x.png"], "--gif x.png: must end in .gif"),
    (["--interpolate", "latent", "--out", "none/x.png"], "--out none/x.png: folder none does not exist"),
    (["--interpolate", "classes", "--gif", "none/x.gif"], "--gif none/x.gif: folder none does not exist"),
    (["--interpolate", "sideways"], "argument --interpolate: invalid choice: 'sideways'"),
])
def test_interpolation_flags_are_checked_before_anything_is_written(run, capsys, monkeypatch, flags, message):
    monkeypatch.chdir(run)
    before = sorted(p.name for p in run.iterdir())
    code, out, err = call(capsys, *flags)
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert sorted(p.name for p in run.iterdir()) == before
