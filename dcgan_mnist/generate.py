"""Digits on demand: `python -m dcgan_mnist.generate --labels 0123456789 --n-per-label 8`.

Loads a trained generator from a checkpoint folder (its model settings and quirks mode come from
the run's own record, run.json) and draws n_per_label samples for every requested label: a grid
with one row per label (--out) and/or the images and labels as arrays (--npz).

--interpolate draws a walk per row instead, one column per step (and, with --gif, one frame per step):
  classes  each row keeps one noise vector while its label moves from one digit to another through
           the soft labels (1 - t) e_a + t e_b (--pairs 07,18,36);
  latent   each row keeps one label (--labels) while its noise moves in a straight line between two draws.
"""
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

from dcgan_mnist.checkpoint import load_generator
from dcgan_mnist.cli import OneLineErrorParser, add_verbose, run
from dcgan_mnist.config import Config, add_checkpoint_arguments, check_sampling_arguments
from dcgan_mnist.files import atomic_write
from dcgan_mnist.grid import make_grid, save_image_atomic, save_visualization

MODES = ("classes", "latent")
DEFAULTS = dict(n_per_label=10, steps=10)
DIGIT_PAIRS = "07,18,36"  # --pairs' default for the ten digits
CONTEXT = 500  # ordinary draws in the batch of every grid (draw), as many as evaluate's batches


def default_labels(names):
    """--labels' default: every class once, in order (the ten digits: 0123456789)."""
    return "".join(names) if len(names) <= 10 and all(n == str(i) for i, n in enumerate(names)) else ",".join(names)


