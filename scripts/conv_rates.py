"""How fast the step's convs run, kernel by kernel, against the matmul rate on the step's big matmuls.

    python scripts/conv_rates.py [--rounds 5] [--precisions float32,bf16]

Every 5 x 5 stride-2 conv of dcgan_mnist/step.py, as the three kernels training runs:
  discrim_W1  conv 28x28x1 -> 14x14x64, on D iterations' stacked batch of 256
  discrim_W2  conv 14x14x64 -> 7x7x128, batch 256
  gen_W3      conv-transpose 7x7x128 -> 14x14x64, batch 128
  gen_W4      conv-transpose 14x14x64 -> 28x28x1, batch 128
forward, input gradient and filter gradient, each in one tf.function: TensorFlow's Conv2D,
Conv2DBackpropInput and Conv2DBackpropFilter (the oneDNN build's _MklNative* kernels), and
step.conv_transpose_s2 where the step uses it (a conv-transpose onto one channel). Rounds take
turns with the matmul rate (scripts/benchmark.py's matmul_rates) in the same process; prints each
kernel's best GFLOP/s and its share of the best matmul rate of its dtype, with the CPU flags.
The FLOPs are 2 x 25 taps x in x out per pixel of the smaller map, as scripts/benchmark.py counts them.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import cpu_flags, matmul_rates, time_loop  # noqa: E402

import dcgan_mnist  # noqa: E402, F401  (before TensorFlow: its oneDNN settings, as training has, and a quiet start-up)
from dcgan_mnist.config import Config  # noqa: E402

S2 = [1, 2, 2, 1]


def convs():
    """(layer, batch, the conv's input [H, W, C], its output) at Config's default sizes: a
    conv-transpose runs its conv backwards; D's convs see real and generated batches stacked."""
    cfg = Config()
    B, C, W2, W3 = cfg.batch_size, cfg.dim_channel, cfg.dim_W2, cfg.dim_W3
    return [("discrim_W1", 2 * B, (28, 28, C), (14, 14, W3)), ("discrim_W2", 2 * B, (14, 14, W3), (7, 7, W2)),
            ("gen_W3", B, (14, 14, W3), (7, 7, W2)), ("gen_W4", B, (28, 28, C), (14, 14, W3))]


def kernels(dtype):
    """{(layer, kernel): (tf.function, its tensors, FLOPs)} for the step's convs in `dtype`."""
    import tensorflow as tf

    from dcgan_mnist import step
    conv = tf.function(lambda X, W, dY: tf.nn.conv2d(X, W, S2, "SAME")[0, 0, 0, 0])
    input_grad = tf.function(lambda X, W, dY: tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(X), filter=W, out_backprop=dY, strides=S2, padding="SAME")[0, 0, 0, 0])
    filter_grad = tf.function(lambda X, W, dY: tf.raw_ops.Conv2DBackpropFilter(
        input=X, filter_sizes=tf.shape(W), out_backprop=dY, strides=S2, padding="SAME")[0, 0, 0, 0])
    onto_one_channel = tf.function(lambda X, W, dY: step.conv_transpose_s2(dY, W)[0, 0, 0, 0])
    out = {}
    for name, n, (h, w, c), (ho, wo, co) in convs():
        X = tf.cast(tf.random.normal([n, h, w, c]), dtype)
        W = tf.cast(tf.random.normal([5, 5, c, co]) * 0.02, dtype)
        dY = tf.cast(tf.random.normal([n, ho, wo, co]), dtype)
        # Tensors passed as arguments, not captured: a constant filter would let oneDNN keep its
        # reordered copy between calls, which the step's weights (variables) never get.
        backwards = input_grad if c > 1 else onto_one_channel  # as step.py computes it
        roles = ({"forward": conv, "input gradient": backwards} if name.startswith("discrim")
                 else {"forward": backwards, "input gradient": conv})
        for role, f in {**roles, "filter gradient": filter_grad}.items():
            out[name, role] = (f, (X, W, dY), 2 * n * ho * wo * co * 25 * c)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--precisions", default="float32,bf16")
    args = p.parse_args(argv)
    import tensorflow as tf
    dtypes = {"float32": tf.float32, "bf16": tf.bfloat16}
    precisions = args.precisions.split(",")
    ops = {pr: kernels(dtypes[pr]) for pr in precisions}
    best_rate = {pr: 0.0 for pr in precisions}
    best = {}
    for _ in range(args.rounds):
        rates = matmul_rates(repeats=5)
        for pr in precisions:
            best_rate[pr] = max(best_rate[pr], rates[pr])
            for key, (f, tensors, flops) in ops[pr].items():
                wall, _ = time_loop(lambda i, f=f, tensors=tensors: f(*tensors).numpy(), 2, 10)
                best[pr, key] = max(best.get((pr, key), 0.0), flops / min(wall) / 1e9)
    print(f"CPU flags: {cpu_flags()}; {args.rounds} rounds; best matmul rates: "
          + ", ".join(f"{pr} {best_rate[pr]:.0f}" for pr in precisions) + " GFLOP/s")
    print("| precision | layer | kernel | GFLOP/s | share of the matmul rate |")
    print("| --- | --- | --- | --- | --- |")
    for (pr, (layer, role)), rate in best.items():
        print(f"| {pr} | {layer} | {role} | {rate:.0f} | {rate / best_rate[pr]:.0%} |")


if __name__ == "__main__":
    main()
