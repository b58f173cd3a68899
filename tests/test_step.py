"""The training step's fast path (dcgan_mnist/step.py) computes what model.py's plain path computes.

Each draw is fresh (seed from secrets, or DCGAN_TEST_SEED to replay one; every failure names it), and
both float32 paths are held against the float64 reference, model.py's own code on the same weights.
Where the reference is smooth, both float32 paths sit within rounding of it (relative 1e-6). It is
not smooth at the kinks of relu and lrelu (and of upstream_quirks' clip): there the gradient jumps
by a unit's whole contribution, and with about three million pre-activations per draw some lie within
float32 rounding (~1e-5 of a channel's spread) of a kink, so each float32 computation picks a side by
chance; the jump moves every gradient upstream by 1e-4 to 3e-2 of its norm, as much as a real
difference does (a 0.05% change of lrelu's slope moves them by 2e-4 to 3e-2), and spreads over all
of its elements, so no tolerance, fraction of elements or norm can tell the two apart. So the draw is
nudged first (nudge_off_kinks): weights move (by at most 2e-4 of their spread, measured) until no
pre-activation of the reference lies within ten times float32's measured error of a kink. Then every
float32 computation takes the reference's side at every kink, which makes the outcome independent of
rounding, oneDNN or not, and the tolerances can stay far below any real difference.
"""
import copy
import os
import secrets
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from conftest import SMALL_MODEL, relative_error
from dcgan_mnist import model as reference
from dcgan_mnist import step
from dcgan_mnist.config import Config
from dcgan_mnist.model import DCGAN

B = 32  # any batch and any sizes work (the scaffold's small model); small keeps the suite fast

# Measured over fresh draws, oneDNN on and off: float32 moves a kink's input by at most 1.3e-5 of its
# channel's spread, the fast path's by at most 2.5 times what it moves the plain path's; 10 times the
# plain path's own error is the margin, never under MIN_MARGIN of the spread (float32's resolution,
# 6e-8, times the sums of a few hundred products that even the smallest layer rounds).
ROUNDING_FACTOR = 10
MIN_MARGIN = 1e-5
# Off the kinks both float32 paths sit within 1e-6 (outputs) and 4e-6 (gradients) of the reference
# (measured); a 0.05% change of lrelu's slope moves the outputs by 1e-5 to 5e-5 and the gradients by
# 2e-4 (discrim_W4) to 3e-2.
OUTPUT_RTOL = 1e-5
GRADIENT_RTOL = 1e-4


def draw_seed():
    """A fresh seed, or DCGAN_TEST_SEED's, to replay a failure."""
    forced = os.environ.get("DCGAN_TEST_SEED")
    return int(forced) if forced else secrets.randbits(31)


def seed_note(seed):
    return f"seed {seed} (replay: DCGAN_TEST_SEED={seed})"


def drawn_sizes(rng):
    """Another image shape and number of labels: H and W different multiples of 4 from 8 to 32 (H/4
    odd or even; never square, so that a height standing for a width shows), grey or colour, 2 to 12 labels."""
    H, W = 4 * rng.choice(np.arange(2, 9), 2, replace=False)
    return dict(image_size=(int(H), int(W)), dim_channel=int(rng.choice([1, 3])), dim_y=int(rng.integers(2, 13)))


def case_config(seed, upstream_quirks, shape):
    """The small model's Config: upstream's 28 x 28 x 1 and 10 labels ("mnist"), or sizes drawn from seed."""
    sizes = drawn_sizes(np.random.default_rng([seed, 1])) if shape == "drawn" else {}
    return Config(**SMALL_MODEL, upstream_quirks=upstream_quirks, **sizes)


def random_case(upstream_quirks, shape="mnist"):
    """Fresh random weights and inputs (not zeros), from a seed shown on failure."""
    seed = draw_seed()
    model = DCGAN(**case_config(seed, upstream_quirks, shape).model_kwargs(), seed=seed)
    rng = np.random.default_rng(seed)
    Z = tf.constant(rng.uniform(-1, 1, (B, model.dim_z)), tf.float32)
    Y = tf.one_hot(rng.integers(0, model.dim_y, B), model.dim_y)
    images = tf.constant(rng.uniform(0, 1, (B, *model.image_shape)), tf.float32)
    return seed, model, Z, Y, images


