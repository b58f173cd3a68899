"""The quality figures as text: one line (the training hook's), a table of one result (evaluate's)
and, over several seeds, each figure's mean and half its range as a Markdown table (evaluate --seeds).
A result is what evaluate.Evaluator.score returns; its rows are dicts of figures.
"""
import numpy as np

LABELS_PER_LINE = 10  # per-label agreement: the columns of one block of the table


def one_line(g):
    """The main figures of one row, in a line (the training hook prints one per measurement)."""
    return (f"label agreement {g['label_agreement']:.4f}, classifier score {g['classifier_score']:.3f}, "
            f"Frechet distance {g['frechet_distance']:.3f}, KID {g['kid']:.4f}, precision {g['precision']:.3f}, "
            f"recall {g['recall']:.3f}, copies {g['copies']:.3f}")


def cell(value, form):
    return "-" if value is None else format(value, form)


def table(rows, result):
    """rows: (name, figures) pairs, e.g. ("generated", result["generated"]); the notes from result."""
    c, names = result["classifier"], result["label_names"]
    lines = [f"{'':<20}{'images':>7}{'agreement':>10}{'score':>7}{'Frechet':>10}{'KID':>20}{'precision':>10}"
             f"{'recall':>7}{'CAS':>8}{'copies':>7}"]
    for name, r in rows:
        kid = f"{r['kid']:.4f} +- {r['kid_std']:.4f}"
        lines.append(f"{name:<20}{r['n']:>7}{r['label_agreement']:>10.4f}{r['classifier_score']:>7.3f}"
                     f"{r['frechet_distance']:>10.3f}{kid:>20}{r['precision']:>10.3f}{r['recall']:>7.3f}"
                     f"{cell(r['cas'], '.4f'):>8}{r['copies']:>7.3f}")
    lines += per_label_lines(rows, names)
    lines.append(f"Frechet, KID, precision/recall: {result['frechet_n']} images of each set against "
                 f"{result['frechet_reference_n']} other held-out real images; classifier score out of {len(names)}; "
                 f"CAS{' (-: not measured)' * any(r['cas'] is None for _, r in rows)} on all {c['heldout_n']} "
                 f"held-out real images; copies: share nearer "
                 f"a training image than 99% of held-out real images are")
    lines.append(f"classifier: {c['heldout_accuracy']:.2%} accurate on {c['heldout_n']} held-out real images "
                 f"(trained on {c['trained_on']}: {c['file']})")
    return "\n".join(lines)


def per_label_lines(rows, names):
    """The agreement of each label (named by names) in each row, LABELS_PER_LINE labels to a block."""
    lines = []
    for start in range(0, len(names), LABELS_PER_LINE):
        heads = [f"label {name}" for name in names[start:start + LABELS_PER_LINE]]
        widths = [max(8, len(head) + 1) for head in heads]
        lines.append(f"{'agreement of':<20}" + "".join(f"{head:>{w}}" for head, w in zip(heads, widths)))
        for name, r in rows:
            shares = r["per_label_agreement"][start:start + LABELS_PER_LINE]
            lines.append(f"{name:<20}" + "".join(f"{cell(a, '.4f'):>{w}}" for a, w in zip(shares, widths)))
    return lines


# The figures a --seeds table gives, with their heads.
SUMMARY = (("label_agreement", "agreement"), ("classifier_score", "score"), ("frechet_distance", "Frechet"),
           ("kid", "KID"), ("precision", "precision"), ("recall", "recall"), ("cas", "CAS"), ("copies", "copies"))


def summary(results):
    """Each figure's mean over the results (one per seed) and half its range, (max - min) / 2, for
    the generated row and the real row: {row: {figure: {"mean", "half_range"} or None if unmeasured}}."""
    def spread(values):
        if any(v is None for v in values):
            return None
        return dict(mean=float(np.mean(values)), half_range=float(max(values) - min(values)) / 2)
    return {row: {name: spread([r[row][name] for r in results]) for name, _ in SUMMARY}
            for row in ("generated", "real")}


def spread_cell(s):
    """"mean ± half range", 4 decimals below 10 and 2 above; "-" for a figure not measured."""
    if s is None:
        return "-"
    digits = 4 if abs(s["mean"]) < 10 else 2
    return f"{s['mean']:.{digits}f} ± {s['half_range']:.{digits}f}"


def summary_table(figures, rows):
    """A Markdown table of summary()'s figures; rows: (title, "generated" or "real") pairs."""
    lines = ["| | " + " | ".join(head for _, head in SUMMARY) + " |", "| --- " * (len(SUMMARY) + 1) + "|"]
    lines += [f"| {title} | " + " | ".join(spread_cell(figures[row][name]) for name, _ in SUMMARY) + " |"
              for title, row in rows]
    return "\n".join(lines)
