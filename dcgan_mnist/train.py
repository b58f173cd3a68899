"""Train the conditional DCGAN: `python -m dcgan_mnist.train [flags]`.

Upstream's train.py loop, TF2-native: one global iteration counter, D updated when
iteration % k == 0 and G otherwise, six log lines per iteration, a 14 x 14 grid of fixed
samples every `step` iterations. Added: compiled steps whose printed losses come from the same
forward pass (upstream ran a second one), checkpoints that resume exactly, and flags for all.
"""
import os
import secrets
import shlex
import signal
import sys
import time

import numpy as np
import tensorflow as tf

from dcgan_mnist import data, distribute, rundir
from dcgan_mnist.config import ConfigError, OneLineErrorParser, add_arguments, flag_name, from_args
from dcgan_mnist.data import DataError
from dcgan_mnist.evaluate import TrainingHook
from dcgan_mnist.grid import save_progress_gif, save_visualization
from dcgan_mnist.model import DCGAN
from dcgan_mnist.monitor import Monitor
from dcgan_mnist.rundir import RunError, TrainingStopped
from dcgan_mnist.step import adam_optimizers, make_train_steps, moving_average

# ---------------------------------------------------------------- the loop

def grid_inputs(cfg):
    """The grid's Z and labels: drawn once per run from its seed (upstream: once per process),
    so a resumed run keeps drawing the same digits."""
    rng = np.random.default_rng([cfg.seed, 2])
    Z = rng.uniform(-1, 1, size=(cfg.visualize_dim, cfg.dim_z)).astype(np.float32)
    labels = rng.integers(0, cfg.dim_y, size=cfg.visualize_dim)
    return tf.constant(Z), tf.one_hot(labels, cfg.dim_y)


def print_iteration(it, updating, gen_loss, discrim_loss, p_real, p_gen):
    # Upstream's six lines, word for word, so scripts that read its logs read these.
    print(f"=========== updating {updating} ==========")
    print("iteration:", it)
    print("gen loss:", np.float32(gen_loss))
    print("discrim loss:", np.float32(discrim_loss))
    print("Average P(real)=", np.float32(p_real))
    print("Average P(gen)=", np.float32(p_gen))


def prepare(cfg):
    """Check everything and load the data before anything is written. Returns
    (cfg with its seed resolved, training images, training labels, fingerprint). cfg is validated."""
    # --force-new: the folder's run is moved aside once every check has passed (train()).
    saved, saved_fingerprint = (None, None) if cfg.force_new else rundir.read_run(cfg.checkpoint_dir)
    if saved is not None and cfg.seed is None:
        cfg.seed = saved.seed  # resuming: the run's own seed decides its future
    if saved is not None:
        differ = cfg.run_differences(saved)
        if differ:
            what = ", ".join(f"--{flag_name(n)} {getattr(saved, n)} (now {getattr(cfg, n)})"
                             for n in differ)
            raise RunError(f"{cfg.checkpoint_dir} holds a run with other settings: {what}; use another "
                           f"--checkpoint-dir, the same settings, or --force-new to move it aside")
    dataset = data.load_dataset(cfg)
    if cfg.seed is None:
        cfg.seed = secrets.randbits(31)
    if cfg.valid_size >= len(dataset.train_images):
        raise ConfigError(f"--valid-size {cfg.valid_size} leaves no training images of the "
                          f"{len(dataset.train_images)} in {dataset.source}; pass a smaller --valid-size")
    trX, _, trY, _ = data.mnist_with_valid_set(dataset.train_images, dataset.train_labels, cfg.valid_size, cfg.seed)
    if cfg.batch_size > len(trX):
        raise ConfigError(f"--batch-size {cfg.batch_size} is larger than the {len(trX)} training images "
                          f"({len(dataset.train_images)} in {dataset.source} less --valid-size {cfg.valid_size})")
    fingerprint = data.fingerprint(trX, trY)
    if saved_fingerprint is not None and fingerprint != saved_fingerprint:
        raise RunError(f"{cfg.checkpoint_dir} holds a run trained on other data than {dataset.source}; "
                       f"use another --checkpoint-dir, the run's data, or --force-new to move it aside")
    for flag, folder in (("--checkpoint-dir", cfg.checkpoint_dir), ("--vis-dir", cfg.vis_dir)):
        rundir.probe_writable(folder, flag)
    print(f"data: {len(trX)} training images from {dataset.source} ({cfg.valid_size} held out)")
    return cfg, trX, trY, fingerprint


