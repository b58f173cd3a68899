"""The training step: model.DCGAN.build_model's function, computed with fewer FLOPs and copies.

model.py keeps upstream's straightforward forward passes as the reference; this module computes
the same costs (to float rounding; tests/test_step.py proves it on fresh random weights and
inputs, default and upstream_quirks modes) from the same variables, gen_W1 .. discrim_W4 with
upstream's names and shapes, so checkpoints are the same. What changes is how:

1. Label conditioning as per-label terms. Upstream appends the one-hot labels as 10 constant
   channels before each conv. A conv is linear in its input channels, so
       conv(concat(h, y broadcast), W) = conv(h, W_h) + conv(y broadcast, W_y),
   and the second term depends only on the label: a map [dim_y, H_out, W_out, C_out], constant
   inside the image and different only at the borders (where SAME padding cuts kernel taps).
   It is computed once per step as the conv of dim_y one-hot planes, and each image gets its
   label's map (Y @ maps). For discrim_W1 this drops the conv's input from 11 channels to 1.
   The dense layers keep upstream's concat: their 10 extra rows cost under 1% of their FLOPs,
   and slicing the big weights would cost full-size gradient copies.
2. In D iterations, one discriminator call on real and generated images stacked ([2B, ...]):
   one pass through each weight, and D's weight gradients in one matmul/conv each. Batchnorm
   still normalises each half over its own B images, as upstream's two separate calls did.
   G iterations keep two calls: stacked, they would back-propagate through D for the real half.
3. Adam's update as one fused kernel per weight (fused_adam): TensorFlow's ApplyAdam, the kernel
   behind upstream's tf.train.AdamOptimizer, instead of Keras's ten elementwise ops.
4. Leaky ReLU as tf.nn.leaky_relu (lrelu below).
5. dtype=tf.bfloat16 (--precision bf16): convs and matmuls in bfloat16 with the float32
   variables cast at use, so weights and Adam's state stay float32; batchnorm statistics,
   sigmoids and costs in float32.
6. Batchnorm as TensorFlow's fused kernel (fused_batchnorm), with upstream's epsilon.
7. Where oneDNN's kernel is slow for the shape, the same products through a faster one: the dense
   layers' input gradient as an einsum in float32 (dense); gen_W4's conv-transpose onto one
   channel, and discrim_W1's input gradient, which is one, as a matmul (conv_transpose_s2).
TensorFlow's oneDNN kernels are switched on in dcgan_mnist/__init__.py.
Measurements and the FLOP count: docs/speed.md; scripts/benchmark.py.
"""
import time
from typing import Callable, NamedTuple

import keras
import tensorflow as tf

from dcgan_mnist import distribute
from dcgan_mnist.model import bce, global_moments

