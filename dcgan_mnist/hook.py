"""Sample quality during training: --eval-every N and --eval-every-epoch (TrainingHook).

train.py creates the hook before its loop when a run measures quality, and calls it after every
iteration and at every epoch's end. It scores with evaluate.py's Evaluator on the split train.py
already holds, and writes CHECKPOINT_DIR/metrics.jsonl, which `python -m dcgan_mnist.plot` draws.
"""
import json
import os
import time

from dcgan_mnist.config import METRICS_FILE
from dcgan_mnist.report import one_line


class TrainingHook:
    """Prints one line per measurement and appends it to CHECKPOINT_DIR/metrics.jsonl: the trained
    weights' figures, and under "average" those of the averaged generator when the run keeps one.
    Every figure but CAS, which trains a classifier (minutes): its "cas" is null here, and
    `python -m dcgan_mnist.evaluate` measures it."""

    def __init__(self, cfg, model, averaged, split):
        """split: the run's data.Split, as train.prepare made it (no second load of the data), of any image
        shape; cfg: the run's settings, its labels (cfg.label_names()) decided by the data."""
        # Imported here: a run that measures nothing loads neither evaluate nor its classifier.
        from dcgan_mnist.evaluate import Evaluator
        self.cfg, self.model, self.averaged = cfg, model, averaged
        self.evaluator = e = Evaluator(split, cfg.eval_n_per_label, label_names=cfg.label_names())
        print(f"quality: classifier {e.accuracy:.2%} accurate on {e.n_held} held-out real images; "
              f"{e.n_per_label} generated images per label per measurement")
        self.path = os.path.join(cfg.checkpoint_dir, METRICS_FILE)
        self.start = time.perf_counter()
        self.last = None
        self.real_written = False

    def _append(self, record):
        # The held-out real figures first (once per process, so a resumed run repeats them): plot
        # draws them beside the curves, measured by the same classifier on the same sample size.
        real = dict(real=self.evaluator.real, classifier_accuracy=self.evaluator.accuracy)
        lines = [] if self.real_written else [real]
        self.real_written = True
        with open(self.path, "a") as f:
            for line in lines + [record]:
                f.write(json.dumps(line) + "\n")

    def __call__(self, iteration, epoch, epoch_end=False, final=False):
        """Measure if due; return the figures as {"eval/name": value} for TensorBoard ({} if not due)."""
        cfg = self.cfg
        due = final or (cfg.eval_every and iteration % cfg.eval_every == 0) or (epoch_end and cfg.eval_every_epoch)
        if not due or (self.last is not None and self.last["iteration"] == iteration):
            return {}
        trained = self.evaluator(self.model)["generated"]
        self.last = dict(iteration=iteration, epoch=round(epoch, 3),
                         wall_time=round(time.perf_counter() - self.start, 1), **trained)
        line = f"quality at iteration {iteration} (epoch {epoch:.2f}): {one_line(trained)}"
        summaries = scalars(trained, "eval/")
        if self.averaged is not None:
            self.last["average"] = average = self.evaluator(self.averaged)["generated"]
            line += f"; averaged generator: {one_line(average)}"
            summaries.update(scalars(average, "eval_average/"))
        print(line)
        self._append(self.last)
        return summaries

    def finish(self, iteration, epoch):
        """Measure the final weights unless just done, and print them for the run's summary."""
        figures = self(iteration, epoch, final=True)
        average = f"; averaged generator: {one_line(self.last['average'])}" if "average" in self.last else ""
        print(f"quality of the last weights (iteration {self.last['iteration']}): {one_line(self.last)}{average}; "
              f"held-out real: {one_line(self.evaluator.real)}; all in {self.path}")
        return figures


def scalars(figures, prefix):
    """The single numbers among figures, for TensorBoard: not n, the per-label list or an unmeasured CAS."""
    return {prefix + name: value for name, value in figures.items() if name != "n" and isinstance(value, float)}
