"""The trained generator as a SavedModel: `python -m dcgan_mnist.export --checkpoint-dir DIR --out DIR`.

Its serving signature takes z [N, dim_z] float32 (upstream drew it from U(-1, 1)) and labels [N]
int32 (0 to dim_y - 1) and returns images uint8 [N, H, W] (grey; MNIST: 28 x 28) or [N, H, W, 3]
(colour), the pixels generate.py writes. Only the
generator's weights are saved, with generate's context for seed 0: as in upstream, batch norm uses
the statistics of the batch, so every request is drawn in one batch with those 500 ordinary draws
(generate.draw), and a request of one digit is a digit, not the blank its own statistics give.
Load it with tf.saved_model.load(DIR).signatures["serving_default"](z=..., labels=...).
"""
import os
import shutil
import sys
import tempfile

import tensorflow as tf

from dcgan_mnist.checkpoint import load_generator
from dcgan_mnist.cli import OneLineErrorParser, add_verbose, run
from dcgan_mnist.config import add_checkpoint_arguments
from dcgan_mnist.generate import context

CONTEXT_SEED = 0  # the served context is generate's for --seed 0


class ServedGenerator(tf.Module):
    """A model.Generator and generate's context, with the serving signature."""

    def __init__(self, generator):
        super().__init__(name="served")
        self.generator = generator
        self.context_z, self.context_y = (tf.constant(a) for a in context(generator, CONTEXT_SEED))
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, generator.dim_z], tf.float32, name="z"),
            tf.TensorSpec([None], tf.int32, name="labels")])

    def _serve(self, z, labels):
        in_range = f"labels must be 0 to {self.generator.dim_y - 1}"
        checks = [tf.debugging.assert_non_negative(labels, message=in_range),
                  tf.debugging.assert_less(labels, self.generator.dim_y, message=in_range),
                  tf.debugging.assert_equal(tf.shape(z)[0], tf.shape(labels)[0],
                                            message="z and labels must have the same length N")]
        with tf.control_dependencies(checks):
            Z = tf.concat([z, self.context_z], 0)
            Y = tf.concat([tf.one_hot(labels, self.generator.dim_y), self.context_y], 0)
            images = self.generator.samples_generator(Z, Y)[:tf.shape(z)[0]]
        pixels = tf.cast(tf.round(images * 255.0), tf.uint8)  # as generate.py rounds them
        if self.generator.dim_channel == 1:
            pixels = pixels[..., 0]
        return {"images": pixels}


def export(generator, out):
    """Write the SavedModel to a temporary folder beside out, then rename it to out."""
    parent = os.path.dirname(os.path.abspath(out))
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
    try:
        module = ServedGenerator(generator)
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
        if os.path.isdir(out):
            os.rmdir(out)  # empty, checked by main
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def command(p, args):
    if os.path.exists(args.out) and not (os.path.isdir(args.out) and not os.listdir(args.out)):
        p.error(f"--out {args.out}: already exists and is not an empty folder; refusing to overwrite it")
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        p.error(f"--out {args.out}: folder {parent} does not exist")
    drawn = load_generator(args)
    export(drawn.generator, args.out)
    H, W, C = drawn.generator.image_shape
    print(f"wrote {args.out}: generator of {drawn.describe()}; "
          f"signature serving_default(z float32 [N, {drawn.cfg.dim_z}], "
          f"labels int32 [N]) -> images uint8 [N, {H}, {W}{'' if C == 1 else ', 3'}]")


def main(argv=None):
    p = OneLineErrorParser(prog="python -m dcgan_mnist.export", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(p)
    p.add_argument("--out", required=True, help="folder to create for the SavedModel (must not exist or be empty)")
    add_verbose(p)
    return run(p, argv, lambda args: command(p, args))


if __name__ == "__main__":
    sys.exit(main())
