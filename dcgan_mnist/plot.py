"""Sample quality against iteration: `python -m dcgan_mnist.plot --checkpoint-dir checkpoints`.

Draws the figures a run measured while training (--eval-every N / --eval-every-epoch append them to
CHECKPOINT_DIR/metrics.jsonl) as three panels, label agreement, classifier score and Frechet
distance, against iteration: the trained weights and, when the run kept one, the averaged
generator. The held-out real reference, a dashed line in each panel, is the hook's own: the
{"real": ...} line it writes when it starts (the same classifier and sample size as the curves);
--real takes it instead from the JSON that `python -m dcgan_mnist.evaluate --out FILE` writes.

Also the confusion picture of `python -m dcgan_mnist.evaluate --confusion FILE.png` (write_confusion).
"""
import json
import os
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dcgan_mnist.cli import OneLineErrorParser, UserError, add_verbose, run
from dcgan_mnist.config import METRICS_FILE, N_LABELS, Config, check_output_folders
from dcgan_mnist.files import atomic_write

# The panels' titles; {K} is the run's number of labels, the classifier score's maximum.
FIGURES = (("label_agreement", "label agreement (higher is better)"),
           ("classifier_score", "classifier score (out of {K}, higher is better)"),
           ("frechet_distance", "Frechet distance (lower is better, log scale)"))
# The distance falls a hundredfold in a run: on a linear scale the part where the generators
# approach the real reference, and differ, is a flat line at the bottom.
LOG_SCALE = ("frechet_distance",)
SIZE = (12.0, 3.6)  # inches, at DPI: a 1200 x 360 picture
CONFUSION_SIZE = (6.0, 5.4)  # inches, at DPI: a 600 x 540 picture
CONFUSION_NUMBERS = 20  # labels up to which each cell of the confusion picture has its share written in
DPI = 100


class PlotError(UserError):
    """A metrics or --real file that cannot be drawn: exit status 2."""


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_figures(record, where):
    bad = [name for name, _ in FIGURES if not is_number(record.get(name))]
    if bad:
        raise PlotError(f"{where}: {bad[0]} is missing or not a number")


def read_metrics(path):
    """The measurements of metrics.jsonl, one per iteration, in order of iteration, and the held-out
    real figures of its last {"real": ...} line (None if it has none)."""
    how = "train with --eval-every N or --eval-every-epoch to measure quality"
    if not os.path.isfile(path):
        raise PlotError(f"{path}: no such file ({how})")
    records, real = [], None
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
            except ValueError:
                raise PlotError(f"{where}: not JSON") from None
            if isinstance(record, dict) and "real" in record and "iteration" not in record:
                if not isinstance(record["real"], dict):
                    raise PlotError(f"{where}: real is not an object")
                check_figures(record["real"], f"{where}, real")
                real = record["real"]  # a resumed run writes it again: the latest one
                continue
            if not isinstance(record, dict) or not is_number(record.get("iteration")):
                raise PlotError(f"{where}: not a measurement (no iteration)")
            check_figures(record, where)
            if "average" in record:
                if not isinstance(record["average"], dict):
                    raise PlotError(f"{where}: average is not an object")
                check_figures(record["average"], f"{where}, average")
            records.append(record)
    if not records:
        raise PlotError(f"{path}: no measurements ({how})")
    # A resumed run measures again the iterations after its checkpoint: the later line is kept.
    return sorted({r["iteration"]: r for r in records}.values(), key=lambda r: r["iteration"]), real


def read_real(path):
    """The held-out real figures of an evaluate --out file."""
    try:
        with open(path) as f:
            real = json.load(f).get("real")
    except OSError as e:
        raise PlotError(f"--real {path}: {e.strerror or e}") from None
    except (ValueError, AttributeError):
        real = None
    if not isinstance(real, dict):
        raise PlotError(f"--real {path}: not a file of python -m dcgan_mnist.evaluate --out (no \"real\" figures)")
    check_figures(real, f"--real {path}")
    return real


