"""Digits on demand: `python -m dcgan_mnist.generate --labels 0123456789 --n-per-label 8`.

Loads a trained generator from a checkpoint folder (its model settings and quirks mode come from
the run's own record, run.json) and draws n_per_label samples for every requested label: a grid
with one row per label (--out) and/or the images and labels as arrays (--npz).
"""
import sys

import numpy as np
import tensorflow as tf

from dcgan_mnist.config import OneLineErrorParser, add_checkpoint_arguments, check_sampling_arguments
from dcgan_mnist.files import atomic_write
from dcgan_mnist.grid import save_visualization
from dcgan_mnist.rundir import RunError, describe, restore_model


def parse_labels(text, dim_y=10):
    if not text or not text.isdigit() or any(int(c) >= dim_y for c in text):
        raise ValueError(f"--labels {text!r}: give digits 0 to {dim_y - 1}, e.g. 0123456789 or 7714")
    return [int(c) for c in text]


def generate(model, labels, n_per_label, seed):
    """uint8 images [len(labels) * n, 28, 28] and int labels, label by label in the given order.
    The whole set is one batch, as upstream's grids were (batchnorm uses batch statistics)."""
    y = np.repeat(np.asarray(labels, dtype=np.int64), n_per_label)
    rng = np.random.default_rng(seed)
    Z = rng.uniform(-1, 1, size=(len(y), model.dim_z)).astype(np.float32)
    images = model.samples_generator(tf.constant(Z), tf.one_hot(y, model.dim_y)).numpy()
    pixels = np.round(images[..., 0] * 255.0).astype(np.uint8)
    return pixels, y


def main(argv=None):
    p = OneLineErrorParser(prog="python -m dcgan_mnist.generate", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(p)
    p.add_argument("--labels", default="0123456789", help="digits to draw, repeats allowed (default: %(default)s)")
    p.add_argument("--n-per-label", type=int, default=10, help="samples per requested label (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default: %(default)s)")
    p.add_argument("--out", help="grid image to write, one row per label (.png or .jpg); "
                                 "default generated.png unless --npz is given")
    p.add_argument("--npz", help="write images (uint8 [N, 28, 28]) and labels (int [N]) to this .npz")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own start-up messages")
    args = p.parse_args(argv)
    out = args.out if args.out or args.npz else "generated.png"
    check_sampling_arguments(p, args, [("--out", out), ("--npz", args.npz)])
    try:
        labels = parse_labels(args.labels)
    except ValueError as e:
        p.error(str(e))
    try:
        model, _, ckpt_path, drawn = restore_model(args.checkpoint_dir, args.checkpoint, args.weights)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    images, y = generate(model, labels, args.n_per_label, args.seed)
    if out:
        # Upstream's washed-out (x + 1) / 2 belongs to its training grids only: digits drawn on
        # demand are shown as they are, whatever mode the run was trained in.
        save_visualization(images[..., None] / 255.0, (len(labels), args.n_per_label), out)
        print(f"wrote {out}: {len(labels)} rows ({args.labels}) x {args.n_per_label} from {ckpt_path} "
              f"({describe(drawn)})")
    if args.npz:
        with atomic_write(args.npz) as f:
            np.savez(f, images=images, labels=y)
        print(f"wrote {args.npz}: images {images.shape} uint8, labels {y.shape} from {ckpt_path} ({describe(drawn)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
