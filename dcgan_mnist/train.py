"""Train the conditional DCGAN: `python -m dcgan_mnist.train [flags]`.

Upstream's train.py loop, TF2-native: one global iteration counter, D updated when
iteration % k == 0 and G otherwise, six log lines per iteration, a 14 x 14 grid of fixed
samples every `step` iterations. Added: compiled steps whose printed losses come from the same
forward pass (upstream ran a second one), checkpoints that resume exactly, and flags for all.
train() is the loop; the pieces it calls (start, Saver, Grids, measure, finish) set up, save,
draw and measure, each in one place.
"""
import dataclasses
import os
import secrets
import shlex
import signal
import sys
import time
from typing import Optional

import numpy as np
import tensorflow as tf

from dcgan_mnist import checkpoint, data, distribute, folder, imagefolder
from dcgan_mnist.cli import OneLineErrorParser, Stopped, UserError, run
from dcgan_mnist.config import N_LABELS, Config, ConfigError, add_arguments, flag_name, from_args
from dcgan_mnist.grid import save_progress_gif, save_visualization
from dcgan_mnist.hook import TrainingHook
from dcgan_mnist.model import DCGAN, Generator
from dcgan_mnist.monitor import Monitor
from dcgan_mnist.step import TrainSteps, adam_optimizers, bf16_warning, make_train_steps, moving_average

# ---------------------------------------------------------------- the loop


def train(cfg, argv=(), stop=None):
    """argv: the command line, for the resume hint; stop: a StopSignals (main installs one).
    Returns the model (None for --gif)."""
    if cfg.gif:
        return make_gif(cfg)
    r = start(cfg, stop or StopSignals())
    iteration = r.iteration
    while iteration < r.total and not r.stopper.reason:
        epoch, first, clock = iteration // r.steps_per_epoch, iteration, time.perf_counter()
        r.monitor.epoch_start(epoch, iteration)
        for images, labels in data.training_batches(r.images, r.labels, cfg.batch_size, cfg.seed, epoch,
                                                    skip=iteration % r.steps_per_epoch):
            if iteration >= r.total:
                break
            updating_d = iteration % cfg.k == 0
            logged = iteration % cfg.log_every == 0
            if updating_d:
                d_cost, g_cost, p_real, p_gen = r.steps.d_step(images, labels)
            elif logged:
                d_cost, g_cost, p_real, p_gen = r.steps.g_step(images, labels)
            else:  # skips D's pass on the real batch, which only the log reads
                d_cost, g_cost, p_real, p_gen = r.steps.g_step_unprinted(images, labels)
            r.monitor.iteration(iteration, "D" if updating_d else "G", d_cost, g_cost, p_real, p_gen)
            if logged:  # read only where the log reads them anyway: no host round-trip in between
                r.saver.check_losses(iteration, {"gen loss": g_cost, "discrim loss": d_cost})
            if iteration % cfg.step == 0:
                r.grids.write(iteration)
            iteration += 1
            if cfg.checkpoint_every and iteration % cfg.checkpoint_every == 0:
                r.saver.save(iteration)
            measure(r, iteration)
            if r.stopper():
                break
        float(d_cost)  # wait for the last step before reading the clock
        r.monitor.epoch_end(epoch, iteration - first, time.perf_counter() - clock)
        if iteration % r.steps_per_epoch == 0 or iteration >= r.total:
            r.saver.save_unless_saved(iteration)
        measure(r, iteration, epoch_end=iteration % r.steps_per_epoch == 0)
    return finish(r, iteration, argv)


# ---------------------------------------------------------------- what the loop calls

@dataclasses.dataclass
class Run:
    """What start() sets up for the loop."""
    cfg: Config
    images: tf.Tensor  # the training split, uint8 [N, H, W] or [N, H, W, 3], one copy for the whole run
    labels: tf.Tensor
    model: DCGAN
    steps: TrainSteps
    saver: "Saver"
    grids: "Grids"
    monitor: Monitor
    stopper: distribute.StopTogether
    hook: Optional[TrainingHook]
    steps_per_epoch: int
    total: int      # the iteration the run ends at (--n-epochs, --max-iterations)
    iteration: int  # where it starts: 0, or the restored checkpoint's