def n_labels(records):
    """The run's number of labels: the length of its per-label agreement (the ten digits if not recorded)."""
    per_label = records[-1].get("per_label_agreement")
    return len(per_label) if isinstance(per_label, list) and per_label else N_LABELS


def draw(records, real, title):
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(title)
    iterations = [r["iteration"] for r in records]
    averaged = [r for r in records if "average" in r]
    for ax, (name, label) in zip(fig.subplots(1, len(FIGURES)), FIGURES):
        ax.plot(iterations, [r[name] for r in records], marker=".", label="trained weights")
        if averaged:
            ax.plot([r["iteration"] for r in averaged], [r["average"][name] for r in averaged], marker=".",
                    label="averaged generator")
        if real is not None:
            ax.axhline(real[name], color="gray", linestyle="--", label="held-out real")
        if name in LOG_SCALE:
            ax.set_yscale("log")
        ax.set_title(label.format(K=n_labels(records)), fontsize="medium")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize="small")
    return fig


def draw_confusion(shares, title, names=None):
    """A K x K picture of confusion shares: requested label (rows) against label read (columns), the
    labels named by names (class names) or numbered 0 to K - 1 (digits)."""
    fig = Figure(figsize=CONFUSION_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    k = len(shares)
    for (row, col), share in np.ndenumerate(shares):
        if share >= 0.005 and k <= CONFUSION_NUMBERS:  # blank cells for zero: the mistakes stand out
            ax.text(col, row, f"{share:.2f}", ha="center", va="center", fontsize="small" if k <= 10 else "xx-small",
                    color="white" if share > 0.5 else "black")
    if names:
        ax.set_xticks(range(k), names, rotation=90)
        ax.set_yticks(range(k), names)
    else:  # matplotlib numbers the ticks
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
    ax.set_xlabel("label read by the classifier")
    ax.set_ylabel("label requested")
    ax.set_title(title, fontsize="medium")
    return fig


def write_confusion(shares, title, path, names=None):
    with atomic_write(path) as f:
        draw_confusion(np.asarray(shares), title, names).savefig(f, format="png")


def command(p, args):
    if not args.out.lower().endswith(".png"):
        p.error(f"--out {args.out}: must end in .png")
    check_output_folders(p, [("--out", args.out)])
    path = os.path.join(args.checkpoint_dir, METRICS_FILE)
    records, real = read_metrics(path)
    real = read_real(args.real) if args.real else real
    fig = draw(records, real, args.title or f"sample quality during training: {args.checkpoint_dir}")
    with atomic_write(args.out) as f:
        fig.savefig(f, format="png")
    averaged = "and the averaged generator" if any("average" in r for r in records) else "only (no averaged generator)"
    n = len(records)
    print(f"wrote {args.out}: {n} measurement{'s' * (n != 1)}, iterations {records[0]['iteration']} to "
          f"{records[-1]['iteration']}, of the trained weights {averaged}, from {path}")
    if real is None:
        print("no held-out real line (this metrics.jsonl has none): pass --real FILE, written by "
              "python -m dcgan_mnist.evaluate --out FILE")


def main(argv=None):
    p = OneLineErrorParser(prog="python -m dcgan_mnist.plot", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint-dir", default=Config.checkpoint_dir,
                   help=f"the run's checkpoint folder, holding {METRICS_FILE} (default: %(default)s)")
    p.add_argument("--out", default="quality.png", help="picture to write, .png (default: %(default)s)")
    p.add_argument("--real", help="an evaluate --out JSON file: draw its held-out real figures as the reference "
                                  "line instead of the run's own (the hook's, in metrics.jsonl)")
    p.add_argument("--title", help="the picture's title (default: sample quality during training: CHECKPOINT_DIR)")
    add_verbose(p)
    return run(p, argv, lambda args: command(p, args))


if __name__ == "__main__":
    sys.exit(main())
