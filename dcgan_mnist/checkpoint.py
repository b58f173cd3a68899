"""What a run's checkpoint folder (--checkpoint-dir) holds, and how it is written and read back.

- run.json: the run's settings (config.Config) and a fingerprint of its training data, so that
  resume, generate, evaluate and export read them back instead of asking the user again;
- ckpt-N: tf.train.Checkpoint of everything that decides the rest of the run (make_checkpoint);
- load_generator: the generator a run left (restore_generator) or the shipped one (load_pretrained),
  for generate, evaluate and export.

Upstream created a Saver and never used it, so a killed run was lost. Here:
- tf.train.CheckpointManager writes each checkpoint under a temporary name and records it in
  the `checkpoint` file (an atomic rename) only once complete, so a kill -9 at any moment leaves
  the previous checkpoint as the latest; a latest checkpoint damaged afterwards (truncated by a
  full disk or a crash of the machine) is found at start and the run falls back to the one before.
- A checkpoint is never written with non-finite weights, and a write that fails (disk full)
  stops the run with the last good checkpoint in place.
Who may write in the folder (the lock, --force-new, worker folders) is folder.py's.
"""
import json
import os
import re
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from dcgan_mnist.cli import Stopped, UserError
from dcgan_mnist.config import RUN_FILE, Config
from dcgan_mnist.files import atomic_write, write_json_atomic
from dcgan_mnist.model import Generator

# The generator shipped with the package: the averaged generator of one default-length run on the shipped
# digits (scripts/make_pretrained.py), in float16: half float32's size, each weight within 2^-11 of itself.
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
PRETRAINED_WEIGHTS = "generator.npz"
PRETRAINED_RECORD = "generator.json"
GEN_NAMES = ("gen_W1", "gen_W2", "gen_W3", "gen_W4")

# ---------------------------------------------------------------- the run's record and checkpoint

def write_run(cfg, fingerprint):
    record = json.loads(cfg.to_json())
    # Absolute data paths: generate, evaluate and export read the record from any folder.
    for name in ("data_dir", "train_images", "train_labels", "image_folder"):
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
        raise UserError(f"{path}: unreadable run record ({e})") from None


def make_checkpoint(model, d_optimizer=None, g_optimizer=None, noise_rng=None, averaged=None):
    """Everything that decides the rest of a run: weights (model/gen_W1 ..), both Adams, the noise
    generator's state, the iteration and the averaged generator (ema/gen_W1 ..). The shuffle is a
    function of (seed, epoch), so it needs no state. Version 0.1.0 also wrote the epoch, which no
    one read: its checkpoints still restore (an entry nothing asks for is ignored)."""
    parts = dict(model=model, iteration=tf.Variable(0, dtype=tf.int64))
    if d_optimizer is not None:
        parts.update(d_optimizer=d_optimizer, g_optimizer=g_optimizer, noise_rng=noise_rng)
    if averaged is not None:
        parts.update(ema=averaged)
    return tf.train.Checkpoint(**parts)


def has_average(path):
    """True when checkpoint `path` holds an averaged generator (a run with --ema-decay above 0)."""
    return any(name.startswith("ema/") for name, _ in tf.train.list_variables(path))


class Source(NamedTuple):
    """What generate, evaluate and export draw from: a model.Generator and the run that made it."""
    generator: Generator
    cfg: Config
    fingerprint: Optional[str]  # of the run's training split (data.fingerprint), as run.json records it
    path: str                   # the checkpoint, or the pretrained generator's weights file
    drawn: str                  # "average" or "trained"

    def describe(self):
        return f"{self.path} ({describe(self.drawn)})"


def load_generator(args):
    """The generator a command's flags name: --pretrained, or the latest checkpoint of --checkpoint-dir
    (or --checkpoint), its averaged generator unless --weights trained."""
    if args.pretrained:
        if args.checkpoint_dir is not None or args.checkpoint is not None:
            flag = "--checkpoint-dir" if args.checkpoint_dir is not None else "--checkpoint"
            raise UserError(f"--pretrained and {flag} exclude each other: draw from the shipped generator "
                            f"or from a run's checkpoint, not both")
        if args.weights == "trained":
            raise UserError("--weights trained: the pretrained generator is an averaged generator only")
        return load_pretrained(PRETRAINED_DIR)
    return restore_generator(args.checkpoint_dir or Config.checkpoint_dir, args.checkpoint, args.weights)


