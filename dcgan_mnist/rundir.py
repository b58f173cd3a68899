"""What a run's folder (--checkpoint-dir) holds, and how it is written and read back.

- run.json: the run's settings (config.Config) and a fingerprint of its training data, so that
  resume, generate, evaluate and export read them back instead of asking the user again;
- ckpt-N: tf.train.Checkpoint of everything that decides the rest of the run (make_checkpoint);
- restore_model: the generator a run left, for generate, evaluate and export.

Upstream created a Saver and never used it, so a killed run was lost. Here:
- tf.train.CheckpointManager writes each checkpoint under a temporary name and records it in
  the `checkpoint` file (an atomic rename) only once complete, so a kill -9 at any moment leaves
  the previous checkpoint as the latest; a latest checkpoint damaged afterwards (truncated by a
  full disk or a crash of the machine) is found at start and the run falls back to the one before.
- A checkpoint is never written with non-finite weights, and a write that fails (disk full)
  stops the run with the last good checkpoint in place.
- One trainer per folder: the chief holds an OS lock on .lock (hold) for as long as it lives.
- workers/worker-N: what workers other than the chief save (worker_folder).
"""
import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
import time

import numpy as np
import tensorflow as tf

from dcgan_mnist.config import RUN_FILE, Config
from dcgan_mnist.files import write_json_atomic
from dcgan_mnist.model import DCGAN


class RunError(RuntimeError):
    """A run that cannot start (e.g. a checkpoint folder of another run): exit status 2."""


class TrainingStopped(RuntimeError):
    """A run that had to stop (non-finite loss, a failed write): exit status 1."""


# ---------------------------------------------------------------- the run's record and checkpoint

def write_run(cfg, fingerprint):
    record = json.loads(cfg.to_json())
    # Absolute data paths: generate, evaluate and export read the record from any folder.
    for name in ("data_dir", "train_images", "train_labels"):
        if record[name] is not None:
            record[name] = os.path.abspath(record[name])
    write_json_atomic({"config": record, "data_fingerprint": fingerprint}, os.path.join(cfg.checkpoint_dir, RUN_FILE))


def read_run(checkpoint_dir):
    """(Config, data fingerprint) of the run recorded in checkpoint_dir, or (None, None)."""
    path = os.path.join(checkpoint_dir, RUN_FILE)
    if not os.path.isfile(path):
        return None, None
    try:
        with open(path) as f:
            record = json.load(f)
        return Config.from_json(json.dumps(record["config"])), record.get("data_fingerprint")
    except (ValueError, KeyError, TypeError) as e:
        raise RunError(f"{path}: unreadable run record ({e})") from None


class Averages(tf.Module):
    """The averaged generator (--ema-decay): one variable per weight of G, by upstream's names,
    so a checkpoint's ema/gen_W1 .. ema/gen_W4 restore into any DCGAN's gen_W1 .. gen_W4."""

    def __init__(self, gen_vars):
        super().__init__(name="ema")
        self.gen_W1, self.gen_W2, self.gen_W3, self.gen_W4 = gen_vars


class AveragedGenerator:
    """model's generator with the averaged weights (the same variables, not copies), for
    measuring the average during training. A plain object: DCGAN.generate reads only these
    attributes, and a copy of the tf.Module would share its checkpoint bookkeeping."""

    def __init__(self, model, averages):
        for name in ("dim_z", "dim_y", "dim_W2", "dim_W3", "dim_channel"):
            setattr(self, name, getattr(model, name))
        self.gen_W1, self.gen_W2, self.gen_W3, self.gen_W4 = (averages.gen_W1, averages.gen_W2, averages.gen_W3,
                                                              averages.gen_W4)

    generate = DCGAN.generate
    samples_generator = DCGAN.samples_generator


def make_checkpoint(model, d_optimizer=None, g_optimizer=None, noise_rng=None, averages=None):
    """Everything that decides the rest of a run: weights, both Adams, the noise generator's
    state, the counters and the averaged generator. The shuffle is a function of (seed, epoch),
    so it needs no state."""
    parts = dict(model=model, iteration=tf.Variable(0, dtype=tf.int64), epoch=tf.Variable(0, dtype=tf.int64))
    if d_optimizer is not None:
        parts.update(d_optimizer=d_optimizer, g_optimizer=g_optimizer, noise_rng=noise_rng)
    if averages is not None:
        parts.update(ema=averages)
    return tf.train.Checkpoint(**parts)


def has_average(path):
    """True when checkpoint `path` holds an averaged generator (a run with --ema-decay above 0)."""
    return any(name.startswith("ema/") for name, _ in tf.train.list_variables(path))