def default_pairs(names):
    """--pairs' default: 07,18,36 for the digits; else the first classes to the last, as far as they go."""
    if tuple(names) == Config().label_names():
        return DIGIT_PAIRS
    return ",".join(f"{names[i]}:{names[-1 - i]}" for i in range(min(3, len(names) // 2)))


def label_index(item, names):
    """One label: a class name, or its index."""
    if item in names:
        return names.index(item)
    if item.isdigit() and int(item) < len(names):
        return int(item)
    raise ValueError(item)


def parse_labels(text, names):
    """Labels as --labels gives them: digits for a run of at most 10 classes (7714), or comma-separated
    class names or indices (bag,sneaker or 0,11,25). names: the run's classes (Config.label_names)."""
    try:
        if text and "," not in text and text.isdigit() and len(names) <= 10:
            return [label_index(c, names) for c in text]
        return [label_index(item.strip(), names) for item in text.split(",")]
    except ValueError as e:
        raise ValueError(f"--labels {text!r}: {label_problem(e.args[0], names)}") from None


def parse_pairs(text, names):
    """--pairs: comma-separated pairs of two different labels, as two digits (07) or as FROM:TO with
    class names or indices (bag:sneaker, 0:11)."""
    pairs = []
    try:
        for pair in text.split(","):
            ends = pair.split(":") if ":" in pair else list(pair) if len(pair) == 2 and pair.isdigit() else [pair]
            if len(ends) != 2 or ends[0] == ends[1]:
                raise ValueError(None)
            pairs.append(tuple(label_index(end.strip(), names) for end in ends))
    except ValueError as e:
        why = label_problem(e.args[0], names) if e.args[0] is not None else "give pairs of two different labels"
        raise ValueError(f"--pairs {text!r}: {why}, e.g. {default_pairs(names)}") from None
    return pairs


def label_problem(item, names):
    shown = ", ".join(names) if len(names) <= 12 else ", ".join(names[:12]) + ", ..."
    return f"no label {item!r}: the run's labels are {shown} (names or indices 0 to {len(names) - 1})"


def to_pixels(images):
    """[..., H, W, C] in [0, 1] -> uint8 [..., H, W] (grey) or [..., H, W, 3] (colour)."""
    pixels = np.round(images * 255.0).astype(np.uint8)
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def generate(model, labels, n_per_label, seed, context=True):
    """From model (a model.Generator): uint8 images [len(labels) * n, H, W(, 3)] and int labels, label by
    label in the given order, drawn in one batch with the context (draw). context=False: the requested set alone is the
    batch, for callers whose batches already mix the labels like a training batch (evaluate's)."""
    y = np.repeat(np.asarray(labels, dtype=np.int64), n_per_label)
    rng = np.random.default_rng(seed)
    Z = rng.uniform(-1, 1, size=(len(y), model.dim_z)).astype(np.float32)
    Y = np.eye(model.dim_y, dtype=np.float32)[y]
    if context:
        return draw(model, Z, Y, seed), y
    return to_pixels(model.samples_generator(tf.constant(Z), tf.constant(Y)).numpy()), y


def context(model, seed):
    """CONTEXT noise vectors (float32 [CONTEXT, dim_z]) and one-hot labels 0, 1, ... in turn, from a
    stream of their own: the same context for anything drawn with this seed."""
    context_z = np.random.default_rng([seed, 1]).uniform(-1, 1, size=(CONTEXT, model.dim_z)).astype(np.float32)
    return context_z, np.eye(model.dim_y, dtype=np.float32)[np.arange(CONTEXT) % model.dim_y]


def draw(model, Z, Y, seed):
    """Noise [..., dim_z] and labels [..., dim_y] -> uint8 images [..., H, W] (grey) or [..., H, W, 3].
    Batchnorm normalises by the statistics of the batch (upstream's generator has no other), so the
    cells are drawn in one batch with CONTEXT ordinary draws (labels 0 to 9 in turn), whose images
    are dropped. Alone, a few cells, or cells of one label or one noise vector, are a batch unlike
    any in training: they draw smudges or blanks (a batch of one is normalised to zero), and every
    cell would change with the others."""
    cells = int(np.prod(Z.shape[:-1]))
    context_z, context_y = context(model, seed)
    images = model.samples_generator(tf.constant(np.concatenate([Z.reshape(cells, -1), context_z]), tf.float32),
                                     tf.constant(np.concatenate([Y.reshape(cells, -1), context_y]), tf.float32))
    pixels = to_pixels(images[:cells].numpy())
    return pixels.reshape(*Z.shape[:-1], *pixels.shape[1:])


def fractions(steps):
    # linspace makes the ends exactly 0 and 1: a walk's first and last cells are plain draws of its two ends.
    return np.linspace(0.0, 1.0, steps)[None, :, None]


def class_interpolation(model, pairs, steps, seed):
    """uint8 [len(pairs), steps, H, W(, 3)]: row i keeps one noise vector while its label goes from
    pairs[i][0] to pairs[i][1] through (1 - t) e_a + t e_b, t from 0 to 1 in even steps."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, size=(len(pairs), 1, model.dim_z)).astype(np.float32)
    one_hot = np.eye(model.dim_y)
    a, b = (one_hot[list(ends)][:, None, :] for ends in zip(*pairs))
    t = fractions(steps)
    return draw(model, np.repeat(z, steps, axis=1), (1 - t) * a + t * b, seed)


def latent_interpolation(model, labels, steps, seed):
    """uint8 [len(labels), steps, H, W(, 3)]: row i keeps label labels[i] while its noise goes in a
    straight line from one draw of U(-1, 1) to another. Straight, not spherical: the training noise
    fills the cube [-1, 1]^dim_z and a straight line between two of its points stays inside it, while
    a spherical path keeps the norm but leaves the cube (its midpoint goes past 1 in some
    components), into noise the generator never saw."""
    rng = np.random.default_rng(seed)
    z0, z1 = rng.uniform(-1, 1, size=(2, len(labels), 1, model.dim_z)).astype(np.float32)
    t = fractions(steps)
    y = np.eye(model.dim_y)[labels][:, None, :]
    return draw(model, (1 - t) * z0 + t * z1, np.repeat(y, steps, axis=1), seed)


def save_gif(walks, path, frame_ms=200, end_ms=1000):
    """One frame per step: step t of every row side by side. The ends are held so they can be read.
    (Pillow merges two identical consecutive frames into one, holding it longer.)"""
    steps, grey = walks.shape[1], walks.ndim == 4
    grids = [make_grid(walks[:, t] / 255.0, (1, len(walks))) for t in range(steps)]
    frames = [Image.fromarray(grid[..., 0] if grey else grid) for grid in grids]
    durations = [end_ms] + [frame_ms] * (steps - 2) + [end_ms]
    save_image_atomic(frames[0], path, save_all=True, append_images=frames[1:], duration=durations, loop=0)


def refuse_other_modes(parser, args):
    """A flag of another mode is an error, not ignored: whoever typed it expected it to act."""
    mode = args.interpolate
    rules = [("--n-per-label", args.n_per_label, mode is None, "only without --interpolate (--steps sets a row)"),
             ("--npz", args.npz, mode is None, "only without --interpolate"),
             ("--steps", args.steps, mode is not None, "only with --interpolate"),
             ("--gif", args.gif, mode is not None, "only with --interpolate"),
             ("--pairs", args.pairs, mode == "classes", "only with --interpolate classes"),
             ("--labels", args.labels, mode != "classes", "not with --interpolate classes (its rows are --pairs)")]
    for flag, value, allowed, why in rules:
        if value is not None and not allowed:
            parser.error(f"{flag} {value}: {why}")


def parser():
    p = OneLineErrorParser(prog="python -m dcgan_mnist.generate", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(p)
    # Defaults are filled in after refuse_other_modes, which needs to know what was typed.
    p.add_argument("--labels", help="labels to draw, repeats allowed: digits (7714), or comma-separated class "
                                    "names or indices (bag,sneaker or 0,11,25); with --interpolate latent, one row "
                                    "each (default: every label once, 0123456789 for digits)")
    p.add_argument("--n-per-label", type=int, help=f"samples per requested label (default: {DEFAULTS['n_per_label']})")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default: %(default)s)")
    p.add_argument("--out", help="grid image to write, one row per label (.png or .jpg); default generated.png "
                                 "unless --npz is given (with --interpolate: MODE-interpolation.png unless --gif is)")
    p.add_argument("--npz", help="write images (uint8 [N, H, W], or [N, H, W, 3] in colour) and labels (int [N]) "
                                 "to this .npz")
    p.add_argument("--interpolate", choices=MODES, help="draw walks, one per row, one column per step: "
                                                       "between two labels (classes) or two noise draws (latent)")
    p.add_argument("--pairs", help="with --interpolate classes: comma-separated pairs, one row each, from the "
                                   "first label to the second: two digits (07) or FROM:TO names or indices "
                                   f"(bag:sneaker) (default: {DIGIT_PAIRS} for digits)")
    p.add_argument("--steps", type=int, help=f"with --interpolate: columns per row, ends included "
                                             f"(default: {DEFAULTS['steps']})")
    p.add_argument("--gif", help="with --interpolate: also write an animated GIF, one frame per step")
    add_verbose(p)
    return p


def check_arguments(p, args):
    """Refuse bad or misplaced flags (exit 2, one line); fill in the defaults. Returns the grid's path
    (None when only --npz or --gif is wanted). The labels are read once the run's are known (labels)."""
    refuse_other_modes(p, args)
    for name, value in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.interpolate:
        out = args.out if args.out or args.gif else f"{args.interpolate}-interpolation.png"
        outputs = [("--out", out), ("--gif", args.gif)]
    else:
        out = args.out if args.out or args.npz else "generated.png"
        outputs = [("--out", out), ("--npz", args.npz)]
    check_sampling_arguments(p, args, outputs)
    if args.steps < 2:
        p.error(f"--steps {args.steps}: must be at least 2 (the two ends)")
    if args.gif and not args.gif.lower().endswith(".gif"):
        p.error(f"--gif {args.gif}: must end in .gif")
    return out


def labels(p, args, names):
    """The labels and pairs asked for, read against the run's label names (defaults: every label once)."""
    args.labels = default_labels(names) if args.labels is None else args.labels
    args.pairs = default_pairs(names) if args.pairs is None else args.pairs
    try:
        return parse_labels(args.labels, names), parse_pairs(args.pairs, names) if args.interpolate == "classes" else []
    except ValueError as e:
        p.error(str(e))


def write_interpolation(model, args, out, labels, pairs, source):
    if args.interpolate == "classes":
        walks, rows = class_interpolation(model, pairs, args.steps, args.seed), f"pairs {args.pairs}"
    else:
        walks, rows = latent_interpolation(model, labels, args.steps, args.seed), f"labels {args.labels}"
    what = f"{args.interpolate} interpolation of {rows} (one row each), {args.steps} steps"
    if out:
        save_visualization(walks.reshape(-1, *walks.shape[2:]) / 255.0, walks.shape[:2], out)
        print(f"wrote {out}: {what} {source}")
    if args.gif:
        save_gif(walks, args.gif)
        print(f"wrote {args.gif}: {what}, one frame per step {source}")


def write_digits(model, args, out, labels, source):
    images, y = generate(model, labels, args.n_per_label, args.seed)
    if out:
        # Upstream's washed-out (x + 1) / 2 belongs to its training grids only: digits drawn on
        # demand are shown as they are, whatever mode the run was trained in.
        save_visualization(images / 255.0, (len(labels), args.n_per_label), out)
        rows = f"{len(labels)} row{'s' if len(labels) > 1 else ''} ({args.labels})"
        print(f"wrote {out}: {rows} x {args.n_per_label} {source}")
    if args.npz:
        with atomic_write(args.npz) as f:
            np.savez(f, images=images, labels=y)
        print(f"wrote {args.npz}: images {images.shape} uint8, labels {y.shape} {source}")


def command(p, args):
    out = check_arguments(p, args)
    drawn = load_generator(args)
    asked, pairs = labels(p, args, drawn.cfg.label_names())
    model, source = drawn.generator, f"from {drawn.describe()}"
    if args.interpolate:
        write_interpolation(model, args, out, asked, pairs, source)
    else:
        write_digits(model, args, out, asked, source)


def main(argv=None):
    p = parser()
    return run(p, argv, lambda args: command(p, args))


if __name__ == "__main__":
    sys.exit(main())