def costs_and_grads(model, forward, Z, Y, images):
    with tf.GradientTape(persistent=True) as tape:
        d_cost, g_cost, p_real, p_gen = forward(Z, Y, images)
    return ([d_cost, g_cost, p_real, p_gen],
            tape.gradient(d_cost, model.discrim_vars) + tape.gradient(g_cost, model.gen_vars))


def assert_near_reference(fast, plain, exact, what, seed, rtol):
    """fast within rtol of float64 (relative Frobenius error), or within 10x the plain path's own
    error measured the same way, where rounding is amplified beyond rtol (a near-constant
    batchnorm channel); off the kinks that error is rounding alone."""
    plain_error, fast_error = relative_error(plain, exact), relative_error(fast, exact)
    assert fast_error <= max(rtol, ROUNDING_FACTOR * plain_error), \
        f"{what}: fast path's relative error {fast_error:.3g} from float64 (tolerance {rtol:.3g}; the plain " \
        f"path's own {plain_error:.3g}), {seed_note(seed)}"


def float64_copy(model):
    """The same model with float64 weights, to measure the plain path's own rounding error."""
    m64 = copy.copy(model)
    for v in model.trainable_variables:
        setattr(m64, v.name.split(":")[0], tf.Variable(tf.cast(v, tf.float64)))
    return m64


def as_float64(*tensors):
    return [tf.cast(t, tf.float64) for t in tensors]


def recorded_forward(m, Z, Y, images):
    """m.build_model's outputs, and the input of each relu (generate) and lrelu (discriminate) in the
    order model.py calls them. Recorded by wrapping model.py's own functions, so the reference stays
    model.py's code rather than a copy of it here."""
    seen = []
    relu, lrelu = tf.nn.relu, reference.lrelu

    def recording_relu(x, name=None):
        seen.append(x)
        return relu(x, name)

    def recording_lrelu(x, leak=0.2):
        seen.append(x)
        return lrelu(x, leak)

    with mock.patch.object(tf.nn, "relu", recording_relu), mock.patch.object(reference, "lrelu", recording_lrelu):
        out = m.build_model(Z, Y, images)
    return out, seen


def kinks_and_owners(m):
    """For each recorded input, where the gradient jumps, and the weight that makes it (the one to
    move it with): generate's three relus, then three lrelus per discriminate call (real, generated).
    upstream_quirks adds the batchnormed logit's lrelu, whose output bce clips to [1e-7, 1 - 1e-7]:
    a kink near 1 too (the one at 1e-7 lies within any margin of 0)."""
    d = m.discrim_vars[:4 if m.upstream_quirks else 3]
    kinks = [(0.0,)] * 3 + [(0.0, 1.0) if m.upstream_quirks and i == 3 else (0.0,) for i in range(len(d))] * 2
    return kinks, m.gen_vars[:3] + d + d


def channel_max(a):
    return np.max(a.reshape(-1, a.shape[-1]), axis=0)


def distance_to_kink(x, kinks):
    """Each element's distance to its nearest kink, and the direction away from it."""
    dist, away = np.full(x.shape, np.inf), np.ones(x.shape)
    for k in kinks:
        d = np.abs(x - k)
        nearer = d < dist
        dist, away = np.where(nearer, d, dist), np.where(nearer, np.where(x >= k, 1.0, -1.0), away)
    return dist, away


