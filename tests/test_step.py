"""The training step's fast path (dcgan_mnist/step.py) computes what model.py's plain path computes."""
import copy
import secrets

import numpy as np
import pytest
import tensorflow as tf

from dcgan_mnist.config import Config
from dcgan_mnist.model import DCGAN
from dcgan_mnist import step

B = 32  # any batch works; small keeps the suite fast


def random_case(upstream_quirks):
    """Fresh random weights and inputs (not zeros), from a seed shown on failure."""
    seed = secrets.randbits(31)
    model = DCGAN(**Config(upstream_quirks=upstream_quirks).model_kwargs(), seed=seed)
    rng = np.random.default_rng(seed)
    Z = tf.constant(rng.uniform(-1, 1, (B, model.dim_z)), tf.float32)
    Y = tf.one_hot(rng.integers(0, 10, B), 10)
    images = tf.constant(rng.uniform(0, 1, (B, 28, 28, 1)), tf.float32)
    return seed, model, Z, Y, images


def costs_and_grads(model, forward, Z, Y, images):
    with tf.GradientTape(persistent=True) as tape:
        d_cost, g_cost, p_real, p_gen = forward(Z, Y, images)
    return ([d_cost, g_cost, p_real, p_gen],
            tape.gradient(d_cost, model.discrim_vars) + tape.gradient(g_cost, model.gen_vars))


def assert_close(fast, plain, what, seed, rtol, plain_error=0.0):
    """fast within rtol of plain, or within 10x plain's own float32 error (plain_error), which
    batchnorm over a near-constant channel can amplify well above rtol on some random draws."""
    scale = float(tf.reduce_max(tf.abs(plain))) or 1.0
    err = float(tf.reduce_max(tf.abs(fast - plain)))
    assert err <= max(rtol * scale, 10 * plain_error) + 1e-6, \
        f"{what}: max error {err:.3g} (scale {scale:.3g}, plain's own float32 error {plain_error:.3g}), seed {seed}"


def float64_copy(model):
    """The same model with float64 weights, to measure the plain path's own rounding error."""
    m64 = copy.copy(model)
    for v in model.trainable_variables:
        setattr(m64, v.name.split(":")[0], tf.Variable(tf.cast(v, tf.float64)))
    return m64


@pytest.mark.parametrize("upstream_quirks", [False, True])
@pytest.mark.parametrize("stack", [False, True])
def test_fast_forward_equals_plain_losses_and_gradients(upstream_quirks, stack):
    seed, model, Z, Y, images = random_case(upstream_quirks)
    plain_out, plain_grads = costs_and_grads(model, model.build_model, Z, Y, images)
    fast_out, fast_grads = costs_and_grads(
        model, lambda *a: step.build_model(model, *a, stack=stack), Z, Y, images)
    for name, f, p in zip(["d_cost", "g_cost", "p_real", "p_gen"], fast_out, plain_out):
        assert_close(f, p, name, seed, 1e-5)
    # Upstream's clip makes the quirks mode's gradients flow through few logits, which
    # amplifies float32 rounding; still far below any real difference.
    rtol = 3e-3 if upstream_quirks else 3e-5
    m64 = float64_copy(model)
    _, ref_grads = costs_and_grads(m64, m64.build_model, *(tf.cast(t, tf.float64) for t in (Z, Y, images)))
    for var, f, p, r in zip(model.discrim_vars + model.gen_vars, fast_grads, plain_grads, ref_grads):
        assert f.shape == var.shape
        plain_error = float(tf.reduce_max(tf.abs(tf.cast(p, tf.float64) - r)))
        assert_close(f, p, "gradient of " + var.name, seed, rtol, plain_error)


def test_label_maps_equal_conv_over_broadcast_labels():
    rng = np.random.default_rng(secrets.randbits(31))
    Y = tf.one_hot(rng.integers(0, 10, 6), 10)
    yb = tf.tile(tf.reshape(Y, [6, 1, 1, 10]), [1, 14, 14, 1])
    W = tf.constant(rng.normal(size=(5, 5, 10, 7)), tf.float32)
    direct = tf.nn.conv2d(yb, W, strides=2, padding="SAME")
    np.testing.assert_allclose(step.label_maps(Y, W, 14, False, tf.float32), direct, atol=1e-5)
    Wt = tf.constant(rng.normal(size=(5, 5, 3, 10)), tf.float32)
    direct_t = tf.nn.conv2d_transpose(yb, Wt, [6, 28, 28, 3], strides=2, padding="SAME")
    np.testing.assert_allclose(step.label_maps(Y, Wt, 14, True, tf.float32), direct_t, atol=1e-5)


def make_steps(model, seed, forwards=None, fused_update=True, precision="float32"):
    optimizers = step.adam_optimizers(2e-4, 0.5, model.discrim_vars, model.gen_vars)
    noise_rng = tf.random.Generator.from_seed(seed)
    return step.make_train_steps(model, *optimizers, noise_rng, precision, forwards=forwards,
                                 fused_update=fused_update)


