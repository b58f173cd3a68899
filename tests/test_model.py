"""The network: upstream's variable names and shapes, every tensor shape of the walkthrough (read from
the live model by `python -m dcgan_mnist.model`), one Generator class, and batchnorm, lrelu and the
costs against NumPy references, default and upstream-quirks modes."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import SMALL_MODEL
from dcgan_mnist import model as model_mod
from dcgan_mnist.config import Config
from dcgan_mnist.model import DCGAN, batchnormalize, bce, lrelu

UPSTREAM_SHAPES = {
    "gen_W1": [110, 1024], "gen_W2": [1034, 6272], "gen_W3": [5, 5, 64, 138], "gen_W4": [5, 5, 1, 74],
    "discrim_W1": [5, 5, 11, 64], "discrim_W2": [5, 5, 74, 128], "discrim_W3": [6282, 1024],
    "discrim_W4": [1034, 1],
}


@pytest.fixture(scope="module")
def dcgan():
    return DCGAN(**Config().model_kwargs(), seed=0)


def test_variable_names_shapes_and_init(dcgan):
    by_name = {v.name.split(":")[0]: v for v in dcgan.trainable_variables}
    assert {n: list(v.shape) for n, v in by_name.items()} == UPSTREAM_SHAPES
    assert [v.name.split(":")[0] for v in dcgan.gen_vars] == ["gen_W1", "gen_W2", "gen_W3", "gen_W4"]
    assert [v.name.split(":")[0] for v in dcgan.discrim_vars] == [f"discrim_W{i}" for i in range(1, 5)]
    w = by_name["discrim_W3"].numpy()
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3  # N(0, 0.02)


# The walkthrough's shapes for upstream's sizes and a batch of B (upstream's train.py: B = 128).
def walkthrough(B):
    return {
        "generate": [["yb", [B, 1, 1, 10]], ["Z", [B, 110]], ["h1", [B, 1024]], ["h1", [B, 1034]],
                     ["h2", [B, 6272]], ["h2", [B, 7, 7, 128]], ["h2", [B, 7, 7, 138]],
                     ["h3", [B, 14, 14, 64]], ["h3", [B, 14, 14, 74]], ["h4", [B, 28, 28, 1]]],
        "discriminate": [["yb", [B, 1, 1, 10]], ["X", [B, 28, 28, 11]], ["h1", [B, 14, 14, 64]],
                         ["h1", [B, 14, 14, 74]], ["h2", [B, 7, 7, 128]], ["h2", [B, 6272]],
                         ["h2", [B, 6282]], ["h3", [B, 1024]], ["h3", [B, 1034]], ["h4", [B, 1]]],
    }


@pytest.mark.parametrize("B", [128, 5])
def test_walkthrough_shapes_are_read_from_the_live_model(B):
    model = DCGAN(**{**Config().model_kwargs(), "batch_size": B}, seed=0)
    sections = dict(model_mod.shapes(model))
    assert dict(sections["weights"]) == UPSTREAM_SHAPES
    assert sections["build_model's inputs"] == [("Z", [B, 100]), ("Y", [B, 10]), ("image_real", [B, 28, 28, 1])]
    for name in ("generate", "discriminate"):
        assert [[step.split(" =")[0], shape] for step, shape in sections[name]] == walkthrough(B)[name], name


def test_walkthrough_shapes_stop_when_the_passes_change(monkeypatch):
    """A pass that no longer runs the walkthrough's ops in its order is refused, not mislabelled."""
    model = DCGAN(**{**Config().model_kwargs(), "batch_size": 4}, seed=0)
    original = model_mod.Generator.generate
    monkeypatch.setattr(model_mod.Generator, "generate", lambda self, Z, Y: original(self, Z, Y)[:, :27])
    model_mod.shapes(model)  # a slice is no step of the walkthrough: still read
    monkeypatch.setattr(model_mod.Generator, "generate", lambda self, Z, Y: tf.reshape(original(self, Z, Y), [-1]))
    with pytest.raises(RuntimeError, match="no longer runs the walkthrough's ops"):
        model_mod.shapes(model)