def nudge_off_kinks(model, Z, Y, images, seed):
    """Move model's weights (float32, in place) until no relu/lrelu input of the float64 reference lies
    within a margin of a kink: ROUNDING_FACTOR times the plain path's float32 error in that channel,
    as measured on this draw, or MIN_MARGIN of the channel's spread. Returns the reference's outputs
    and gradients there.

    Each near element is pushed three margins away with a Newton step on the weight that makes it
    (its own layer's only: earlier layers stay as they are). The step also moves other elements a
    little, so this repeats, looking with the cheap float32 plain path, until none is near; float64 then checks."""
    kinks, owners = kinks_and_owners(model)
    Z64, Y64, images64 = as_float64(Z, Y, images)
    _, exact = recorded_forward(float64_copy(model), Z64, Y64, images64)
    _, rounded = recorded_forward(model, Z, Y, images)
    assert len(rounded) == len(owners), f"model.py has {len(rounded)} relu/lrelu, this test knows {len(owners)}"
    margins = []
    for x64, x32 in zip(exact, rounded):
        x64 = x64.numpy()
        spread = np.std(x64.reshape(-1, x64.shape[-1]), axis=0)
        error = channel_max(np.abs(x32.numpy() - x64))
        margins.append(np.maximum(MIN_MARGIN * spread, ROUNDING_FACTOR * error))
    pushes = {}
    for _ in range(20):
        with tf.GradientTape(persistent=True) as tape:
            _, rounded = recorded_forward(model, Z, Y, images)
        moves, taken = {}, set()
        for x, ks, owner, margin in zip(rounded, kinks, owners, margins):
            dist, away = distance_to_kink(x.numpy().astype(np.float64), ks)
            near = dist < 1.5 * margin  # 1.5: float32 sees the reference's distance to within 0.1 margin
            # One element per channel of each weight and round: a channel's elements depend on that
            # channel's slice of its weight alone (batchnorm is per channel too), so one backward pass
            # gives each one's exact squared gradient norm, and no two pushes in a slice can cancel.
            axis = max(i for i, n in enumerate(owner.shape) if n == x.shape[-1])
            index = np.argwhere(near)
            _, first = np.unique(index[:, -1], return_index=True)
            index = np.array([i for i in index[first] if (owner.ref(), i[-1]) not in taken], dtype=int)
            if not index.size:
                continue
            taken.update((owner.ref(), i[-1]) for i in index)
            # Elements of one channel can move almost as one (generated images are near-constant, so
            # neighbouring patches are alike): pushing one off the kink may push its twin on. Each
            # further push in a channel goes twice as far, which soon takes both past.
            reach = np.full(x.shape[-1], 3.0)
            for i in index:
                pushes[owner.ref(), i[-1]] = pushes.get((owner.ref(), i[-1]), 0) + 1
                reach[i[-1]] = 3.0 * 2 ** (pushes[owner.ref(), i[-1]] - 1)
            chosen = np.zeros(x.shape)
            chosen[tuple(index.T)] = 1.0
            # The sum of the chosen elements' gradients holds each one's in its own slice: their norms,
            # and scaled per slice, the Newton step.
            summed = tape.gradient(x, owner, output_gradients=tf.constant(chosen, x.dtype))
            slices = np.moveaxis(summed.numpy(), axis, -1)
            rate = np.sum(np.square(slices.reshape(-1, x.shape[-1]), dtype=np.float64), axis=0)
            wanted = np.sum((chosen * away * (reach * margin - dist)).reshape(-1, x.shape[-1]), axis=0)
            step = slices * (wanted / np.where(rate > 0, rate, np.inf)).astype(slices.dtype)
            moves[owner.ref()] = moves.get(owner.ref(), 0.0) + np.moveaxis(step, -1, axis)
        del tape
        if not moves:
            m64 = float64_copy(model)
            with tf.GradientTape(persistent=True) as tape:
                out, exact = recorded_forward(m64, Z64, Y64, images64)
            near = [np.any(distance_to_kink(x.numpy(), ks)[0] < margin)
                    for x, ks, margin in zip(exact, kinks, margins)]
            if not any(near):
                return out, tape.gradient(out[0], m64.discrim_vars) + tape.gradient(out[1], m64.gen_vars)
            margins = [1.2 * margin for margin in margins]  # float32 misjudged one: look wider
            continue
        for ref, move in moves.items():
            ref.deref().assign_add(move)
    raise AssertionError(f"could not move the draw's pre-activations off the kinks, {seed_note(seed)}")


