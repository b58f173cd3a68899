"""The conditional DCGAN of yihui-he/GAN-MNIST (its model.py), written for TensorFlow 2.

Weights, forward passes and costs, nothing else. Names (gen_W1, discrim_W4, dim_z, yb, h1, ...)
and the order of the lines are upstream's, so this file reads side by side with upstream's
model.py and a walkthrough of it. Shapes are NHWC; no batch size is baked in, so any batch runs
through the same functions. Upstream's constructor took image_shape and then wrote 28, 14 and 7
into its passes; here they are the image size H x W, H/2 x W/2 and the base H/4 x W/4, so any size
divisible by 4 and 1 or 3 channels build (the default is upstream's 28 x 28 x 1, to the bit).

- Generator: gen_W1 .. gen_W4 and upstream's generate / samples_generator. Training's grids,
  the averaged generator, generate, evaluate and export all draw from an instance of it.
- DCGAN: a Generator plus upstream's discriminator weights, discriminate and build_model.

Upstream defects fixed here by default, restored by upstream_quirks=True (docs/upstream.md):
  1. bce clipped the discriminator's logits to [1e-7, 1 - 1e-7];
  2. the discriminator's final logit went through batchnorm and lrelu.
(Defect 3, the (x + 1) / 2 of the grids, lives where grids are written: grid.py.)

`python -m dcgan_mnist.model [--batch-size N --dim-w3 N ...]` prints every weight's and every
layer's shape in the walkthrough's order, read from a model built with those sizes.
"""
import sys

import tensorflow as tf

from dcgan_mnist.cli import OneLineErrorParser, add_verbose, run
from dcgan_mnist.config import IMAGE_SHAPE, MODEL_SETTINGS, N_LABELS, Config, add_arguments, from_args


def batchnormalize(X, eps=1e-8):
    # Upstream: batch mean and biased variance over every axis but the channels, no learned
    # scale or offset and no moving averages, so sampling uses batch statistics too.
    mean, var = global_moments(X, list(range(len(X.shape) - 1)))
    return (X - mean) / tf.sqrt(var + eps)


def global_moments(X, axes, keepdims=False):
    """tf.nn.moments of the global batch: on one replica X's own; when each of several replicas
    holds a slice of the batch, the slices' sums are all-reduced, so every replica normalises as
    one device would with the whole batch. Two passes as tf.nn.moments does (the mean, then
    squared deviations from it), not E[x^2] - mean^2, which loses precision. all_reduce is
    differentiable: its gradient is the all-reduced gradient."""
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return tf.nn.moments(X, axes, keepdims=keepdims)
    SUM = tf.distribute.ReduceOp.SUM
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(X), axes)), X.dtype)
    total, count = replica.all_reduce(SUM, [tf.reduce_sum(X, axes, keepdims=True), count])
    mean = total / count
    deviations = tf.reduce_sum(tf.math.squared_difference(X, tf.stop_gradient(mean)), axes, keepdims=True)
    var = replica.all_reduce(SUM, deviations) / count
    if not keepdims:
        mean, var = tf.squeeze(mean, axes), tf.squeeze(var, axes)
    return mean, var


def lrelu(X, leak=0.2):
    # Upstream writes leaky ReLU as 0.6*x + 0.4*|x| (leak 0.2); kept for identical rounding.
    f1 = 0.5 * (1 + leak)
    f2 = 0.5 * (1 - leak)
    return f1 * X + f2 * tf.abs(X)


def bce(logits, targets, upstream_quirks=False):
    """Mean sigmoid cross-entropy on logits (numerically stable)."""
    if upstream_quirks:
        # Defect 1: a clip written when bce took probabilities, kept after it took logits.
        logits = tf.clip_by_value(logits, 1e-7, 1.0 - 1e-7)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))


def normal_weight(rng, shape, name):
    # Upstream: tf.random_normal(shape, stddev=0.02), no biases anywhere.
    return tf.Variable(rng.normal(shape, stddev=0.02), name=name)


def weights_rng(seed=None):
    """The generator of initial weights: seeded, or drawn from the OS when seed is None."""
    return tf.random.Generator.from_seed(seed) if seed is not None else \
        tf.random.Generator.from_non_deterministic_state()