def start(cfg, stop):
    """Check everything and load the data before anything is written; build the model, its
    optimizers and steps; take the folder and restore its latest checkpoint."""
    cfg.validate()
    strategy = distribute.make_strategy(cfg)  # first: a multi-worker runtime is set up before any op
    stop.reclaim()
    chief = distribute.is_chief(strategy)
    if not chief:
        distribute.quiet_worker(strategy)
    else:
        folder.check_free(cfg.checkpoint_dir)  # a folder another trainer holds: refused at once
    cfg, split, fingerprint = prepare(cfg)
    # The training split as tensors, one copy for every epoch (upstream held float64 copies); the
    # numpy arrays stay only for a hook, which also takes the held-out images.
    images, labels = data.as_tensors(split.train_images, split.train_labels)
    print(f"seed: {cfg.seed}")
    if strategy.num_replicas_in_sync > 1:
        print(f"replicas: {strategy.num_replicas_in_sync}, {cfg.batch_size // strategy.num_replicas_in_sync} "
              f"images each per iteration")
    if chief and cfg.precision == "bf16":
        warning = bf16_warning(cfg)
        if warning:
            print(warning)  # the run goes on, as asked
    model, steps, ckpt, averaged = build(cfg, strategy)
    # Made before anything is written: it checks the held-out set.
    hook = TrainingHook(cfg, model, averaged, split) if chief and (cfg.eval_every_epoch or cfg.eval_every) else None
    saver = Saver.restore(cfg, ckpt, strategy, chief)
    if chief:
        os.makedirs(cfg.vis_dir, exist_ok=True)
        checkpoint.write_run(cfg, fingerprint)
    steps_per_epoch = len(split.train_images) // cfg.batch_size
    total = cfg.n_epochs * steps_per_epoch
    if cfg.max_iterations is not None:
        total = min(total, cfg.max_iterations)
    monitor = Monitor(cfg, steps_per_epoch, total, enabled=chief)
    return Run(cfg, images, labels, model, steps, saver, Grids(cfg, model, monitor, chief), monitor,
               distribute.StopTogether(strategy, stop, saver.manager), hook, steps_per_epoch, total,
               int(ckpt.iteration))


def build(cfg, strategy):
    """(model, TrainSteps, tf.train.Checkpoint of the run, averaged Generator or None): the weights
    from the run's seed, upstream's two Adams, the noise generator and the averaged generator."""
    with strategy.scope():  # weights and Adam slots mirrored on every replica
        model = DCGAN(**cfg.model_kwargs(), seed=cfg.seed)
        d_optimizer, g_optimizer = adam_optimizers(cfg.learning_rate, cfg.beta1, model.discrim_vars, model.gen_vars)
        ema = moving_average(cfg.ema_decay, model.gen_vars, g_optimizer) if cfg.ema_decay else None
        averaged = None if ema is None else Generator(**cfg.generator_kwargs(),
                                                      weights=[ema.average(v) for v in model.gen_vars])
    noise_rng = tf.random.Generator.from_seed(cfg.seed).split(1)[0]  # outside the scope: one global Z
    # The step's fast path (step.py) computes model.build_model's function on one device or several.
    steps = make_train_steps(model, d_optimizer, g_optimizer, noise_rng, cfg.precision, strategy, ema=ema)
    ckpt = checkpoint.make_checkpoint(model, d_optimizer, g_optimizer, noise_rng, averaged)
    return model, steps, ckpt, averaged


def measure(r, iteration, epoch_end=False):
    """Sample quality (--eval-every, --eval-every-epoch), when due, to metrics.jsonl and TensorBoard."""
    if r.hook:
        r.monitor.scalars(iteration, r.hook(iteration, iteration / r.steps_per_epoch, epoch_end=epoch_end))


def finish(r, iteration, argv):
    """The last checkpoint, then either the stop message or the GIF and the closing lines."""
    cfg = r.cfg
    r.saver.save_unless_saved(iteration, always=r.saver.last_good is None)
    if r.stopper.reason:
        r.monitor.close()
        # On stdout even on workers other than the chief (quiet_worker), for whoever stopped this one;
        # named in the chief's folder: a worker's own save is not kept.
        chiefs = os.path.join(cfg.checkpoint_dir, os.path.basename(r.saver.last_good))
        print(f"stopped by {r.stopper.reason} at iteration {iteration} of {r.total}; checkpoint {chiefs}; "
              f"resume with: {resume_command(argv)}", file=sys.__stdout__)
        return r.model
    if r.grids.enabled and save_progress_gif(cfg.vis_dir):
        print(f"animation of the grids: {os.path.join(cfg.vis_dir, 'progress.gif')}")
    print(f"done: {iteration} iterations; checkpoint {r.saver.last_good}; grids in {cfg.vis_dir}/")
    if r.hook:
        r.monitor.scalars(iteration, r.hook.finish(iteration, iteration / r.steps_per_epoch))
    r.monitor.close()
    return r.model