def train(cfg, argv=(), stop=None):
    """argv: the command line, for the resume hint; stop: a StopSignals (main installs one)."""
    if cfg.gif:
        return make_gif(cfg)
    stop = stop or StopSignals()
    cfg.validate()
    strategy = distribute.make_strategy(cfg)  # first: a multi-worker runtime is set up before any op
    stop.reclaim()
    chief = distribute.is_chief(strategy)
    if not chief:
        distribute.quiet_worker(strategy)
    else:
        rundir.check_free(cfg.checkpoint_dir)  # a folder another trainer holds: refused at once
    cfg, trX, trY, fingerprint = prepare(cfg)
    # One copy of the training set for the whole run: tensors that every epoch's pipeline reads
    # (the numpy arrays go; upstream held float64 copies).
    trX, trY = data.as_tensors(trX, trY)
    print(f"seed: {cfg.seed}")
    if strategy.num_replicas_in_sync > 1:
        print(f"replicas: {strategy.num_replicas_in_sync}, {cfg.batch_size // strategy.num_replicas_in_sync} "
              f"images each per iteration")

    with strategy.scope():  # weights and Adam slots mirrored on every replica
        model = DCGAN(**cfg.model_kwargs(), seed=cfg.seed)
        d_optimizer, g_optimizer = adam_optimizers(cfg.learning_rate, cfg.beta1, model.discrim_vars, model.gen_vars)
        ema = moving_average(cfg.ema_decay, model.gen_vars, g_optimizer) if cfg.ema_decay else None
        averages = rundir.Averages([ema.average(v) for v in model.gen_vars]) if ema else None
    noise_rng = tf.random.Generator.from_seed(cfg.seed).split(1)[0]  # outside the scope: one global Z
    # Sample quality during training, on the chief; made before anything is written (it checks the
    # held-out set).
    hook = None
    if chief and (cfg.eval_every_epoch or cfg.eval_every):
        hook = TrainingHook(cfg, model, rundir.AveragedGenerator(model, averages) if averages else None)
    # Every check has passed: the chief takes the folder before it writes anything there, and
    # holds it as long as this frame lives (the OS releases it when the process ends).
    _held = rundir.hold(cfg.checkpoint_dir) if chief else None
    if cfg.force_new and chief:
        aside = rundir.move_aside(cfg.checkpoint_dir)
        if aside:
            print(f"--force-new: moved the previous run in {cfg.checkpoint_dir} to {aside}")
            _held = rundir.hold(cfg.checkpoint_dir)  # the old lock went aside with the old run
    ckpt = rundir.make_checkpoint(model, d_optimizer, g_optimizer, noise_rng, averages)
    # Other workers of a --force-new run read nothing: the chief may not have moved the old run aside yet.
    manager, restored = None, None
    if chief or not cfg.force_new:
        manager, restored = rundir.restore_latest(ckpt, cfg.checkpoint_dir, cfg.keep_checkpoints)
    if restored:
        print(f"resuming from {restored} at iteration {int(ckpt.iteration)}")
    if not chief:
        manager = distribute.worker_checkpoint_manager(ckpt, cfg.checkpoint_dir, strategy.cluster_resolver.task_id)
    else:
        rundir.clear_worker_folders(cfg.checkpoint_dir)
        os.makedirs(cfg.vis_dir, exist_ok=True)
        rundir.write_run(cfg, fingerprint)
    stopper = distribute.StopTogether(strategy, stop, manager)
    # The step's fast path (dcgan_mnist/step.py) computes model.build_model's function on one
    # device or several; the printed figures come from the same forward pass (upstream ran a
    # second one).
    d_step, g_step, g_step_unprinted = make_train_steps(model, d_optimizer, g_optimizer, noise_rng,
                                                        cfg.precision, strategy, ema=ema)
    grid_Z, grid_Y = grid_inputs(cfg)
    sample = tf.function(model.samples_generator)
    side = int(round(cfg.visualize_dim ** 0.5))

    steps_per_epoch = len(trX) // cfg.batch_size
    total = cfg.n_epochs * steps_per_epoch
    if cfg.max_iterations is not None:
        total = min(total, cfg.max_iterations)
    iteration = int(ckpt.iteration)
    saved_at, last_good = iteration, restored  # the last complete checkpoint, named in every stop message
    monitor = Monitor(cfg, steps_per_epoch, total, print_iteration, enabled=chief)

    def save():
        nonlocal saved_at, last_good
        ckpt.iteration.assign(iteration)
        ckpt.epoch.assign(iteration // steps_per_epoch)
        last_good, saved_at = rundir.save(manager, ckpt, iteration, last_good), iteration

    while iteration < total and not stopper.reason:
        epoch = iteration // steps_per_epoch
        first = iteration
        start = time.perf_counter()
        monitor.epoch_start(epoch, iteration)
        for images, labels in data.training_batches(trX, trY, cfg.batch_size, cfg.seed, epoch,
                                                    skip=iteration % steps_per_epoch):
            if iteration >= total:
                break
            updating_d = iteration % cfg.k == 0
            logged = iteration % cfg.log_every == 0
            # An unprinted G iteration skips D's pass on the real batch, which only the log reads.
            step = d_step if updating_d else g_step if logged else g_step_unprinted
            d_cost, g_cost, p_real, p_gen = step(images, labels)
            monitor.iteration(iteration, "D" if updating_d else "G", d_cost, g_cost, p_real, p_gen)
            if logged:
                # Read only where the log reads the values anyway: no host round-trip in between. A
                # loss that turns non-finite in between is caught here or by save()'s weight check.
                rundir.check_losses(iteration, {"gen loss": g_cost, "discrim loss": d_cost}, last_good)
            if iteration % cfg.step == 0 and chief:
                samples = sample(grid_Z, grid_Y).numpy()
                save_visualization(samples, (side, side),
                                   os.path.join(cfg.vis_dir, "sample_%04d.jpg" % (iteration // cfg.step)),
                                   upstream_quirks=cfg.upstream_quirks)
                monitor.grid(iteration, samples)
            iteration += 1
            if cfg.checkpoint_every and iteration % cfg.checkpoint_every == 0:
                save()
            if hook:
                monitor.scalars(iteration, hook(iteration, iteration / steps_per_epoch))
            if stopper():
                break
        float(d_cost)  # wait for the last step before reading the clock
        seconds = time.perf_counter() - start
        monitor.epoch_end()
        done = iteration - first
        print(f"epoch {epoch + 1}/{cfg.n_epochs}: {done} iterations in {seconds:.1f} s, "
              f"{seconds / max(done, 1):.4f} s/iteration, {done * cfg.batch_size / seconds:.0f} images/s")
        if saved_at != iteration and (iteration % steps_per_epoch == 0 or iteration >= total):
            save()
        if hook:
            monitor.scalars(iteration, hook(iteration, iteration / steps_per_epoch,
                                            epoch_end=iteration % steps_per_epoch == 0))

    if saved_at != iteration or last_good is None:
        save()
    if stopper.reason:
        monitor.close()
        # On stdout even on workers other than the chief (quiet_worker), for whoever stopped this one.
        chiefs = os.path.join(cfg.checkpoint_dir, os.path.basename(last_good))  # a worker's own save is not kept
        print(f"stopped by {stopper.reason} at iteration {iteration} of {total}; checkpoint {chiefs}; "
              f"resume with: {resume_command(argv)}", file=sys.__stdout__)
        return model
    if chief and save_progress_gif(cfg.vis_dir):
        print(f"animation of the grids: {os.path.join(cfg.vis_dir, 'progress.gif')}")
    print(f"done: {iteration} iterations; checkpoint {last_good}; grids in {cfg.vis_dir}/")
    if hook:
        monitor.scalars(iteration, hook.finish(iteration, iteration / steps_per_epoch))
    monitor.close()
    return model


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


def make_gif(cfg):
    """--gif: (re)build vis_dir/progress.gif from the grids already written, train nothing."""
    path = save_progress_gif(cfg.vis_dir)
    if path is None:
        raise ConfigError(f"--vis-dir {cfg.vis_dir}: no sample_NNNN.jpg grids to animate")
    print(f"wrote {path}")
    return None


def main(argv=None):
    parser = OneLineErrorParser(prog="python -m dcgan_mnist.train",
                                description="Train the conditional DCGAN of yihui-he/GAN-MNIST on MNIST.")
    add_arguments(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    cfg = from_args(parser.parse_args(argv))
    sys.stdout.reconfigure(line_buffering=True)
    try:
        with StopSignals() as stop:  # Ctrl-C / SIGTERM: finish the iteration, save, exit 0
            train(cfg, argv, stop)
    except (ConfigError, DataError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingStopped as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except distribute.LOST_WORKER_ERRORS as e:
        lost = distribute.lost_worker(e)
        if lost is None:
            raise
        # The chief's record names only complete checkpoints (rundir), and every worker reads it.
        last = tf.train.latest_checkpoint(cfg.checkpoint_dir)
        print(f"error: lost {lost}; stopped; the last complete checkpoint is {last or 'none (start over)'}; "
              f"to resume, start every worker again with the same command: {resume_command(argv)}", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. a grid that cannot be written: the disk filled up mid-run
        print(f"error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}; stopped (checkpoints "
              f"are written whole, so the latest one in {cfg.checkpoint_dir} is intact)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