class Generator(tf.Module):
    """gen_W1 .. gen_W4, N(0, 0.02), upstream's names and shapes, and the generator's passes.

    weights: four existing variables to draw from instead of new ones (the averaged generator
    draws from tf.train.ExponentialMovingAverage's averages of a DCGAN's weights). A checkpoint
    stores them by these attribute names, so one saved as part of a DCGAN (model/gen_W1 ...)
    restores into a Generator as well.
    """

    def __init__(self, dim_z=Config.dim_z, dim_y=N_LABELS, dim_W1=Config.dim_W1, dim_W2=Config.dim_W2,
                 dim_W3=Config.dim_W3, dim_channel=IMAGE_SHAPE[2], rng=None, weights=None, name="generator",
                 image_size=IMAGE_SHAPE[:2]):
        super().__init__(name=name)
        self.dim_z = dim_z
        self.dim_y = dim_y
        self.dim_W1 = dim_W1
        self.dim_W2 = dim_W2
        self.dim_W3 = dim_W3
        self.dim_channel = dim_channel
        self.image_size = tuple(image_size)  # H, W: upstream's 28, 28
        H4, W4 = self.base
        if weights is None:
            rng = rng or weights_rng()
            weights = [normal_weight(rng, [dim_z + dim_y, dim_W1], "gen_W1"),
                       normal_weight(rng, [dim_W1 + dim_y, dim_W2 * H4 * W4], "gen_W2"),
                       normal_weight(rng, [5, 5, dim_W3, dim_W2 + dim_y], "gen_W3"),  # conv-transpose: [h, w, out, in]
                       normal_weight(rng, [5, 5, dim_channel, dim_W3 + dim_y], "gen_W4")]
        self.gen_W1, self.gen_W2, self.gen_W3, self.gen_W4 = weights

    @property
    def gen_vars(self):
        return [self.gen_W1, self.gen_W2, self.gen_W3, self.gen_W4]

    @property
    def base(self):
        """H/4, W/4: upstream's 7 x 7, the generator's first map and the discriminator's last."""
        H, W = self.image_size
        return H // 4, W // 4

    @property
    def image_shape(self):
        return [*self.image_size, self.dim_channel]

    def generate(self, Z, Y):
        """Z [B, dim_z], Y one-hot [B, dim_y] -> logits [B, H, W, dim_channel] (upstream: 28, 28)."""
        B = tf.shape(Z)[0]
        H4, W4 = self.base
        yb = tf.reshape(Y, [B, 1, 1, self.dim_y])
        Z = tf.concat([Z, Y], axis=1)
        h1 = tf.nn.relu(batchnormalize(tf.matmul(Z, self.gen_W1)))
        h1 = tf.concat([h1, Y], axis=1)
        h2 = tf.nn.relu(batchnormalize(tf.matmul(h1, self.gen_W2)))
        h2 = tf.reshape(h2, [B, H4, W4, self.dim_W2])
        h2 = tf.concat([h2, yb * tf.ones([B, H4, W4, self.dim_y], Y.dtype)], axis=3)
        output_shape_l3 = [B, 2 * H4, 2 * W4, self.dim_W3]
        h3 = tf.nn.conv2d_transpose(h2, self.gen_W3, output_shape=output_shape_l3, strides=[1, 2, 2, 1],
                                    padding="SAME")
        h3 = tf.nn.relu(batchnormalize(h3))
        h3 = tf.concat([h3, yb * tf.ones([B, 2 * H4, 2 * W4, self.dim_y], Y.dtype)], axis=3)
        output_shape_l4 = [B, 4 * H4, 4 * W4, self.dim_channel]
        h4 = tf.nn.conv2d_transpose(h3, self.gen_W4, output_shape=output_shape_l4, strides=[1, 2, 2, 1],
                                    padding="SAME")
        return h4

    def samples_generator(self, Z, Y):
        """Images in [0, 1], [B, H, W, dim_channel], for any batch size (196 for grids)."""
        return tf.nn.sigmoid(self.generate(Z, Y))