class Saver:
    """The run's checkpoints: where the last complete one is, and writing the next."""

    def __init__(self, ckpt, manager, last_good, held):
        self.ckpt, self.manager = ckpt, manager
        self.last_good = last_good  # named in every stop message
        self.saved_at = int(ckpt.iteration)
        self.held = held  # the chief's open lock files (folder.hold): the folder is the run's while they are

    @classmethod
    def restore(cls, cfg, ckpt, strategy, chief):
        """The chief takes the folder (moving an old run aside for --force-new) and every process
        restores its latest checkpoint; other workers save into their own folder."""
        held = take_folder(cfg) if chief else []
        # Other workers of a --force-new run read nothing: the chief may not have moved the old run aside yet.
        manager, restored = None, None
        if chief or not cfg.force_new:
            manager, restored = checkpoint.restore_latest(ckpt, cfg.checkpoint_dir, cfg.keep_checkpoints)
        if restored:
            print(f"resuming from {restored} at iteration {int(ckpt.iteration)}")
        if not chief:
            manager = distribute.worker_checkpoint_manager(ckpt, cfg.checkpoint_dir, strategy.cluster_resolver.task_id)
        return cls(ckpt, manager, restored, held)

    def save(self, iteration):
        self.ckpt.iteration.assign(iteration)
        self.last_good = checkpoint.save(self.manager, self.ckpt, iteration, self.last_good)
        self.saved_at = iteration

    def save_unless_saved(self, iteration, always=False):
        if always or self.saved_at != iteration:
            self.save(iteration)

    def check_losses(self, iteration, losses):
        checkpoint.check_losses(iteration, losses, self.last_good)


def take_folder(cfg):
    """Every check has passed: the chief takes the folder before it writes anything there. Returns
    the open lock files: the run holds the folder as long as it keeps them (the OS releases the
    lock when they close or the process ends, however it ends)."""
    held = [folder.hold(cfg.checkpoint_dir)]
    if cfg.force_new:
        aside = folder.move_aside(cfg.checkpoint_dir)
        if aside:
            print(f"--force-new: moved the previous run in {cfg.checkpoint_dir} to {aside}")
            held.append(folder.hold(cfg.checkpoint_dir))  # the old lock went aside with the old run
    folder.clear_worker_folders(cfg.checkpoint_dir)
    return held


