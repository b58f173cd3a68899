"""What a user watches during a run: the log or a progress bar, and TensorBoard summaries.

Upstream printed six lines per iteration; that stays the default (print_iteration).
--progress shows a tqdm bar per epoch instead (ETA, it/s, latest losses), and --logdir writes
tf.summary scalars and the sample grid for TensorBoard. Only the chief process monitors.

Other figures (evaluate.py's, for instance) go to TensorBoard with
monitor.scalars(iteration, {"eval/name": value, ...}).
"""
import math
import sys
import time

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from dcgan_mnist.grid import make_grid


def print_iteration(it, updating, gen_loss, discrim_loss, p_real, p_gen):
    # Upstream's six lines, word for word, so scripts that read its logs read these.
    print(f"=========== updating {updating} ==========")
    print("iteration:", it)
    print("gen loss:", np.float32(gen_loss))
    print("discrim loss:", np.float32(discrim_loss))
    print("Average P(real)=", np.float32(p_real))
    print("Average P(gen)=", np.float32(p_gen))


def print_epoch(epoch, n_epochs, done, seconds, batch_size):
    print(f"epoch {epoch + 1}/{n_epochs}: {done} iterations in {seconds:.1f} s, "
          f"{seconds / max(done, 1):.4f} s/iteration, {done * batch_size / seconds:.0f} images/s")


class Monitor:
    def __init__(self, cfg, steps_per_epoch, total, enabled=True):
        self.cfg = cfg
        self.steps_per_epoch = steps_per_epoch
        self.total = total
        self.enabled = enabled
        self.bar = None
        self.writer = tf.summary.create_file_writer(cfg.logdir) if enabled and cfg.logdir else None
        self.last = None  # (iteration, clock) of the last summary, for seconds per iteration

    def epoch_start(self, epoch, iteration):
        if self.enabled and self.cfg.progress:
            first = epoch * self.steps_per_epoch
            end = min(first + self.steps_per_epoch, self.total)
            # leave=False: the epoch's summary line that train.py prints takes the bar's place.
            self.bar = tqdm(total=end - first, initial=iteration - first, unit="it", leave=False,
                            desc=f"epoch {epoch + 1}/{self.cfg.n_epochs}", file=sys.stderr, dynamic_ncols=True)

    def iteration(self, iteration, updating, d_cost, g_cost, p_real, p_gen):
        if not self.enabled:
            return
        logged = iteration % self.cfg.log_every == 0
        if self.bar is not None:
            if logged:
                self.bar.set_postfix({"D": f"{float(d_cost):.4f}", "G": f"{float(g_cost):.4f}",
                                      "P(real)": f"{float(p_real):.3f}", "P(gen)": f"{float(p_gen):.3f}"},
                                     refresh=False)
            self.bar.update(1)  # redraws at most every 0.1 s (tqdm's mininterval)
        elif logged:
            print_iteration(iteration, updating, g_cost, d_cost, p_real, p_gen)
        if not logged:
            return
        if self.writer is not None:
            now = time.perf_counter()
            figures = {"loss/discrim": d_cost, "loss/gen": g_cost, "P/real": p_real, "P/gen": p_gen}
            if self.last is not None and iteration > self.last[0]:
                figures["time/seconds_per_iteration"] = (now - self.last[1]) / (iteration - self.last[0])
            self.last = (iteration, now)
            self.scalars(iteration, figures)

    def scalars(self, iteration, figures):
        """Write {name: number} to TensorBoard at this iteration (the hook for other figures)."""
        if self.writer is None:
            return
        with self.writer.as_default(step=iteration):
            for name, value in figures.items():
                tf.summary.scalar(name, value)

    def grid(self, iteration, samples):
        """The grid of samples ([N, 28, 28, c] in [0, 1]) just written, as a TensorBoard image."""
        if self.writer is None:
            return
        side = math.isqrt(len(samples))
        pixels = make_grid(samples, (side, side), self.cfg.upstream_quirks)
        with self.writer.as_default(step=iteration):
            tf.summary.image("samples", pixels[None])

    def epoch_end(self, epoch, done, seconds):
        """The epoch's line: `done` iterations in `seconds` (every process prints it; other workers'
        stdout goes nowhere, distribute.quiet_worker)."""
        self._close_bar()
        print_epoch(epoch, self.cfg.n_epochs, done, seconds, self.cfg.batch_size)

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.flush()

    def close(self):
        self._close_bar()
        if self.writer is not None:
            self.writer.close()