class DCGAN(Generator):
    """Upstream's DCGAN: the Generator's weights, then the discriminator's, N(0, 0.02).

    The constructor takes upstream's arguments with upstream's defaults, so the
    DCGAN(batch_size=128, image_shape=[28, 28, 1], dim_z=100, dim_W1=1024, dim_W2=128, dim_W3=64)
    of upstream's train.py and DCGAN() both build upstream's model. The sizes are the training
    run's settings, so their defaults come from config.py; batch_size is model.py's own 100.
    No shape depends on batch_size: upstream baked it into its placeholders, here it is the batch
    `python -m dcgan_mnist.model` traces. image_shape [H, W, C] is honoured: H and W divisible by 4.
    """

    def __init__(self, batch_size=100, image_shape=IMAGE_SHAPE, dim_z=Config.dim_z, dim_y=N_LABELS,
                 dim_W1=Config.dim_W1, dim_W2=Config.dim_W2, dim_W3=Config.dim_W3, dim_channel=IMAGE_SHAPE[2],
                 upstream_quirks=Config.upstream_quirks, seed=None):
        H, W, C = image_shape
        if H % 4 or W % 4 or min(H, W) < 4 or C != dim_channel:
            # The generator upsamples H/4 -> H/2 -> H, as upstream's 7 -> 14 -> 28.
            raise ValueError(f"image_shape must be [H, W, dim_channel] with H and W divisible by 4, got "
                             f"{list(image_shape)} and dim_channel {dim_channel}")
        rng = weights_rng(seed)  # one stream, G's weights first, as upstream creates them
        super().__init__(dim_z, dim_y, dim_W1, dim_W2, dim_W3, dim_channel, rng=rng, name="dcgan", image_size=(H, W))
        self.batch_size = batch_size
        self.upstream_quirks = upstream_quirks
        H4, W4 = self.base
        self.discrim_W1 = normal_weight(rng, [5, 5, dim_channel + dim_y, dim_W3], "discrim_W1")
        self.discrim_W2 = normal_weight(rng, [5, 5, dim_W3 + dim_y, dim_W2], "discrim_W2")
        self.discrim_W3 = normal_weight(rng, [dim_W2 * H4 * W4 + dim_y, dim_W1], "discrim_W3")
        self.discrim_W4 = normal_weight(rng, [dim_W1 + dim_y, 1], "discrim_W4")

    @property
    def discrim_vars(self):
        return [self.discrim_W1, self.discrim_W2, self.discrim_W3, self.discrim_W4]

    def build_model(self, Z, Y, image_real):
        """Upstream's build_model without placeholders: returns d_cost, g_cost, p_real, p_gen."""
        h4 = self.generate(Z, Y)
        image_gen = tf.nn.sigmoid(h4)
        raw_real = self.discriminate(image_real, Y)
        p_real = tf.nn.sigmoid(raw_real)
        raw_gen = self.discriminate(image_gen, Y)
        p_gen = tf.nn.sigmoid(raw_gen)
        q = self.upstream_quirks
        discrim_cost_real = bce(raw_real, tf.ones_like(raw_real), q)
        discrim_cost_gen = bce(raw_gen, tf.zeros_like(raw_gen), q)
        discrim_cost = discrim_cost_real + discrim_cost_gen
        gen_cost = bce(raw_gen, tf.ones_like(raw_gen), q)
        return discrim_cost, gen_cost, p_real, p_gen

    def discriminate(self, image, Y):
        """image [B, H, W, dim_channel] in [0, 1], Y one-hot -> logits [B, 1]."""
        B = tf.shape(image)[0]
        H4, W4 = self.base
        yb = tf.reshape(Y, [B, 1, 1, self.dim_y])
        X = tf.concat([image, yb * tf.ones([B, 4 * H4, 4 * W4, self.dim_y], Y.dtype)], axis=3)
        h1 = lrelu(tf.nn.conv2d(X, self.discrim_W1, strides=[1, 2, 2, 1], padding="SAME"))
        h1 = tf.concat([h1, yb * tf.ones([B, 2 * H4, 2 * W4, self.dim_y], Y.dtype)], axis=3)
        h2 = lrelu(batchnormalize(tf.nn.conv2d(h1, self.discrim_W2, strides=[1, 2, 2, 1], padding="SAME")))
        h2 = tf.reshape(h2, [B, H4 * W4 * self.dim_W2])
        h2 = tf.concat([h2, Y], axis=1)
        h3 = lrelu(batchnormalize(tf.matmul(h2, self.discrim_W3)))
        h3 = tf.concat([h3, Y], axis=1)
        h4 = tf.matmul(h3, self.discrim_W4)
        if self.upstream_quirks:
            # Defect 2: normalising a one-unit logit over the batch forces mean 0, variance 1
            # in every batch, so real and generated batches look alike on average.
            h4 = lrelu(batchnormalize(h4))
        return h4


