"""What keeps a long run alive: write probes, crash-safe checkpoints, signals, the NaN guard.

Upstream created a Saver and never used it, so a killed run was lost. Here:
- tf.train.CheckpointManager writes each checkpoint under a temporary name and records it in
  the `checkpoint` file (an atomic rename) only once complete, so a kill -9 at any moment leaves
  the previous checkpoint as the latest; a latest checkpoint damaged afterwards (truncated by a
  full disk or a crash of the machine) is found at start and the run falls back to the one before.
- SIGINT / SIGTERM let the current iteration finish; the loop then writes a checkpoint and stops.
- A checkpoint is never written with non-finite weights, and a write that fails (disk full)
  stops the run with the last good checkpoint in place.
"""
import os
import re
import signal
import tempfile
import time

import numpy as np
import tensorflow as tf


class RunError(RuntimeError):
    """A run that cannot start (e.g. a checkpoint folder of another run): exit status 2."""


class TrainingStopped(RuntimeError):
    """A run that had to stop (non-finite loss, a failed write): exit status 1."""


def probe_writable(path, flag):
    """Check that folder `path` exists or can be created, and takes a file, without creating it
    (a failed run writes nothing): the probe file goes in its nearest existing ancestor."""
    if not path:
        raise RunError(f"{flag}: empty path")
    target = os.path.abspath(path)
    while not os.path.exists(target):
        target = os.path.dirname(target)
    if not os.path.isdir(target):
        raise RunError(f"{flag} {path}: {target} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=target, prefix=".write-probe-") as f:
            f.write(b"probe")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise RunError(f"{flag} {path}: cannot write in {target} ({e.strerror or e})") from None


def move_aside(checkpoint_dir):
    """--force-new: rename the old run's folder to CHECKPOINT_DIR.old-TIMESTAMP; return that name
    (None when there was nothing to move). Nothing is deleted."""
    if not os.path.isdir(checkpoint_dir) or not os.listdir(checkpoint_dir):
        return None
    base = os.path.normpath(checkpoint_dir) + ".old-" + time.strftime("%Y%m%d-%H%M%S")
    aside, n = base, 1
    while os.path.exists(aside):
        n += 1
        aside = f"{base}-{n}"
    os.rename(checkpoint_dir, aside)
    return aside


KEEP = 10  # checkpoints kept; upstream's unused Saver had max_to_keep=10


def restore_latest(ckpt, directory):
    """A CheckpointManager for directory, and the newest checkpoint that reads back whole,
    restored into ckpt (None for a new run). Each damaged one is reported in a line; after a
    fallback the `checkpoint` record is rewritten to end at the one restored."""
    manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=KEEP)
    candidates = list(reversed(manager.checkpoints))
    if not candidates:
        # No `checkpoint` record, or a damaged one (TensorFlow then reports none): the files
        # themselves decide, so a fresh start never overwrites a run's checkpoints.
        candidates = found_on_disk(directory)[::-1]
        if candidates:
            print(f"warning: {os.path.join(directory, 'checkpoint')} is missing or damaged; trying the "
                  f"{len(candidates)} checkpoints found beside it, newest first")
    for i, path in enumerate(candidates):
        try:
            ckpt.restore(path).assert_existing_objects_matched()
            if not all_finite(ckpt):
                raise ValueError("non-finite values")
        except Exception as e:  # a damaged file fails in many ways (OpError, IndexError, ValueError...)
            what = e.message if isinstance(e, tf.errors.OpError) else str(e)
            print(f"warning: checkpoint {path} is damaged ({type(e).__name__}: {what.splitlines()[0][:120]}); "
                  f"trying the one before")
            continue
        if path != manager.latest_checkpoint:  # relative names: the record still works if the folder moves
            kept = [os.path.basename(p) for p in reversed(candidates[i:i + KEEP])]
            tf.compat.v1.train.update_checkpoint_state(directory, kept[-1], all_model_checkpoint_paths=kept)
            manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=KEEP)
        return manager, path
    if candidates:
        raise RunError(f"{directory}: none of its {len(candidates)} checkpoints can be restored; "
                       f"pass --force-new to move them aside and start over")
    return manager, None


def found_on_disk(directory):
    """Paths of the ckpt-N checkpoints whose index file is in directory, oldest first."""
    if not os.path.isdir(directory):
        return []
    numbers = sorted(int(m.group(1)) for m in map(re.compile(r"ckpt-(\d+)\.index").fullmatch, os.listdir(directory))
                     if m)
    return [os.path.join(directory, f"ckpt-{n}") for n in numbers]


def all_finite(ckpt):
    """True when every float variable the checkpoint holds (weights, Adam's moments) is finite."""
    for v in _variables(ckpt):
        if v.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(v))):
            return False
    return True


def _variables(ckpt):
    model = ckpt.model
    out = list(model.trainable_variables)
    for name in ("d_optimizer", "g_optimizer"):
        opt = getattr(ckpt, name, None)
        if opt is not None:
            out += [getattr(v, "value", v) for v in opt.variables]
    return out


def check_losses(iteration, losses, last_good):
    """Stop the run at the first non-finite loss, before anything is saved after it."""
    for name, value in losses.items():
        if not np.isfinite(float(value)):
            others = ", ".join(f"{n} {float(v):.6g}" for n, v in losses.items() if n != name)
            raise TrainingStopped(f"iteration {iteration}: {name} is {float(value)} ({others}); training "
                                  f"diverged and stopped without saving; {_last(last_good)}")


def save(manager, ckpt, iteration, last_good):
    """Write checkpoint ckpt-ITERATION, only with finite weights, and return its path. A failed
    write (disk full) stops the run; the previous checkpoint stays the latest."""
    if not all_finite(ckpt):
        raise TrainingStopped(f"iteration {iteration}: the weights are no longer finite; stopped without "
                              f"saving; {_last(last_good)}")
    try:
        return manager.save(checkpoint_number=iteration)
    except (OSError, tf.errors.OpError) as e:
        what = e.message if isinstance(e, tf.errors.OpError) else (e.strerror or str(e))
        raise TrainingStopped(f"cannot write checkpoint {os.path.join(manager.directory, f'ckpt-{iteration}')} "
                              f"({what.splitlines()[0][:200]}); stopped; {_last(last_good)}") from None


def _last(path):
    return f"the last good checkpoint is {path}" if path else "no checkpoint was written yet"


class StopSignals:
    """SIGINT / SIGTERM set `received` (the signal's name) instead of killing the process, so the
    loop can finish its iteration and write a checkpoint. A second signal acts as usual."""

    def __init__(self):
        self.received = None
        self._old = {}

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        for s, old in self._old.items():  # a second Ctrl-C is not ignored
            signal.signal(s, old)

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        return False
