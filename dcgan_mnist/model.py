"""The conditional DCGAN of yihui-he/GAN-MNIST (its model.py), written for TensorFlow 2.

Weights, forward passes and costs, nothing else. Names (gen_W1, discrim_W4, dim_z, ...) are
upstream's, so this file can be read side by side with upstream and the seed document.
Shapes are NHWC; no batch size is baked in, so any batch runs through the same functions.

Upstream defects fixed here by default, restored by upstream_quirks=True (UPSTREAM.md):
  1. bce clipped the discriminator's logits to [1e-7, 1 - 1e-7];
  2. the discriminator's final logit went through batchnorm and lrelu.
(Defect 3, the (x + 1) / 2 of the grids, lives where grids are written: grid.py.)
"""
import tensorflow as tf

from dcgan_mnist.config import Config


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


def concat_label(h, Y):
    """Append one-hot labels Y [B, dim_y] to h: on the features of a [B, F] tensor, or
    broadcast over every pixel of a [B, H, W, C] one (upstream's yb * tf.ones(...))."""
    if len(h.shape) == 2:
        return tf.concat([h, Y], axis=1)
    shape = tf.shape(h)
    yb = tf.reshape(Y, [-1, 1, 1, Y.shape[-1]])
    return tf.concat([h, yb * tf.ones([shape[0], shape[1], shape[2], Y.shape[-1]], h.dtype)], axis=3)