def restore_model(checkpoint_dir, checkpoint=None, weights=None):
    """The generator a run left, for generate, evaluate and export: (model, Config, checkpoint
    path, what was drawn from: "average" or "trained"). weights None: the averaged generator
    when the checkpoint has one, else the trained weights."""
    cfg, _ = read_run(checkpoint_dir)
    path = checkpoint or tf.train.latest_checkpoint(checkpoint_dir)
    if cfg is None or path is None:
        raise RunError(f"no checkpoint in {checkpoint_dir}: train first (python -m dcgan_mnist.train "
                       f"--checkpoint-dir {checkpoint_dir}) or pass --checkpoint-dir of a run")
    model = DCGAN(**cfg.model_kwargs(), seed=0)
    try:
        average = has_average(path)
        if weights == "average" and not average:
            raise RunError(f"{path}: holds no averaged generator (trained with --ema-decay 0); "
                           f"use --weights trained")
        drawn = "average" if average and weights != "trained" else "trained"
        if drawn == "average":  # the averages go straight into the model's gen_W1 .. gen_W4
            tf.train.Checkpoint(ema=Averages(model.gen_vars)).restore(path).expect_partial()
        else:
            make_checkpoint(model).restore(path).expect_partial()
    except (tf.errors.OpError, ValueError) as e:
        raise RunError(f"{path}: cannot restore checkpoint ({e.__class__.__name__})") from None
    return model, cfg, path, drawn


def describe(drawn):
    return {"average": "averaged generator", "trained": "trained weights"}[drawn]


# ---------------------------------------------------------------- writing checkpoints safely

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
    if not os.path.isdir(checkpoint_dir) or not set(os.listdir(checkpoint_dir)) - {LOCK_FILE}:
        return None
    base = os.path.normpath(checkpoint_dir) + ".old-" + time.strftime("%Y%m%d-%H%M%S")
    aside, n = base, 1
    while os.path.exists(aside):
        n += 1
        aside = f"{base}-{n}"
    os.rename(checkpoint_dir, aside)
    return aside


# ---------------------------------------------------------------- one trainer per folder

LOCK_FILE = ".lock"  # the chief's fcntl.flock, and who holds it ("PID HOST")


def check_free(checkpoint_dir):
    """Refuse at once a folder that another trainer holds, before reading or writing anything in
    it (hold takes the lock itself once every check has passed). Opens only a .lock that exists:
    a folder without one has no holder."""
    try:
        f = open(os.path.join(checkpoint_dir, LOCK_FILE), "r+")
    except OSError:
        return  # no lock file, or none we may open: hold() decides
    with f:
        _lock(f, checkpoint_dir, warn=False)  # released when f closes


def hold(checkpoint_dir):
    """Create checkpoint_dir if needed and take its lock: an exclusive fcntl.flock on
    CHECKPOINT_DIR/.lock, which the OS releases when the returned file is closed or the process
    ends, however it ends (kill -9 included; a stale .lock left behind blocks nobody). Keep the
    file for the rest of the run. RunError (exit 2) naming the holder if another process has it;
    on a filesystem without working locks, one warning line and the run goes on unguarded."""
    os.makedirs(checkpoint_dir, exist_ok=True)
    f = open(os.path.join(checkpoint_dir, LOCK_FILE), "a+")
    try:
        if _lock(f, checkpoint_dir, warn=True):
            f.truncate(0)  # who holds it, for the message of a trainer refused
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
            f.flush()
    except BaseException:
        f.close()
        raise
    return f


def _lock(f, checkpoint_dir, warn):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:  # another open file has it: a live process
        f.seek(0)
        pid, _, host = f.read().strip().partition(" ")
        holder = f"process {pid} on {host}" if host else "another process"
        raise RunError(f"--checkpoint-dir {checkpoint_dir} is in use by another trainer ({holder}); wait for it "
                       f"to end, stop it, or pass another --checkpoint-dir") from None
    except OSError as e:  # ENOLCK, EOPNOTSUPP...: e.g. some network filesystems
        if warn:
            print(f"warning: --checkpoint-dir {checkpoint_dir}: this filesystem has no working file locks "
                  f"({e.strerror or e}); nothing stops a second trainer from using the folder at the same time")
        return False


WORKERS = "workers"


def worker_folder(checkpoint_dir, task_id):
    """Where worker task_id (not the chief) saves: CHECKPOINT_DIR/workers/worker-N. Nothing reads
    these saves (every worker restores the chief's checkpoints); each worker empties its folder when
    it starts and removes it when it exits, and the chief clears workers/ when it starts, so a
    worker killed with kill -9 leaves at most one checkpoint, until the run starts again."""
    return os.path.join(checkpoint_dir, WORKERS, f"worker-{task_id}")


def remove_worker_folder(folder):
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(folder))  # workers/, once the last worker's folder is gone


def clear_worker_folders(checkpoint_dir):
    """The chief, holding the folder's lock, removes what earlier runs' workers left."""
    shutil.rmtree(os.path.join(checkpoint_dir, WORKERS), ignore_errors=True)


def restore_latest(ckpt, directory, keep):
    """A CheckpointManager for directory keeping the newest `keep` checkpoints (--keep-checkpoints),
    and the newest checkpoint that reads back whole,
    restored into ckpt (None for a new run). Each damaged one is reported in a line; after a
    fallback the `checkpoint` record is rewritten to end at the one restored."""
    manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=keep)
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
            kept = [os.path.basename(p) for p in reversed(candidates[i:i + keep])]
            tf.compat.v1.train.update_checkpoint_state(directory, kept[-1], all_model_checkpoint_paths=kept)
            manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=keep)
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
