"""The trained generator as a SavedModel: `python -m dcgan_mnist.export --checkpoint-dir DIR --out DIR`.

Its serving signature takes z [N, dim_z] float32 (upstream drew it from U(-1, 1)) and labels [N]
int32 (0 to 9) and returns images [N, 28, 28] uint8, the pixels generate.py writes. Only the
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

from dcgan_mnist.config import OneLineErrorParser, add_checkpoint_arguments
from dcgan_mnist.generate import context
from dcgan_mnist.model import DCGAN
from dcgan_mnist.rundir import RunError, describe, restore_model


class ServedGenerator(tf.Module):
    """The generator's weights and settings (DCGAN.generate reads nothing else) and the context."""

    def __init__(self, model, context_seed=0):
        super().__init__(name="generator")
        self.gen_W1, self.gen_W2, self.gen_W3, self.gen_W4 = model.gen_vars
        self.dim_z, self.dim_y = model.dim_z, model.dim_y
        self.dim_W2, self.dim_W3, self.dim_channel = model.dim_W2, model.dim_W3, model.dim_channel
        self.context_z, self.context_y = (tf.constant(a) for a in context(model, context_seed))
        self.serve = tf.function(self._serve, input_signature=[
            tf.TensorSpec([None, self.dim_z], tf.float32, name="z"),
            tf.TensorSpec([None], tf.int32, name="labels")])

    def _serve(self, z, labels):
        checks = [tf.debugging.assert_non_negative(labels, message="labels must be 0 to 9"),
                  tf.debugging.assert_less(labels, self.dim_y, message="labels must be 0 to 9"),
                  tf.debugging.assert_equal(tf.shape(z)[0], tf.shape(labels)[0],
                                            message="z and labels must have the same length N")]
        with tf.control_dependencies(checks):
            Z = tf.concat([z, self.context_z], 0)
            Y = tf.concat([tf.one_hot(labels, self.dim_y), self.context_y], 0)
            images = tf.nn.sigmoid(DCGAN.generate(self, Z, Y))[:tf.shape(z)[0]]
        pixels = tf.cast(tf.round(images * 255.0), tf.uint8)  # as generate.py rounds them
        if self.dim_channel == 1:
            pixels = pixels[..., 0]
        return {"images": pixels}


def export(model, out):
    """Write the SavedModel to a temporary folder beside out, then rename it to out."""
    parent = os.path.dirname(os.path.abspath(out))
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
    try:
        module = ServedGenerator(model)
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
        if os.path.isdir(out):
            os.rmdir(out)  # empty, checked by main
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv=None):
    p = OneLineErrorParser(prog="python -m dcgan_mnist.export", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(p)
    p.add_argument("--out", required=True, help="folder to create for the SavedModel (must not exist or be empty)")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up messages")
    args = p.parse_args(argv)
    if os.path.exists(args.out) and not (os.path.isdir(args.out) and not os.listdir(args.out)):
        p.error(f"--out {args.out}: already exists and is not an empty folder; refusing to overwrite it")
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        p.error(f"--out {args.out}: folder {parent} does not exist")
    try:
        model, cfg, ckpt_path, drawn = restore_model(args.checkpoint_dir, args.checkpoint, args.weights)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    export(model, args.out)
    print(f"wrote {args.out}: generator of {ckpt_path} ({describe(drawn)}); "
          f"signature serving_default(z float32 [N, {cfg.dim_z}], "
          f"labels int32 [N]) -> images uint8 [N, 28, 28]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