def test_the_model_command_prints_the_walkthrough_for_the_sizes_given(capsys):
    assert model_mod.main(["--batch-size", "128"]) == 0
    out = capsys.readouterr().out
    for line in ("  gen_W2 = [1034, 6272]", "  Z = [128, 100]", "  h2 = concat(h2, yb * ones) = [128, 7, 7, 138]",
                 "  X = concat(image, yb * ones) = [128, 28, 28, 11]", "  h4 = matmul(h3, discrim_W4) = [128, 1]"):
        assert line + "\n" in out
    assert model_mod.main(["--batch-size", "7", "--dim-w3", "16", "--dim-w2", "32"]) == 0
    out = capsys.readouterr().out
    assert "  gen_W3 = [5, 5, 16, 42]\n" in out and "  h2 = concat(h2, yb * ones) = [7, 7, 7, 42]\n" in out
    assert "  h3 = concat(h3, yb * ones) = [7, 14, 14, 26]\n" in out and "  h2 = concat(h2, Y) = [7, 1578]\n" in out
    assert model_mod.main(["--dim-w3", "0"]) == 2
    assert capsys.readouterr().err == "error: --dim-w3 0: must be at least 1\n"


def test_one_generator_class_draws_for_training_and_for_the_tools(tmp_path):
    """A DCGAN is a Generator; a Generator given a DCGAN's sizes and weights draws the same images;
    one restored from a checkpoint of the DCGAN (model/gen_W1 ...) holds the same weights."""
    cfg = Config(**SMALL_MODEL)
    dcgan = DCGAN(**cfg.model_kwargs(), seed=3)
    assert isinstance(dcgan, model_mod.Generator)
    alone = model_mod.Generator(**cfg.generator_kwargs(), weights=dcgan.gen_vars)
    Z, Y = tf.random.uniform([20, 100], -1, 1, seed=1), tf.one_hot(np.arange(20) % 10, 10)
    np.testing.assert_array_equal(alone.samples_generator(Z, Y), dcgan.samples_generator(Z, Y))
    fresh = model_mod.Generator(**cfg.generator_kwargs())
    assert not np.array_equal(fresh.gen_W1.numpy(), dcgan.gen_W1.numpy())
    path = tf.train.Checkpoint(model=dcgan).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=fresh).restore(path).expect_partial()
    for a, b in zip(fresh.gen_vars, dcgan.gen_vars):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_samples_any_batch_size_in_unit_range(dcgan):
    for B in (196, 3):
        x = dcgan.samples_generator(tf.random.uniform([B, 100], -1, 1), tf.one_hot(np.arange(B) % 10, 10))
        assert x.shape == (B, 28, 28, 1)
        assert float(tf.reduce_min(x)) >= 0.0 and float(tf.reduce_max(x)) <= 1.0


def test_batchnorm_matches_numpy():
    rng = np.random.default_rng(1)
    for shape in [(16, 7), (4, 5, 5, 3)]:
        x = rng.normal(3.0, 2.0, size=shape).astype(np.float32)
        axes = tuple(range(x.ndim - 1))
        ref = (x - x.mean(axes)) / np.sqrt(x.var(axes) + 1e-8)  # biased variance, as upstream
        np.testing.assert_allclose(batchnormalize(tf.constant(x)).numpy(), ref, rtol=1e-4, atol=1e-4)


def test_lrelu_matches_numpy():
    x = np.random.default_rng(2).normal(size=100).astype(np.float32)
    np.testing.assert_allclose(lrelu(tf.constant(x)).numpy(), np.where(x > 0, x, 0.2 * x), rtol=1e-6, atol=1e-6)


def np_bce(logits, targets):
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return np.mean(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)))