@pytest.mark.parametrize("upstream_quirks", [False, True])
def test_compiled_steps_equal_plain_steps(upstream_quirks):
    """Two iterations (D then G) of the default step and of a plain step (model.build_model,
    Keras's unfused Adam) from the same weights and noise: same printed figures, same weights."""
    seed, fast_model, _, _, images = random_case(upstream_quirks)
    plain_model = DCGAN(**Config(upstream_quirks=upstream_quirks).model_kwargs(), seed=seed)
    labels = tf.constant(np.random.default_rng(seed).integers(0, 10, B), tf.int32)
    fast_steps = make_steps(fast_model, seed)
    plain_steps = make_steps(plain_model, seed, (plain_model.build_model,) * 2, fused_update=False)
    for i in range(2):
        fast_out = fast_steps[i](images, labels)
        plain_out = plain_steps[i](images, labels)
        for name, f, p in zip(["d_cost", "g_cost", "P(real)", "P(gen)"], fast_out, plain_out):
            assert_close(f, p, f"iteration {i} {name}", seed, 1e-4)
    lr = 2e-4
    for f, p in zip(fast_model.trainable_variables, plain_model.trainable_variables):
        # Adam's first step divides each gradient element by its own magnitude (moving the
        # weight by about lr * sign), so an element within float32 rounding of 0 may step
        # anywhere in +-lr. In --upstream-quirks mode D's output batchnorm shrinks G's gradients
        # to near Adam's epsilon, and up to ~0.8% of G's weights (measured over seeds) step
        # differently. A wrong gradient would move far more: bound the share, the mean and the max.
        diff = np.abs(f.numpy() - p.numpy())
        moved = np.mean(diff > lr / 10)
        assert moved < 0.02, f"{f.name}: {100 * moved:.2f}% of weights moved differently, seed {seed}"
        assert diff.mean() < lr * 1e-2, f"{f.name}: mean difference {diff.mean():.3g}, seed {seed}"
        assert diff.max() <= 2 * lr + 1e-6, f"{f.name}: max difference {diff.max():.3g}, seed {seed}"


def test_bf16_trains_without_nan():
    seed, model, _, _, _ = random_case(False)
    d_step, g_step, _ = make_steps(model, seed, precision="bf16")
    rng = np.random.default_rng(seed)
    start = [v.numpy() for v in model.trainable_variables]
    for i in range(4):
        images = tf.constant(rng.uniform(0, 1, (B, 28, 28, 1)), tf.float32)
        labels = tf.constant(rng.integers(0, 10, B), tf.int32)
        out = (d_step, g_step)[i % 2](images, labels)
        assert all(o.dtype == tf.float32 for o in out)
        assert all(np.isfinite(o.numpy()) for o in out), f"iteration {i}: {[o.numpy() for o in out]}"
    for v, s in zip(model.trainable_variables, start):
        assert v.dtype == tf.float32  # the weights stay float32
        assert np.all(np.isfinite(v.numpy())) and not np.array_equal(v.numpy(), s), v.name


def test_fused_adam_equals_keras_adam():
    """step.fused_adam (TensorFlow's ApplyAdam kernel) follows Keras's Adam over several steps:
    weights, both moments and the step count, on fresh random weights and gradients."""
    seed = secrets.randbits(31)
    rng = np.random.default_rng(seed)
    shapes = [(5, 5, 3, 4), (37, 11), (1,)]
    start = [rng.normal(0, 0.02, s).astype(np.float32) for s in shapes]
    fused = [tf.Variable(w) for w in start]
    plain = [tf.Variable(w) for w in start]
    optimizers = step.adam_optimizers(2e-4, 0.5, fused, plain)
    assert all(hasattr(optimizers[0], a) for a in step.FUSED_ADAM_NEEDS), "this Keras: no fused update"
    fused_step = tf.function(lambda grads: step.fused_adam(optimizers[0], fused, grads))
    for _ in range(6):
        grads = [tf.constant(rng.normal(0, 1, s), tf.float32) for s in shapes]
        fused_step(grads)
        optimizers[1].apply_gradients(zip(grads, plain))
    assert int(optimizers[0].iterations) == int(optimizers[1].iterations) == 6
    # rtol 1e-4: ApplyAdam forms 1 - beta2 in float32 (0.00100005, as TF1 and upstream did),
    # Keras in Python floats (0.001), a 5e-5 relative difference in the velocity's step.
    for a, b in zip(optimizers[0].variables, optimizers[1].variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-9, err_msg=f"{a.name}, seed {seed}")
    for a, b, w in zip(fused, plain, start):
        assert not np.array_equal(a.numpy(), w)
        # atol: a weight near 0 after the steps; 1e-4 of one step (lr 2e-4).
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=2e-8, err_msg=f"seed {seed}")