@pytest.mark.parametrize("upstream_quirks, stack, shape", [
    (False, False, "mnist"), (False, True, "mnist"), (True, False, "mnist"), (True, True, "mnist"),
    (False, True, "drawn"), (True, False, "drawn")])
def test_fast_forward_equals_plain_losses_and_gradients(upstream_quirks, stack, shape):
    """Both float32 paths against float64, off the kinks (module docstring): outputs and every gradient,
    at upstream's shape and at image shapes and label counts drawn from the seed."""
    seed, model, Z, Y, images = random_case(upstream_quirks, shape)
    ref_out, ref_grads = nudge_off_kinks(model, Z, Y, images, seed)
    plain_out, plain_grads = costs_and_grads(model, model.build_model, Z, Y, images)
    fast_out, fast_grads = costs_and_grads(
        model, lambda *a: step.build_model(model, *a, stack=stack), Z, Y, images)
    for name, f, p, r in zip(["d_cost", "g_cost", "p_real", "p_gen"], fast_out, plain_out, ref_out):
        assert f.shape == p.shape, f"{name}: shape {f.shape}, plain's {p.shape}"
        assert_near_reference(f, p, r, name, seed, OUTPUT_RTOL)
    for var, f, p, r in zip(model.discrim_vars + model.gen_vars, fast_grads, plain_grads, ref_grads):
        assert f.shape == var.shape
        assert_near_reference(f, p, r, f"gradient of {var.name} (image {model.image_shape}, {model.dim_y} "
                              f"labels)", seed, GRADIENT_RTOL)


@pytest.mark.parametrize("size", [(14, 14), "drawn"])
def test_label_maps_equal_conv_over_broadcast_labels(size):
    # Over 3,000 draws the two agreed bit for bit: the same products summed in the same order.
    seed = draw_seed()
    rng = np.random.default_rng(seed)
    h, w = tuple(rng.integers(1, 17, 2)) if size == "drawn" else size
    Y = tf.one_hot(rng.integers(0, 10, 6), 10)
    yb = tf.tile(tf.reshape(Y, [6, 1, 1, 10]), [1, h, w, 1])
    W = tf.constant(rng.normal(size=(5, 5, 10, 7)), tf.float32)
    direct = tf.nn.conv2d(yb, W, strides=2, padding="SAME")
    np.testing.assert_allclose(step.label_maps(Y, W, (h, w), False, tf.float32), direct, atol=1e-5,
                               err_msg=f"{h} x {w}, {seed_note(seed)}")
    Wt = tf.constant(rng.normal(size=(5, 5, 3, 10)), tf.float32)
    direct_t = tf.nn.conv2d_transpose(yb, Wt, [6, 2 * h, 2 * w, 3], strides=2, padding="SAME")
    np.testing.assert_allclose(step.label_maps(Y, Wt, (h, w), True, tf.float32), direct_t, atol=1e-5,
                               err_msg=f"{h} x {w}, {seed_note(seed)}")


# Two computations of one sum of n products differ by rounding: about the dtype's unit roundoff u per
# rounded partial sum, growing like sqrt(n) where partial sums are rounded as they go (CPUs without bf16
# instructions run TensorFlow's bfloat16 ops on Eigen, which rounds every partial sum to bfloat16). The
# bound 2 u (1 + sqrt(n)) held over 500 draws with Eigen (TF_ENABLE_ONEDNN_OPTS=0) and 300 each with
# oneDNN on AVX-512 and limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2), the largest error 0.70 of it
# (Eigen's bfloat16 filter gradient; a fixed 2e-2 failed there at 0.024). A kernel tap moved by one row
# gives errors of 1.3 or more, above it at any size; a gradient scaled by 1.0001 gives 1e-4, caught in float32.
UNIT_ROUNDOFF = {"float32": 2.0 ** -24, "bfloat16": 2.0 ** -8}