# ---------------------------------------------------------------- the walkthrough's shapes

# Each pass's reshapes, concats, matmuls and convs in the order upstream's lines run them, with the
# walkthrough's name for the result. shapes() reads their shapes from the traced graph, and stops
# if the passes above no longer run these ops in this order.
WALKTHROUGH = {
    "generate": (("Reshape", "yb = reshape(Y)"), ("ConcatV2", "Z = concat(Z, Y)"),
                 ("MatMul", "h1 = matmul(Z, gen_W1)"), ("ConcatV2", "h1 = concat(h1, Y)"),
                 ("MatMul", "h2 = matmul(h1, gen_W2)"), ("Reshape", "h2 = reshape(h2)"),
                 ("ConcatV2", "h2 = concat(h2, yb * ones)"),
                 ("Conv2DBackpropInput", "h3 = conv2d_transpose(h2, gen_W3) = output_shape_l3"),
                 ("ConcatV2", "h3 = concat(h3, yb * ones)"),
                 ("Conv2DBackpropInput", "h4 = conv2d_transpose(h3, gen_W4) = output_shape_l4")),
    "discriminate": (("Reshape", "yb = reshape(Y)"), ("ConcatV2", "X = concat(image, yb * ones)"),
                     ("Conv2D", "h1 = conv2d(X, discrim_W1)"), ("ConcatV2", "h1 = concat(h1, yb * ones)"),
                     ("Conv2D", "h2 = conv2d(h1, discrim_W2)"), ("Reshape", "h2 = reshape(h2)"),
                     ("ConcatV2", "h2 = concat(h2, Y)"), ("MatMul", "h3 = matmul(h2, discrim_W3)"),
                     ("ConcatV2", "h3 = concat(h3, Y)"), ("MatMul", "h4 = matmul(h3, discrim_W4)")),
}


def traced_shapes(fn, specs, steps):
    """[(name, shape)] of steps' ops in fn's graph traced for specs."""
    graph = tf.function(fn).get_concrete_function(*specs).graph
    ops = [op for op in graph.get_operations() if op.type in {kind for kind, _ in steps}]
    if [op.type for op in ops] != [kind for kind, _ in steps]:
        raise RuntimeError(f"{fn.__name__} no longer runs the walkthrough's ops: {[op.type for op in ops]}")
    return [(name, op.outputs[0].shape.as_list()) for (_, name), op in zip(steps, ops)]


def shapes(model):
    """[(section, [(name, shape)])]: the weights, build_model's inputs and every layer of
    generate and discriminate, for a batch of model.batch_size, in the walkthrough's order."""
    B = model.batch_size
    weights = [(v.name.split(":")[0], v.shape.as_list()) for v in model.gen_vars + model.discrim_vars]
    Z = tf.TensorSpec([B, model.dim_z])
    Y = tf.TensorSpec([B, model.dim_y])
    image_real = tf.TensorSpec([B] + model.image_shape)
    inputs = [("Z", Z.shape.as_list()), ("Y", Y.shape.as_list()), ("image_real", image_real.shape.as_list())]
    return [("weights", weights), ("build_model's inputs", inputs),
            ("generate", traced_shapes(model.generate, (Z, Y), WALKTHROUGH["generate"])),
            ("discriminate", traced_shapes(model.discriminate, (image_real, Y), WALKTHROUGH["discriminate"]))]


def print_shapes(args):
    cfg = from_args(args).validate()
    for section, rows in shapes(DCGAN(**cfg.model_kwargs(), seed=0)):
        print(f"{section}:")
        for name, shape in rows:
            print(f"  {name} = {shape}")


def main(argv=None):
    parser = OneLineErrorParser(prog="python -m dcgan_mnist.model", description="Print every weight's and layer's "
                                "shape of the model built with these sizes, in the walkthrough's order.")
    add_arguments(parser, only=MODEL_SETTINGS)
    add_verbose(parser)
    return run(parser, argv, print_shapes)


if __name__ == "__main__":
    sys.exit(main())