def restore_generator(checkpoint_dir, checkpoint=None, weights=None):
    """The generator a run left, as a Source: the latest checkpoint of checkpoint_dir (or `checkpoint`),
    its averaged generator when it has one, else (or with weights "trained") the trained weights."""
    cfg, fingerprint = read_run(checkpoint_dir)
    path = checkpoint or tf.train.latest_checkpoint(checkpoint_dir)
    if cfg is None or path is None:
        raise UserError(f"no checkpoint in {checkpoint_dir}: train first (python -m dcgan_mnist.train "
                        f"--checkpoint-dir {checkpoint_dir}), pass --checkpoint-dir of a run, or draw from "
                        f"the shipped generator with --pretrained")
    generator = Generator(**cfg.generator_kwargs())
    try:
        average = has_average(path)
        if weights == "average" and not average:
            raise UserError(f"{path}: holds no averaged generator (trained with --ema-decay 0); "
                            f"use --weights trained")
        drawn = "average" if average and weights != "trained" else "trained"
        # The same four names under ema/ or under model/, beside the discriminator's, which stay unread.
        tf.train.Checkpoint(**{"ema" if drawn == "average" else "model": generator}).restore(path).expect_partial()
    except (tf.errors.OpError, ValueError, IndexError) as e:  # IndexError: a truncated file's reader
        raise UserError(f"{path}: cannot restore checkpoint ({e.__class__.__name__})") from None
    return Source(generator, cfg, fingerprint, path, drawn)


# ---------------------------------------------------------------- the pretrained generator

def write_pretrained(source, folder=PRETRAINED_DIR, **about):
    """source's generator as the shipped pretrained one: its four weights in float16 (generator.npz)
    and its record (generator.json: the run's settings, its data's fingerprint, and `about`)."""
    def portable(path):
        # The record ships to other machines: an absolute path of this one (run.json's data paths
        # are absolute) is kept relative to the working folder, or outside it as its file name.
        if not (isinstance(path, str) and os.path.isabs(path)):
            return path
        relative = os.path.relpath(path)
        return os.path.basename(path) if relative.split(os.sep)[0] == os.pardir else relative

    os.makedirs(folder, exist_ok=True)
    with atomic_write(os.path.join(folder, PRETRAINED_WEIGHTS)) as f:
        np.savez(f, **{name: v.numpy().astype(np.float16) for name, v in zip(GEN_NAMES, source.generator.gen_vars)})
    about = {k: " ".join(map(portable, v.split(" "))) if isinstance(v, str) else v for k, v in about.items()}
    config = {name: portable(value) for name, value in json.loads(source.cfg.to_json()).items()}
    record = dict(about, config=config, data_fingerprint=source.fingerprint,
                  made_from=f"{portable(source.path)} ({describe(source.drawn)})")
    write_json_atomic(record, os.path.join(folder, PRETRAINED_RECORD))


def load_pretrained(folder=PRETRAINED_DIR):
    """The shipped generator (write_pretrained's files) as a Source."""
    weights, record = os.path.join(folder, PRETRAINED_WEIGHTS), os.path.join(folder, PRETRAINED_RECORD)
    try:
        with open(record) as f:
            about = json.load(f)
        cfg = Config.from_json(json.dumps(about["config"]))
        with np.load(weights, allow_pickle=False) as arrays:
            values = [arrays[name].astype(np.float32) for name in GEN_NAMES]
        generator = Generator(**cfg.generator_kwargs(),
                              weights=[tf.Variable(v, name=name) for v, name in zip(values, GEN_NAMES)])
    except FileNotFoundError as e:
        raise UserError(f"{e.filename}: missing; the pretrained generator is not installed (reinstall "
                        f"dcgan-mnist, or remake it: python scripts/make_pretrained.py)") from None
    except Exception as e:  # a damaged file fails in many ways (zip, json, key, shape)
        raise UserError(f"{folder}: damaged pretrained generator ({type(e).__name__}: {e}); reinstall "
                        f"dcgan-mnist") from None
    return Source(generator, cfg, about["data_fingerprint"], weights, "average")


def describe(drawn):
    return {"average": "averaged generator", "trained": "trained weights"}[drawn]


# ---------------------------------------------------------------- writing and restoring safely

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
        raise UserError(f"{directory}: none of its {len(candidates)} checkpoints can be restored; "
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
            raise Stopped(f"iteration {iteration}: {name} is {float(value)} ({others}); training "
                          f"diverged and stopped without saving; {_last(last_good)}")


def save(manager, ckpt, iteration, last_good):
    """Write checkpoint ckpt-ITERATION, only with finite weights, and return its path. A failed
    write (disk full) stops the run; the previous checkpoint stays the latest."""
    if not all_finite(ckpt):
        raise Stopped(f"iteration {iteration}: the weights are no longer finite; stopped without "
                      f"saving; {_last(last_good)}")
    try:
        return manager.save(checkpoint_number=iteration)
    except (OSError, tf.errors.OpError) as e:
        what = e.message if isinstance(e, tf.errors.OpError) else (e.strerror or str(e))
        raise Stopped(f"cannot write checkpoint {os.path.join(manager.directory, f'ckpt-{iteration}')} "
                      f"({what.splitlines()[0][:200]}); stopped; {_last(last_good)}") from None


def _last(path):
    return f"the last good checkpoint is {path}" if path else "no checkpoint was written yet"