PRECISIONS = {"float32": tf.float32, "bf16": tf.bfloat16}
BF16_INSTRUCTIONS = ("avx512_bf16", "amx_bf16")  # as /proc/cpuinfo names them


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's instruction-set flags (Linux); empty where they cannot be read."""
    try:
        with open(path) as f:
            return {flag for line in f if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    except OSError:
        return set()


def bf16_slowdown(cfg, repeats=3):
    """How many times float32's time the step's largest matmul (h1 x gen_W2) and conv (h1 x discrim_W2)
    take in bfloat16 here, at cfg's sizes: best of `repeats` each, after one warm-up."""
    sizes = cfg.generator_kwargs()
    B, W1, W2, W3, y = cfg.batch_size, cfg.dim_W1, cfg.dim_W2, cfg.dim_W3, sizes["dim_y"]
    H, W = sizes["image_size"]
    ops = [(lambda a, b: tf.matmul(a, b), [B, W1 + y], [W1 + y, W2 * (H // 4) * (W // 4)]),
           (lambda a, b: tf.nn.conv2d(a, b, 2, "SAME"), [B, H // 2, W // 2, W3 + y], [5, 5, W3 + y, W2])]
    total = {}
    for dtype in (tf.float32, tf.bfloat16):
        total[dtype] = 0.0
        for op, a_shape, b_shape in ops:
            a, b = tf.ones(a_shape, dtype), tf.ones(b_shape, dtype)
            times = []
            for _ in range(repeats + 1):
                start = time.perf_counter()
                op(a, b).numpy()
                times.append(time.perf_counter() - start)
            total[dtype] += min(times[1:])
    return total[tf.bfloat16] / total[tf.float32]


def bf16_warning(cfg):
    """For --precision bf16 on a CPU without bf16 instructions, where TensorFlow emulates bfloat16: a
    line saying so, with the slowdown measured here (bf16_slowdown); else None."""
    flags = cpu_flags()
    if not flags or flags & set(BF16_INSTRUCTIONS):
        return None
    return (f"warning: --precision bf16: this CPU has no bf16 instructions ({' or '.join(BF16_INSTRUCTIONS)}), "
            f"so TensorFlow emulates bfloat16; the step's largest matmul and conv took {bf16_slowdown(cfg):.1f}x "
            f"float32's time in bfloat16 here; on this CPU, --precision float32 is likely faster")


def lrelu(X):
    """model.lrelu (upstream's 0.6 x + 0.4 |x|) as what it is, leaky ReLU with slope 0.2: equal
    to float rounding, one kernel instead of four, and only X kept for the backward pass."""
    return tf.nn.leaky_relu(X, 0.2)


def batchnorm_groups(X, groups, eps=1e-8):
    """model.batchnormalize applied to each of `groups` equal slices of the batch, statistics in
    float32: fused_batchnorm on one device; on several replicas moments_batchnorm, which takes each
    slice's moments over the global batch (as model.py's)."""
    replica = tf.distribute.get_replica_context()
    if replica is not None and replica.num_replicas_in_sync > 1:
        return moments_batchnorm(X, groups, eps)
    if groups == 1:
        return fused_batchnorm(X, eps)
    return tf.concat([fused_batchnorm(x, eps) for x in tf.split(X, groups)], 0)


def moments_batchnorm(X, groups, eps=1e-8):
    """batchnorm_groups with model.global_moments and elementwise ops, as model.py computes it."""
    shape = tf.shape(X)
    Xg = tf.reshape(tf.cast(X, tf.float32), tf.concat([[groups, -1], shape[1:]], 0))
    mean, var = global_moments(Xg, list(range(1, len(X.shape))), keepdims=True)
    return tf.cast(tf.reshape((Xg - mean) / tf.sqrt(var + eps), shape), X.dtype)


def fused_batchnorm(X, eps):
    """model.batchnormalize on one device as TensorFlow's fused kernel (FusedBatchNormV3, scale 1,
    offset 0): one pass each way instead of about ten elementwise ops, and bfloat16 in and out
    with float32 statistics. Called directly: tf.nn.fused_batch_norm raises epsilon to 1e-5,
    and upstream's is 1e-8."""
    shape, F = tf.shape(X), X.shape[-1]
    X4 = X if len(X.shape) == 4 else tf.reshape(X, [-1, 1, 1, F])
    y, *_ = tf.raw_ops.FusedBatchNormV3(x=X4, scale=tf.ones([F]), offset=tf.zeros([F]), mean=tf.zeros([0]),
                                        variance=tf.zeros([0]), epsilon=eps, is_training=True)
    return tf.reshape(y, shape)


def label_maps(Y, W_y, size, transpose, dtype):
    """Each image's share of a stride-2 SAME conv (or conv-transpose) over its label broadcast on
    planes of size (h, w): conv(Y broadcast, W_y), as Y @ (conv of the dim_y one-hot planes)."""
    dim_y = Y.shape[-1]
    h, w = size
    planes = tf.tile(tf.reshape(tf.eye(dim_y, dtype=dtype), [dim_y, 1, 1, dim_y]), [1, h, w, 1])
    if transpose:  # W_y [5, 5, out, dim_y]
        per_label = tf.nn.conv2d_transpose(planes, W_y, [dim_y, 2 * h, 2 * w, W_y.shape[2]],
                                           strides=2, padding="SAME")
    else:          # W_y [5, 5, dim_y, out]
        per_label = tf.nn.conv2d(planes, W_y, strides=2, padding="SAME")
    out_shape = tf.shape(per_label)[1:]
    flat = tf.matmul(Y, tf.reshape(per_label, [dim_y, -1]))
    return tf.reshape(flat, tf.concat([[-1], out_shape], 0))


# A 5 x 5, stride-2 SAME conv-transpose from H to 2H (gen_W4's 14 -> 28) as sub-pixel taps:
# output row 2a + p (phase p = 0, 1) sums input rows a + t - 1 (t = 0, 1, 2) through kernel row
# TRANSPOSE_TAPS[t][p] = 3 - 2t + p; 5 stands for -1, no tap (row 5 of the kernel padded with zeros).
TRANSPOSE_TAPS = [[3, 4], [1, 2], [5, 0]]


def conv_transpose_s2(h, W):
    """tf.nn.conv2d_transpose(h, W, [N, 2H, 2W, C], 2, "SAME") for a 5 x 5 W [5, 5, C, K], written as
    the matmul it contains. With few output channels (gen_W4's and, backwards, discrim_W1's one)
    oneDNN's kernel for it runs at a twentieth of the matmul rate. Here each input pixel's 3 x 3
    neighbourhood times the kernel's taps gives the four output phases (sub-pixel convolution): one
    matmul h [NHW, K] @ [K, 9 taps x 4 phases x C], the 9 taps' maps shifted and summed in float32,
    and depth_to_space to interleave the phases; the products are the same, only summed in another order."""
    N, H, Wd, K = tf.shape(h)[0], h.shape[1], h.shape[2], h.shape[3]
    C = W.shape[2]
    taps = tf.constant(TRANSPOSE_TAPS)
    Wp = tf.pad(W, [[0, 1], [0, 1], [0, 0], [0, 0]])                       # [6, 6, C, K], row 5 zeros
    Wt = tf.gather(tf.gather(Wp, taps, axis=0), taps, axis=2)              # [ty, py, tx, px, C, K]
    Wt = tf.reshape(tf.transpose(Wt, [5, 0, 2, 1, 3, 4]), [K, 9 * 4 * C])  # [K, (ty, tx, py, px, C)]
    cols = tf.reshape(tf.cast(tf.matmul(tf.reshape(h, [-1, K]), Wt), tf.float32), [N, H, Wd, 9, 4 * C])
    # Each tap's map on its own (a slice of the 5-D cols would make every slice's gradient full size);
    # tf.slice, not [:, ty:], as its gradient is one Pad where a strided slice's is StridedSliceGrad.
    tap_maps = tf.unstack(tf.transpose(cols, [3, 0, 1, 2, 4]))             # 9 x [N, H, W, 4C]
    offsets = [(ty, tx) for ty in range(3) for tx in range(3)]
    phases = tf.add_n([tf.slice(tf.pad(tap, [[0, 0], [1, 1], [1, 1], [0, 0]]), [0, ty, tx, 0], [-1, H, Wd, -1])
                       for (ty, tx), tap in zip(offsets, tap_maps)])
    return tf.cast(tf.nn.depth_to_space(phases, 2), h.dtype)


@tf.custom_gradient
def conv_s2(X, W):
    """tf.nn.conv2d(X, W, 2, "SAME") with its input gradient through conv_transpose_s2: for
    discrim_W1 that gradient (taken in G iterations) is a conv-transpose onto one channel."""
    def grad(dy):
        dX = conv_transpose_s2(dy, W)
        dW = tf.raw_ops.Conv2DBackpropFilter(input=X, filter_sizes=tf.shape(W), out_backprop=dy,
                                             strides=[1, 2, 2, 1], padding="SAME")
        return dX, dW
    return tf.nn.conv2d(X, W, strides=2, padding="SAME"), grad


@tf.custom_gradient
def dense(X, W):
    """tf.matmul(X, W), in float32 with its input gradient dY W^T as an einsum: for discrim_W3 and
    gen_W2 oneDNN's float32 matmul with a transposed right operand (what autodiff asks for) runs at
    half the rate of the einsum. In bfloat16 the two are as fast and the einsum's extra pass costs."""
    def grad(dY):
        dX = tf.einsum("mn,kn->mk", dY, W) if W.dtype == tf.float32 else tf.matmul(dY, W, transpose_b=True)
        return dX, tf.matmul(X, dY, transpose_a=True)
    return tf.matmul(X, W), grad


def generate(m, Z, Y, dtype=tf.float32):
    """m.generate(Z, Y) with the conv layers' label channels as label maps."""
    B = tf.shape(Z)[0]
    h, w = m.base  # H/4 x W/4, upstream 7 x 7
    Z, Y = tf.cast(Z, dtype), tf.cast(Y, dtype)
    h1 = tf.nn.relu(batchnorm_groups(dense(tf.concat([Z, Y], 1), tf.cast(m.gen_W1, dtype)), 1))
    h2 = tf.nn.relu(batchnorm_groups(dense(tf.concat([h1, Y], 1), tf.cast(m.gen_W2, dtype)), 1))
    h2 = tf.reshape(h2, [B, h, w, m.dim_W2])
    W3 = tf.cast(m.gen_W3, dtype)
    W3, W3_y = tf.split(W3, [m.dim_W2, m.dim_y], axis=3)  # one concat back, not two full-size slice gradients
    h3 = tf.nn.conv2d_transpose(h2, W3, [B, 2 * h, 2 * w, m.dim_W3], strides=2, padding="SAME")
    h3 = tf.nn.relu(batchnorm_groups(h3 + label_maps(Y, W3_y, (h, w), True, dtype), 1))
    W4 = tf.cast(m.gen_W4, dtype)
    W4, W4_y = tf.split(W4, [m.dim_W3, m.dim_y], axis=3)
    h4 = conv_transpose_s2(h3, W4)
    return tf.cast(h4 + label_maps(Y, W4_y, (2 * h, 2 * w), True, dtype), tf.float32)


def discriminate(m, X, Y, groups=1, dtype=tf.float32):
    """m.discriminate(X, Y), with the conv layers' label channels as label maps; X may hold
    `groups` batches stacked, each normalised on its own as if discriminated alone."""
    X, Y = tf.cast(X, dtype), tf.cast(Y, dtype)
    B = tf.shape(X)[0]
    h, w = m.base  # H/4 x W/4, upstream 7 x 7
    W1, W2 = tf.cast(m.discrim_W1, dtype), tf.cast(m.discrim_W2, dtype)
    C = m.dim_channel
    (W1, W1_y), (W2, W2_y) = tf.split(W1, [C, m.dim_y], axis=2), tf.split(W2, [m.dim_W3, m.dim_y], axis=2)
    h1 = lrelu(conv_s2(X, W1) + label_maps(Y, W1_y, (4 * h, 4 * w), False, dtype))
    h2 = tf.nn.conv2d(h1, W2, strides=2, padding="SAME")
    h2 = h2 + label_maps(Y, W2_y, (2 * h, 2 * w), False, dtype)
    h2 = tf.reshape(lrelu(batchnorm_groups(h2, groups)), [B, h * w * m.dim_W2])
    h3 = lrelu(batchnorm_groups(dense(tf.concat([h2, Y], 1), tf.cast(m.discrim_W3, dtype)), groups))
    h4 = tf.cast(dense(tf.concat([h3, Y], 1), tf.cast(m.discrim_W4, dtype)), tf.float32)
    if m.upstream_quirks:
        h4 = lrelu(batchnorm_groups(h4, groups))  # defect 2, per batch as upstream (model.py)
    return h4


def discriminate_pair(m, image_real, image_gen, Y, stack, dtype=tf.float32):
    """(m.discriminate(image_real, Y), m.discriminate(image_gen, Y)); with stack=True as one call."""
    if not stack:
        return discriminate(m, image_real, Y, 1, dtype), discriminate(m, image_gen, Y, 1, dtype)
    return tf.split(discriminate(m, tf.concat([image_real, image_gen], 0), tf.concat([Y, Y], 0), 2, dtype), 2)


def build_model(m, Z, Y, image_real, dtype=tf.float32, stack=True):
    """m.build_model(Z, Y, image_real): d_cost, g_cost, p_real, p_gen. image_real=None, for a G
    iteration whose figures are not printed: G's update needs only D(generated), so D's pass
    on the real batch is skipped; d_cost and p_real are NaN. What it saves: `python scripts/benchmark.py
    flops`, "G iteration" of line "default, G iterations unprinted" against "default (step.py)" (counted
    by the one FLOP-counting function, benchmark.iteration_flops)."""
    image_gen = tf.nn.sigmoid(generate(m, Z, Y, dtype))
    q = m.upstream_quirks
    if image_real is None:
        raw_gen = discriminate(m, image_gen, Y, 1, dtype)
        nan = tf.fill(tf.shape(raw_gen), float("nan"))
        return tf.reduce_mean(nan), bce(raw_gen, tf.ones_like(raw_gen), q), nan, tf.nn.sigmoid(raw_gen)
    raw_real, raw_gen = discriminate_pair(m, image_real, image_gen, Y, stack, dtype)
    d_cost = bce(raw_real, tf.ones_like(raw_real), q) + bce(raw_gen, tf.zeros_like(raw_gen), q)
    g_cost = bce(raw_gen, tf.ones_like(raw_gen), q)
    return d_cost, g_cost, tf.nn.sigmoid(raw_real), tf.nn.sigmoid(raw_gen)


def adam_optimizers(learning_rate, beta1, *var_lists):
    """One Keras Adam per variable list, built (its slots exist before a restore fills them),
    with TF1's AdamOptimizer defaults as upstream used them: beta2 0.999, epsilon 1e-8 (Keras:
    1e-7). train.py makes D's and G's; fused_adam runs their update."""
    optimizers = []
    for var_list in var_lists:
        optimizer = keras.optimizers.Adam(learning_rate, beta_1=beta1, beta_2=0.999, epsilon=1e-8)
        optimizer.build(var_list)
        optimizers.append(optimizer)
    return optimizers


def moving_average(decay, gen_vars, g_optimizer):
    """The averaged generator (not upstream's): tf.train.ExponentialMovingAverage of G's weights,
    its decay capped by (1 + t) / (10 + t) after t G updates (num_updates: G's Adam step count).
    apply() here makes the averages, equal to the weights; make_train_steps updates them after
    every G iteration. Call under the strategy's scope, so they are mirrored like the weights."""
    ema = tf.train.ExponentialMovingAverage(decay, num_updates=g_optimizer.iterations)
    ema.apply(gen_vars)
    return ema


FUSED_ADAM_NEEDS = ("_momentums", "_velocities", "_get_variable_index")  # a built Keras 3 Adam's


def fused_adam(optimizer, var_list, grads):
    """optimizer.apply_gradients(zip(grads, var_list)) for train.py's Keras Adam (no clipping,
    decay or amsgrad), with each weight's update in one kernel: TensorFlow's ApplyAdam, which
    upstream's tf.train.AdamOptimizer ran. It computes Keras's formula (m += (g - m)(1 - b1),
    v += (g^2 - v)(1 - b2), w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)) in one pass
    over the weight instead of about ten elementwise ops with full-size temporaries. An
    XLA-compiled update was as fast but kept 50 MB of compiler code resident. The state stays in
    the Keras optimizer (momentums, velocities, iterations), so checkpoints are unchanged."""
    t = tf.cast(optimizer.iterations + 1, tf.float32)
    b1, b2 = optimizer.beta_1, optimizer.beta_2
    b1_power, b2_power = tf.pow(b1, t), tf.pow(b2, t)
    lr = tf.cast(optimizer.learning_rate, tf.float32)
    # After every gradient: until then the backward pass may still hold a weight's forward read,
    # and updating a weight in use makes TensorFlow copy it (+100 MB peak).
    with tf.control_dependencies(grads):
        for var, grad in zip(var_list, grads):
            i = optimizer._get_variable_index(var)
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=optimizer._momentums[i].handle, v=optimizer._velocities[i].handle,
                beta1_power=b1_power, beta2_power=b2_power, lr=lr, beta1=b1, beta2=b2,
                epsilon=optimizer.epsilon, grad=grad)
    optimizer.iterations.assign_add(1)


class TrainSteps(NamedTuple):
    """The compiled iterations: (images [B, H, W, C], int labels [B]) -> d_cost, g_cost,
    mean P(real), mean P(gen), each after one Adam step."""
    d_step: Callable            # a D iteration: Adam on d_cost, D's weights only
    g_step: Callable            # a G iteration: Adam on g_cost, G's weights only (and the average)
    g_step_unprinted: Callable  # a G iteration the log skips: the same update, d_cost and P(real) NaN


def make_train_steps(model, d_optimizer, g_optimizer, noise_rng, precision="float32", strategy=None,
                     forwards=None, jit_compile=False, fused_update=True, ema=None):
    """The TrainSteps of train.py's loop. Each draws the global batch's noise on device; the
    printed figures come from the same forward pass as the update (upstream ran a second one).
    g_step_unprinted skips D's pass on the real batch, which only the log reads.
    strategy: a tf.distribute strategy (distribute.step_function splits the batch); None: one device.
    forwards: (D iteration, G iteration[, unprinted G iteration]) functions (Z, Y, images) ->
    build_model's four outputs; by default this module's build_model (model.build_model is the
    reference). Without a third, unprinted G iterations run the second.
    ema: a tf.train.ExponentialMovingAverage whose apply(model.gen_vars) already ran once (it made
    the averages); every G iteration then moves the averages towards the updated weights."""
    dtype = PRECISIONS[precision]
    strategy = strategy or tf.distribute.get_strategy()
    if forwards is None:
        forwards = (lambda Z, Y, images: build_model(model, Z, Y, images, dtype, stack=True),
                    lambda Z, Y, images: build_model(model, Z, Y, images, dtype, stack=False),
                    lambda Z, Y, images: build_model(model, Z, Y, None, dtype))
    d_forward, g_forward, g_forward_unprinted = (*forwards, forwards[1]) if len(forwards) == 2 else forwards
    d_adam = adam_update(d_optimizer, model.discrim_vars, fused_update, strategy)
    g_adam = adam_update(g_optimizer, model.gen_vars, fused_update, strategy)

    def g_update(grads):
        g_adam(grads)
        if ema is not None:  # after Adam's update: the average follows the weights it just wrote
            ema.apply(model.gen_vars)

    def noise(images):
        # Drawn for the global batch and sliced per replica (distribute.step_function), so Z is
        # the same on any number of devices.
        return noise_rng.uniform([tf.shape(images)[0], model.dim_z], -1.0, 1.0)

    def compiled(forward, cost_name, var_list, update):
        def train_step(images, labels, Z):
            Y = tf.one_hot(labels, model.dim_y)
            with tf.GradientTape() as tape:
                d_cost, g_cost, p_real, p_gen = forward(Z, Y, images)
                cost = d_cost if cost_name == "d_cost" else g_cost
                # Keras sums the replicas' gradients: each gives its share of the mean.
                cost = cost / strategy.num_replicas_in_sync
            update(tape.gradient(cost, var_list))
            return d_cost, g_cost, tf.reduce_mean(p_real), tf.reduce_mean(p_gen)
        return distribute.step_function(strategy, train_step, noise, jit_compile)

    return TrainSteps(d_step=compiled(d_forward, "d_cost", model.discrim_vars, d_adam),
                      g_step=compiled(g_forward, "g_cost", model.gen_vars, g_update),
                      g_step_unprinted=compiled(g_forward_unprinted, "g_cost", model.gen_vars, g_update))


def adam_update(optimizer, var_list, fused, strategy):
    """grads -> one Adam step on var_list: fused_adam on one replica; on several, Keras's own
    apply_gradients, which all-reduces the gradients (and wherever a Keras keeps its Adam's slots
    elsewhere than fused_adam reads them)."""
    if fused and strategy.num_replicas_in_sync == 1 and all(hasattr(optimizer, a) for a in FUSED_ADAM_NEEDS):
        return lambda grads: fused_adam(optimizer, var_list, grads)
    return lambda grads: optimizer.apply_gradients(zip(grads, var_list))