def op_rtol(dtype, n):
    return 2 * UNIT_ROUNDOFF[dtype] * (1 + np.sqrt(n))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rewritten_ops_equal_tensorflows(dtype):
    """step.conv_transpose_s2 (gen_W4's conv-transpose as a matmul), step.conv_s2 (discrim_W1's conv,
    its input gradient through conv_transpose_s2) and step.dense (its input gradient as an einsum in
    float32) against TensorFlow's own ops in the same dtype: values and every gradient, any size,
    batch and channels."""
    seed = draw_seed()
    rng = np.random.default_rng(seed)
    N, H, C, K = (int(rng.integers(1, n)) for n in (5, 16, 4, 12))

    def draw(*shape):
        return tf.cast(tf.constant(rng.normal(size=shape), tf.float32), dtype)

    h, W, X, A, M = draw(N, H, H, K), draw(5, 5, C, K), draw(N, 2 * H, 2 * H, C), draw(N, K), draw(K, C)
    inputs = [[h, W], [X, W], [A, M]]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([h, W, X, A, M])
        ours = [step.conv_transpose_s2(h, W), step.conv_s2(X, W), step.dense(A, M)]
        theirs = [tf.nn.conv2d_transpose(h, W, [N, 2 * H, 2 * H, C], 2, "SAME"), tf.nn.conv2d(X, W, 2, "SAME"),
                  tf.matmul(A, M)]
        dys = [draw(*t.shape) for t in theirs]
        costs = [tf.reduce_sum(tf.cast(o * dy, tf.float32)) for o, dy in zip(ours + theirs, dys + dys)]
    # The longest sum behind each value and gradient: a stride-2 5 x 5 conv's output pixel sees at most
    # 9 taps of its input; a filter gradient sums over every input pixel of the batch.
    sums = [[9 * K, 25 * C, N * H * H], [25 * C, 9 * K, N * H * H], [K, C, N]]
    for i, name in enumerate(["conv_transpose_s2", "conv_s2", "dense"]):
        found = [ours[i]] + tape.gradient(costs[i], inputs[i])
        wanted = [theirs[i]] + tape.gradient(costs[3 + i], inputs[i])
        for what, f, w, n in zip(["value", "gradient 1", "gradient 2"], found, wanted, sums[i]):
            error = relative_error(tf.cast(f, tf.float32), tf.cast(w, tf.float32))
            assert error < op_rtol(dtype, n), f"{name}, {what}, {dtype}: relative error {error:.3g} above " \
                f"{op_rtol(dtype, n):.3g} (N, H, C, K = {N, H, C, K}), {seed_note(seed)}"