class DCGAN(tf.Module):
    """Generator and discriminator weights, N(0, 0.02), no biases, upstream's names and shapes.

    The constructor takes upstream's arguments with upstream's defaults, so the seed's
    DCGAN(batch_size=128, image_shape=[28, 28, 1], dim_z=100, dim_W1=1024, dim_W2=128, dim_W3=64)
    and DCGAN() both build upstream's model. The sizes are the training run's settings, so their
    defaults come from config.Config; batch_size is model.py's own 100 (train.py passed 128),
    recorded and never baked into a shape.
    """

    def __init__(self, batch_size=100, image_shape=(28, 28, Config.dim_channel), dim_z=Config.dim_z,
                 dim_y=Config.dim_y, dim_W1=Config.dim_W1, dim_W2=Config.dim_W2, dim_W3=Config.dim_W3,
                 dim_channel=Config.dim_channel, upstream_quirks=Config.upstream_quirks, seed=None):
        super().__init__(name="dcgan")
        if list(image_shape[:2]) != [28, 28] or image_shape[2] != dim_channel:
            # The generator upsamples 7 -> 14 -> 28, as upstream's does.
            raise ValueError(f"image_shape must be [28, 28, dim_channel], got {list(image_shape)}")
        self.batch_size = batch_size  # upstream's argument; kept for reference, never baked in
        self.image_shape = list(image_shape)
        self.dim_z = dim_z
        self.dim_y = dim_y
        self.dim_W1 = dim_W1
        self.dim_W2 = dim_W2
        self.dim_W3 = dim_W3
        self.dim_channel = dim_channel
        self.upstream_quirks = upstream_quirks

        rng = tf.random.Generator.from_seed(seed) if seed is not None else \
            tf.random.Generator.from_non_deterministic_state()

        def weight(shape, name):
            return tf.Variable(rng.normal(shape, stddev=0.02), name=name)

        self.gen_W1 = weight([dim_z + dim_y, dim_W1], "gen_W1")
        self.gen_W2 = weight([dim_W1 + dim_y, dim_W2 * 7 * 7], "gen_W2")
        self.gen_W3 = weight([5, 5, dim_W3, dim_W2 + dim_y], "gen_W3")  # conv-transpose: [h, w, out, in]
        self.gen_W4 = weight([5, 5, dim_channel, dim_W3 + dim_y], "gen_W4")

        self.discrim_W1 = weight([5, 5, dim_channel + dim_y, dim_W3], "discrim_W1")
        self.discrim_W2 = weight([5, 5, dim_W3 + dim_y, dim_W2], "discrim_W2")
        self.discrim_W3 = weight([dim_W2 * 7 * 7 + dim_y, dim_W1], "discrim_W3")
        self.discrim_W4 = weight([dim_W1 + dim_y, 1], "discrim_W4")

    @property
    def gen_vars(self):
        return [self.gen_W1, self.gen_W2, self.gen_W3, self.gen_W4]

    @property
    def discrim_vars(self):
        return [self.discrim_W1, self.discrim_W2, self.discrim_W3, self.discrim_W4]

    def generate(self, Z, Y):
        """Z [B, dim_z], Y one-hot [B, dim_y] -> logits [B, 28, 28, dim_channel]."""
        B = tf.shape(Z)[0]
        Z = concat_label(Z, Y)                                              # [B, 110]
        h1 = tf.nn.relu(batchnormalize(tf.matmul(Z, self.gen_W1)))          # [B, 1024]
        h1 = concat_label(h1, Y)                                            # [B, 1034]
        h2 = tf.nn.relu(batchnormalize(tf.matmul(h1, self.gen_W2)))         # [B, 6272]
        h2 = tf.reshape(h2, [B, 7, 7, self.dim_W2])
        h2 = concat_label(h2, Y)                                            # [B, 7, 7, 138]
        h3 = tf.nn.conv2d_transpose(h2, self.gen_W3, output_shape=[B, 14, 14, self.dim_W3],
                                    strides=[1, 2, 2, 1], padding="SAME")
        h3 = tf.nn.relu(batchnormalize(h3))                                 # [B, 14, 14, 64]
        h3 = concat_label(h3, Y)                                            # [B, 14, 14, 74]
        h4 = tf.nn.conv2d_transpose(h3, self.gen_W4, output_shape=[B, 28, 28, self.dim_channel],
                                    strides=[1, 2, 2, 1], padding="SAME")
        return h4                                                           # [B, 28, 28, 1]

    def discriminate(self, image, Y):
        """image [B, 28, 28, dim_channel] in [0, 1], Y one-hot -> logits [B, 1]."""
        B = tf.shape(image)[0]
        X = concat_label(image, Y)                                          # [B, 28, 28, 11]
        h1 = lrelu(tf.nn.conv2d(X, self.discrim_W1, strides=[1, 2, 2, 1], padding="SAME"))
        h1 = concat_label(h1, Y)                                            # [B, 14, 14, 74]
        h2 = lrelu(batchnormalize(tf.nn.conv2d(h1, self.discrim_W2, strides=[1, 2, 2, 1], padding="SAME")))
        h2 = tf.reshape(h2, [B, 7 * 7 * self.dim_W2])
        h2 = concat_label(h2, Y)                                            # [B, 6282]
        h3 = lrelu(batchnormalize(tf.matmul(h2, self.discrim_W3)))          # [B, 1024]
        h3 = concat_label(h3, Y)                                            # [B, 1034]
        h4 = tf.matmul(h3, self.discrim_W4)                                 # [B, 1]
        if self.upstream_quirks:
            # Defect 2: normalising a one-unit logit over the batch forces mean 0, variance 1
            # in every batch, so real and generated batches look alike on average.
            h4 = lrelu(batchnormalize(h4))
        return h4

    def build_model(self, Z, Y, image_real):
        """Upstream's build_model without placeholders: returns d_cost, g_cost, p_real, p_gen."""
        image_gen = tf.nn.sigmoid(self.generate(Z, Y))
        raw_real = self.discriminate(image_real, Y)
        raw_gen = self.discriminate(image_gen, Y)
        q = self.upstream_quirks
        d_cost = bce(raw_real, tf.ones_like(raw_real), q) + bce(raw_gen, tf.zeros_like(raw_gen), q)
        g_cost = bce(raw_gen, tf.ones_like(raw_gen), q)
        return d_cost, g_cost, tf.nn.sigmoid(raw_real), tf.nn.sigmoid(raw_gen)

    def samples_generator(self, Z, Y):
        """Images in [0, 1], [B, 28, 28, dim_channel], for any batch size (196 for grids)."""
        return tf.nn.sigmoid(self.generate(Z, Y))