def test_bce_default_and_quirks():
    logits = np.random.default_rng(3).normal(0, 4, size=(64, 1)).astype(np.float32)
    for t in (np.ones_like(logits), np.zeros_like(logits)):
        np.testing.assert_allclose(bce(logits, t).numpy(), np_bce(logits, t), rtol=1e-5)
        # Upstream defect 1: logits clipped to [1e-7, 1 - 1e-7] first.
        clipped = np.clip(logits, 1e-7, 1 - 1e-7)
        np.testing.assert_allclose(bce(logits, t, upstream_quirks=True).numpy(), np_bce(clipped, t), rtol=1e-5)
    # The fixed cost stays finite where a naive log(sigmoid) would not.
    assert np.isfinite(bce(tf.constant([[200.0], [-200.0]]), tf.constant([[0.0], [1.0]])).numpy())


@pytest.mark.parametrize("quirks", [False, True])
def test_build_model_costs_match_numpy(quirks):
    kw = {**Config(**SMALL_MODEL).model_kwargs(), "upstream_quirks": quirks}
    dcgan = DCGAN(**kw, seed=4)
    rng = np.random.default_rng(5)
    Z = tf.constant(rng.uniform(-1, 1, size=(12, 100)).astype(np.float32))
    Y = tf.one_hot(rng.integers(0, 10, 12), 10)
    real = tf.constant(rng.uniform(0, 1, size=(12, 28, 28, 1)).astype(np.float32))
    d_cost, g_cost, p_real, p_gen = dcgan.build_model(Z, Y, real)
    raw_real = dcgan.discriminate(real, Y).numpy()
    raw_gen = dcgan.discriminate(tf.sigmoid(dcgan.generate(Z, Y)), Y).numpy()
    clip = (lambda a: np.clip(a, 1e-7, 1 - 1e-7)) if quirks else (lambda a: a)
    np.testing.assert_allclose(d_cost.numpy(), np_bce(clip(raw_real), 1) + np_bce(clip(raw_gen), 0), rtol=1e-4)
    np.testing.assert_allclose(g_cost.numpy(), np_bce(clip(raw_gen), 1), rtol=1e-4)
    np.testing.assert_allclose(p_real.numpy(), 1 / (1 + np.exp(-raw_real)), rtol=1e-5)
    np.testing.assert_allclose(p_gen.numpy(), 1 / (1 + np.exp(-raw_gen)), rtol=1e-5)
    if quirks:
        # Defect 2: under the lrelu, every batch's logits are normalised to mean 0, variance 1.
        for raw in (raw_real, raw_gen):
            pre = np.where(raw > 0, raw, raw / 0.2)
            assert abs(pre.mean()) < 1e-4 and abs(pre.var() - 1) < 1e-3
    else:
        assert abs(np.where(raw_real > 0, raw_real, raw_real / 0.2).var() - 1) > 1e-2


def test_the_seeds_constructor_call_builds_upstreams_model():
    """Upstream's train.py's constructor call, word for word, and DCGAN() alike."""
    batch_size = 128
    image_shape = [28,28,1]  # noqa: E231  (as the seed writes it)
    dim_z = 100
    dim_W1 = 1024
    dim_W2 = 128
    dim_W3 = 64
    dcgan_model = DCGAN(
            batch_size=batch_size,
            image_shape=image_shape,
            dim_z=dim_z,
            dim_W1=dim_W1,
            dim_W2=dim_W2,
            dim_W3=dim_W3,
            )
    shapes = {v.name.split(":")[0]: v.shape.as_list() for v in dcgan_model.trainable_variables}
    assert shapes == {"gen_W1": [110, 1024], "gen_W2": [1034, 6272], "gen_W3": [5, 5, 64, 138],
                      "gen_W4": [5, 5, 1, 74], "discrim_W1": [5, 5, 11, 64], "discrim_W2": [5, 5, 74, 128],
                      "discrim_W3": [6282, 1024], "discrim_W4": [1034, 1]}
    assert dcgan_model.batch_size == 128 and not dcgan_model.upstream_quirks
    default = DCGAN()  # model.py's defaults: batch_size 100, the same sizes
    assert default.batch_size == 100 and default.dim_y == 10 and default.image_shape == [28, 28, 1]
    assert {v.name.split(":")[0]: v.shape.as_list() for v in default.trainable_variables} == shapes