@pytest.mark.parametrize("groups", [1, 2])
def test_fused_batchnorm_is_upstreams_with_its_epsilon(groups):
    """step.batchnorm_groups (TensorFlow's fused kernel) against model.batchnormalize on each slice,
    2-D and 4-D, with channels of tiny variance, where upstream's epsilon 1e-8 matters: the fused
    kernel's usual floor, 1e-5, flattens them (measured: error 0.3 or more; with 1e-8 under 1e-6)."""
    seed = draw_seed()
    rng = np.random.default_rng(seed)
    for shape in ([groups * 6, 9], [groups * 3, 4, 4, 5]):
        scale = np.exp(rng.uniform(np.log(1e-4), np.log(10), shape[-1]))  # tiny to large spreads
        X = tf.constant((rng.normal(size=shape) + 3 * rng.normal(size=shape[-1])) * scale, tf.float32)
        X64 = tf.cast(X, tf.float64)
        dy = tf.constant(rng.normal(size=shape), tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([X, X64])
            outs = [step.batchnorm_groups(X, groups)] + [
                tf.concat([reference.batchnormalize(x) for x in tf.split(x_, groups)], 0) for x_ in (X, X64)]
            costs = [tf.reduce_sum(o * tf.cast(dy, o.dtype)) for o in outs]
        grads = [tape.gradient(c, x_) for c, x_ in zip(costs, (X, X, X64))]
        # Means of the order of the spread, as the network's activations have: the fused kernel
        # takes the variance in one pass (E[x^2] - mean^2), which loses digits where the mean is
        # thousands of spreads (relative error 3e-4 at 10^4, measured). Both float32 paths are
        # held against float64 (assert_near_reference).
        assert_near_reference(*outs, f"values, shape {shape}", seed, 1e-5)
        assert_near_reference(*grads, f"gradient, shape {shape}", seed, 1e-5)


def make_steps(model, seed, forwards=None, fused_update=True, precision="float32"):
    optimizers = step.adam_optimizers(2e-4, 0.5, model.discrim_vars, model.gen_vars)
    noise_rng = tf.random.Generator.from_seed(seed)
    return step.make_train_steps(model, *optimizers, noise_rng, precision, forwards=forwards,
                                 fused_update=fused_update)


def adam_first_step(g, epsilon=1e-8, beta1=0.5, beta2=0.999):
    """The weight change, in units of the learning rate, of Adam's first step on gradient g: with
    m = (1 - beta1) g and v = (1 - beta2) g^2 bias-corrected, g / (|g| + epsilon / sqrt(1 - beta2))."""
    return g / (np.abs(g) + epsilon / np.sqrt(1 - beta2))


def assert_first_steps_agree(fast_vars, plain_vars, start, exact_grads, lr, seed, what):
    """Adam's first step moves a weight by about lr * sign(g) whatever |g|, so where the exact gradient
    is within float32's gradient error of 0, either float32 step may go either way. Elsewhere the two
    weights must agree to the spread of Adam's first step over gradients within that error of the
    exact one (plus weight rounding). The error allowed is 1e-3 of the gradient's RMS, 100 times what
    float32 leaves off the kinks; it makes ~0.1% of weights undetermined (any step up to lr)."""
    for f, p, w0, g in zip(fast_vars, plain_vars, start, exact_grads):
        g = g.numpy()
        slack = 1e-3 * np.sqrt(np.mean(g ** 2))
        spread = lr * (adam_first_step(g + slack) - adam_first_step(g - slack))
        diff = np.abs(f.numpy().astype(np.float64) - p.numpy())
        bad = diff > spread + 1e-3 * lr
        assert not bad.any(), \
            f"{what}, {f.name}: {bad.sum()} of {bad.size} weights moved differently (largest difference " \
            f"{diff.max() / lr:.3g} lr; {np.mean(spread > lr):.2%} undetermined), {seed_note(seed)}"
        moved = np.abs(f.numpy().astype(np.float64) - w0).max()
        assert moved <= lr * 1.001 + 1e-9, f"{what}, {f.name}: moved {moved / lr:.3g} lr, {seed_note(seed)}"


@pytest.mark.parametrize("upstream_quirks, shape", [(False, "mnist"), (True, "mnist"), (False, "drawn")])
def test_compiled_steps_equal_plain_steps(upstream_quirks, shape):
    """Two iterations (D then G) of the default step and of a plain step (model.build_model,
    Keras's unfused Adam) from the same weights and noise: same printed figures, same weights.

    Each iteration starts off the kinks (nudge_off_kinks, at that iteration's noise, which the steps
    draw from Generator.from_seed(seed) as drawn here), and from the same weights in both: after the
    D iteration the plain model takes the fast one's weights, which may differ only where Adam's first
    step was undetermined (assert_first_steps_agree); else such a weight would set the G iteration's
    pre-activations apart by more than the margin."""
    seed, fast_model, _, _, images = random_case(upstream_quirks, shape)
    plain_model = DCGAN(**case_config(seed, upstream_quirks, shape).model_kwargs(), seed=seed)
    labels = tf.constant(np.random.default_rng(seed).integers(0, fast_model.dim_y, B), tf.int32)
    Y = tf.one_hot(labels, fast_model.dim_y)
    noise = tf.random.Generator.from_seed(seed)
    fast_steps = make_steps(fast_model, seed)
    plain_steps = make_steps(plain_model, seed, (plain_model.build_model,) * 2, fused_update=False)
    lr = 2e-4
    for i, var_list in enumerate(["discrim_vars", "gen_vars"]):
        Z = noise.uniform([B, fast_model.dim_z], -1.0, 1.0)
        ref_out, ref_grads = nudge_off_kinks(fast_model, Z, Y, images, seed)
        for f, p in zip(fast_model.trainable_variables, plain_model.trainable_variables):
            p.assign(f)
        start = [v.numpy().astype(np.float64) for v in fast_model.trainable_variables]
        fast_out = fast_steps[i](images, labels)
        plain_out = plain_steps[i](images, labels)
        ref_figures = list(ref_out[:2]) + [tf.reduce_mean(ref_out[2]), tf.reduce_mean(ref_out[3])]
        for name, f, p, r in zip(["d_cost", "g_cost", "P(real)", "P(gen)"], fast_out, plain_out, ref_figures):
            assert_near_reference(f, p, r, f"iteration {i} {name}", seed, OUTPUT_RTOL)
        updated = [v.ref() for v in getattr(fast_model, var_list)]
        exact = dict(zip([v.ref() for v in fast_model.discrim_vars + fast_model.gen_vars], ref_grads))
        for f, p, w0 in zip(fast_model.trainable_variables, plain_model.trainable_variables, start):
            if f.ref() in updated:
                assert_first_steps_agree([f], [p], [w0], [exact[f.ref()]], lr, seed, f"iteration {i}")
            else:
                assert np.array_equal(f.numpy(), w0) and np.array_equal(p.numpy(), w0), \
                    f"iteration {i} changed {f.name}, which it does not train, {seed_note(seed)}"


@pytest.mark.parametrize("upstream_quirks", [False, True])
def test_bf16_forward_equals_reference(upstream_quirks):
    """The bf16 step's four outputs against model.py's float64 reference on the same weights: within
    1e-2 relative (measured over 400 draws: under 4e-3; batchnorm's epsilon at 1e-2 in bfloat16
    fails it, a 5% change of one label map does not). Its gradients are not compared here: on
    random weights they are small differences of large terms, which bfloat16's 8 bits move by 10%
    (median) to 100%; the ops whose bfloat16 path differs from float32's are held against
    TensorFlow's own in test_rewritten_ops_equal_tensorflows."""
    seed, model, Z, Y, images = random_case(upstream_quirks)
    m64 = float64_copy(model)
    exact = m64.build_model(*as_float64(Z, Y, images))
    found = step.build_model(model, Z, Y, images, dtype=tf.bfloat16)
    for name, f, r in zip(["d_cost", "g_cost", "p_real", "p_gen"], found, exact):
        assert f.dtype == tf.float32, f"{name} is {f.dtype.name}: the costs stay float32"
        error = relative_error(f, r)
        assert error < 1e-2, f"{name}: relative error {error:.3g} from float64, {seed_note(seed)}"


def test_bf16_trains_without_nan():
    seed, model, _, _, _ = random_case(False, "drawn")
    d_step, g_step, _ = make_steps(model, seed, precision="bf16")
    rng = np.random.default_rng(seed)
    start = [v.numpy() for v in model.trainable_variables]
    for i in range(4):
        images = tf.constant(rng.uniform(0, 1, (B, *model.image_shape)), tf.float32)
        labels = tf.constant(rng.integers(0, model.dim_y, B), tf.int32)
        out = (d_step, g_step)[i % 2](images, labels)
        assert all(o.dtype == tf.float32 for o in out)
        assert all(np.isfinite(o.numpy()) for o in out), f"iteration {i}: {[o.numpy() for o in out]}, {seed_note(seed)}"
    for v, s in zip(model.trainable_variables, start):
        assert v.dtype == tf.float32  # the weights stay float32
        assert np.all(np.isfinite(v.numpy())) and not np.array_equal(v.numpy(), s), f"{v.name}, {seed_note(seed)}"


def test_fused_adam_equals_keras_adam():
    """step.fused_adam (TensorFlow's ApplyAdam kernel) follows Keras's Adam over several steps:
    weights, both moments and the step count, on fresh random weights and gradients."""
    seed = draw_seed()
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
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-9, err_msg=f"{a.name}, {seed_note(seed)}")
    for a, b, w in zip(fused, plain, start):
        assert not np.array_equal(a.numpy(), w)
        # atol: a weight near 0 after the steps; 1e-4 of one step (lr 2e-4).
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=2e-8, err_msg=seed_note(seed))