class Grids:
    """Upstream's sample grids: the same Z and labels every `step` iterations, on the chief."""

    def __init__(self, cfg, model, monitor, enabled):
        self.cfg, self.monitor, self.enabled = cfg, monitor, enabled
        # Drawn once per run from its seed (upstream: once per process), so a resumed run keeps
        # drawing the same digits.
        rng = np.random.default_rng([cfg.seed, 2])
        self.Z = tf.constant(rng.uniform(-1, 1, size=(cfg.visualize_dim, cfg.dim_z)).astype(np.float32))
        self.Y = tf.one_hot(rng.integers(0, model.dim_y, size=cfg.visualize_dim), model.dim_y)
        self.sample = tf.function(model.samples_generator)
        self.side = int(round(cfg.visualize_dim ** 0.5))

    def write(self, iteration):
        if not self.enabled:
            return
        samples = self.sample(self.Z, self.Y).numpy()
        path = os.path.join(self.cfg.vis_dir, "sample_%04d.jpg" % (iteration // self.cfg.step))
        save_visualization(samples, (self.side, self.side), path, upstream_quirks=self.cfg.upstream_quirks)
        self.monitor.grid(iteration, samples)


# ---------------------------------------------------------------- before anything is written

def prepare(cfg):
    """Check everything and load the data before anything is written. Returns (cfg with its seed
    resolved, the data.Split: training split and held-out images, the training split's fingerprint).
    cfg is validated."""
    # --force-new: the folder's run is moved aside once every check has passed (take_folder).
    saved, saved_fingerprint = (None, None) if cfg.force_new else checkpoint.read_run(cfg.checkpoint_dir)
    for name in ("seed", "dataset", "valid_size", "image_size", "dim_channel", "dim_y"):
        if saved is not None and getattr(cfg, name) is None:
            setattr(cfg, name, getattr(saved, name))  # resuming: the run's own, not a default's
    if saved is not None:
        differ = cfg.run_differences(saved)
        if differ:
            what = ", ".join(f"--{flag_name(n)} {getattr(saved, n)} (now {getattr(cfg, n)})"
                             for n in differ)
            raise UserError(f"{cfg.checkpoint_dir} holds a run with other settings: {what}; use another "
                            f"--checkpoint-dir, the same settings, or --force-new to move it aside")
    dataset = data.load_dataset(cfg)
    for line in (dataset.fallback, *dataset.notes):
        if line:
            print(line)
    fit_settings(cfg, dataset)
    if cfg.seed is None:
        cfg.seed = secrets.randbits(31)
    if cfg.valid_size >= len(dataset.train_images):
        raise ConfigError(f"--valid-size {cfg.valid_size} leaves no training images of the "
                          f"{len(dataset.train_images)} in {dataset.source}; pass a smaller --valid-size")
    split = data.split_run(dataset, cfg.valid_size, cfg.seed)
    trX, trY = split.train_images, split.train_labels
    if cfg.batch_size > len(trX):
        raise ConfigError(f"--batch-size {cfg.batch_size} is larger than the {len(trX)} training images "
                          f"({len(dataset.train_images)} in {dataset.source} less --valid-size {cfg.valid_size})")
    fingerprint = data.fingerprint(trX, trY, cfg.class_names)
    if saved_fingerprint is not None and fingerprint != saved_fingerprint:
        raise UserError(f"{cfg.checkpoint_dir} holds a run trained on other data than {dataset.source}; "
                        f"use another --checkpoint-dir, the run's data, or --force-new to move it aside")
    for flag, path in (("--checkpoint-dir", cfg.checkpoint_dir), ("--vis-dir", cfg.vis_dir)):
        folder.probe_writable(path, flag)
    print(f"data: {len(trX)} training images from {dataset.source} ({cfg.valid_size} held out)")
    return cfg, split, fingerprint


def fit_settings(cfg, dataset):
    """What the data decide, into cfg for run.json: the dataset's name, the held-out size, the image
    shape and the classes (where a flag gave one, the data now have it: resized, converted or checked)."""
    cfg.dataset = dataset.name
    cfg.valid_size = cfg.held_out(len(dataset.train_images))
    images = dataset.train_images
    size = images.shape[1:3]
    imagefolder.check_size(*size, dataset.source)
    cfg.image_size, cfg.dim_channel = tuple(size), 1 if images.ndim == 3 else images.shape[3]
    classes = len(dataset.class_names) if dataset.class_names else N_LABELS
    if cfg.dim_y is not None and cfg.dim_y != classes:
        raise ConfigError(f"--dim-y {cfg.dim_y}: {dataset.source} has {classes} classes; leave --dim-y out "
                          f"(it is the number of classes)")
    cfg.dim_y, cfg.class_names = classes, dataset.class_names


def make_gif(cfg):
    """--gif: (re)build vis_dir/progress.gif from the grids already written, train nothing."""
    path = save_progress_gif(cfg.vis_dir)
    if path is None:
        raise ConfigError(f"--vis-dir {cfg.vis_dir}: no sample_NNNN.jpg grids to animate")
    print(f"wrote {path}")
    return None


# ---------------------------------------------------------------- stopping

def resume_command(argv):
    # Without --force-new (or an abbreviation argparse took for it), which would move this run aside.
    return shlex.join(["python", "-m", "dcgan_mnist.train"] +
                      [a for a in argv if not (len(a) > 3 and "--force-new".startswith(a))])


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

    def reclaim(self):
        """Take the signals back (while active and none arrived yet) from TensorFlow's multi-worker
        runtime, whose C++ preemption notifier replaces the SIGTERM handler when it starts and
        would swallow the signal."""
        if self.received is None:
            for s in self._old:
                signal.signal(s, self._handle)

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)
        return False


def train_command(cfg, argv):
    """train() as the command runs it: Ctrl-C / SIGTERM finish the iteration, save and exit 0; a lost
    worker or a failed write stops the run (exit 1) in one line."""
    sys.stdout.reconfigure(line_buffering=True)
    try:
        with StopSignals() as stop:
            train(cfg, argv, stop)
    except distribute.LOST_WORKER_ERRORS as e:
        lost = distribute.lost_worker(e)
        if lost is None:
            raise
        # The chief's record names only complete checkpoints (checkpoint.py), and every worker reads it.
        last = tf.train.latest_checkpoint(cfg.checkpoint_dir)
        raise Stopped(f"lost {lost}; stopped; the last complete checkpoint is {last or 'none (start over)'}; "
                      f"to resume, start every worker again with the same command: {resume_command(argv)}") from None
    except OSError as e:  # e.g. a grid that cannot be written: the disk filled up mid-run
        raise Stopped(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}; stopped (checkpoints "
                      f"are written whole, so the latest one in {cfg.checkpoint_dir} is intact)") from None


def main(argv=None):
    parser = OneLineErrorParser(prog="python -m dcgan_mnist.train",
                                description="Train the conditional DCGAN of yihui-he/GAN-MNIST on MNIST.")
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    return run(parser, argv, lambda args: train_command(from_args(args), argv))


if __name__ == "__main__":
    sys.exit(main())
