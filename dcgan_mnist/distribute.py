"""Training on several devices or hosts with tf.distribute, with single-device semantics.

Upstream trained on one device. Here --strategy picks tf.distribute.MirroredStrategy (the GPUs
of one host) or MultiWorkerMirroredStrategy (several hosts, described by TF_CONFIG as TensorFlow
documents). What stays as on one device, so a run is the same whatever it runs on:
  - the batch is global (--batch-size images per iteration); each replica takes its slice;
  - the noise Z is drawn once per iteration for the global batch, from the checkpointed
    generator, and sliced the same way, so replica r sees rows r*B/n .. (r+1)*B/n - 1;
  - batch-norm statistics are those of the global batch (model.global_moments);
  - each replica's cost is its share of the global mean and Keras sums the replicas' gradients.
Only summation order differs from one device, hence float32 rounding, nothing more.
"""
import atexit
import json
import os
import re
import sys
import threading

import tensorflow as tf

from dcgan_mnist import folder
from dcgan_mnist.config import RUN_FILE, ConfigError


def make_strategy(cfg):
    """The tf.distribute strategy for --strategy, or the default (one-device) strategy.
    Call before any other TensorFlow op: MultiWorkerMirroredStrategy must set up the runtime."""
    kind = cfg.strategy
    tf_config = os.environ.get("TF_CONFIG")
    if kind == "auto":
        if tf_config:
            kind = "multiworker"
        else:
            kind = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one"
    if kind == "one":
        return tf.distribute.get_strategy()
    if kind == "multiworker":
        check_tf_config(tf_config)
        if cfg.seed is None and not os.path.isfile(os.path.join(cfg.checkpoint_dir, RUN_FILE)):
            raise ConfigError("--seed is missing: every worker of a multi-worker run must draw the same "
                              "weights and noise; pass the same --seed to all of them")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        # Every local GPU; without GPUs every logical CPU device (one unless configured otherwise,
        # as the tests do with tf.config.set_logical_device_configuration).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    check_split(cfg.batch_size, strategy.num_replicas_in_sync)
    return strategy


def check_split(batch_size, replicas):
    if batch_size % replicas:
        raise ConfigError(f"--batch-size {batch_size}: does not split evenly over the {replicas} replicas; "
                          f"pass a multiple of {replicas}")


def check_tf_config(text):
    if not text:
        raise ConfigError("--strategy multiworker: TF_CONFIG is not set; give each worker "
                          "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:port\", ...]}, "
                          "\"task\": {\"type\": \"worker\", \"index\": I}}'")
    try:
        spec = json.loads(text)
        workers = spec["cluster"]["worker"]
        task = spec["task"]
        assert isinstance(workers, list) and task["type"] in spec["cluster"]
        assert 0 <= int(task["index"]) < len(spec["cluster"][task["type"]])
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ConfigError("TF_CONFIG: not a valid cluster description: expected {\"cluster\": {\"worker\": "
                          "[\"host:port\", ...]}, \"task\": {\"type\": \"worker\", \"index\": I}} with I "
                          "a position in the list") from None


def is_chief(strategy):
    """True for the one process that writes logs, grids, checkpoints and summaries: the only
    process of a one-host run, else TF_CONFIG's chief, or worker 0 when there is no chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    if resolver.task_type == "chief":
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())


def worker_checkpoint_manager(checkpoint, checkpoint_dir, task_id):
    """Other workers save too, as TensorFlow's multi-worker recipe asks (saving may need every
    worker), into their own folder under the run's (folder.worker_folder): emptied now, removed
    when the process exits. They restore from the chief's --checkpoint-dir."""
    own = folder.worker_folder(checkpoint_dir, task_id)
    folder.remove_worker_folder(own)
    atexit.register(folder.remove_worker_folder, own)
    return tf.train.CheckpointManager(checkpoint, own, max_to_keep=1)


# ---------------------------------------------------------------- a lost or stopped worker

# What TensorFlow raises on every other worker when one is killed (the next collective fails to
# connect) or frozen (the coordination service misses its heartbeats for 10 s and aborts every
# collective).
LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                      tf.errors.CancelledError)


REASONS = (("stopped sending heartbeats", "it stopped sending heartbeats (killed, frozen or cut off)"),
           ("Connection refused", "connection refused (the process is gone)"),
           ("Connection reset", "connection reset (the process is gone)"),
           ("CoordinationService/Heartbeat", "no answer to heartbeats (frozen or cut off)"))


def lost_worker(error):
    """Which worker a LOST_WORKER_ERRORS error of a multi-worker run lost, and TensorFlow's reason,
    in words ("worker 1 (127.0.0.1:2223): connection refused (the process is gone)"); None for any other error."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster")
    if not cluster or not isinstance(error, LOST_WORKER_ERRORS):
        return None
    message = error.message
    reason = next((words for key, words in REASONS if key in message), None)
    if reason is None:  # TensorFlow's own words, shortened
        reason = (message.partition("aborted by: ")[2] or message).strip().split("\n")[0][:120] or type(error).__name__
    # The lost task is named in the list of unhealthy tasks or as the unreachable remote target;
    # a missed heartbeat to the coordination service means its host: the chief, else worker 0.
    task = re.search(r"/job:(\w+)/replica:\d+/task:(\d+)", message)
    if task:
        job, index = task.group(1), int(task.group(2))
    elif "CoordinationService" in message:
        job, index = ("chief" if "chief" in cluster else "worker"), 0
    else:
        return f"a worker: {reason}"
    try:
        address = f" ({cluster[job][index]})"
    except (KeyError, IndexError, TypeError):
        address = ""
    return f"{job} {index}{address}: {reason}"


class StopTogether:
    """Where the loop stops after a SIGTERM or SIGINT to one process (train.StopSignals): on one
    process, after the iteration the signal arrived in; in a multi-worker run, every worker after
    the same iteration, whichever worker had the signal, so that the chief's checkpoint is the
    whole run's. tf.distribute.experimental.PreemptionCheckpointHandler agrees on that iteration
    through TensorFlow's coordination service (no collective per iteration): it polls
    StopSignals, and the signalled worker posts the next iteration for every worker to stop
    after. The loop then saves as after any stop, so checkpoints keep their ckpt-ITERATION names
    and checks (checkpoint.save)."""

    def __init__(self, strategy, signals, manager):
        self.signals, self.reason, self._handler = signals, None, None
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            config = tf.distribute.experimental.TerminationConfig(
                termination_watcher_fn=lambda: signals.received is not None,
                exit_fn=self._agreed,  # instead of exiting the process: the loop ends
                save_fn=lambda: None)  # the loop saves, as after any stop
            # It restores manager's latest checkpoint once more (train restored it already: the same values).
            self._handler = tf.distribute.experimental.PreemptionCheckpointHandler(
                strategy.cluster_resolver, manager, termination_config=config)
            threading.excepthook = _quiet_lost_worker

    def _agreed(self):
        self.reason = self.signals.received or "a stop signal to another worker"

    def __call__(self):
        """Call after every iteration, on every worker: the reason to stop here, or None."""
        if self._handler is None:
            self.reason = self.signals.received
        else:
            self._handler.save_checkpoint_if_preempted()
        return self.reason


def quiet_worker(strategy):
    """Workers other than the chief print one line, then nothing on stdout: the chief's log is the log."""
    r = strategy.cluster_resolver
    print(f"{r.task_type} {r.task_id}: training; the chief writes the log, grids, checkpoints and summaries")
    sys.stdout.flush()
    sys.stdout = open(os.devnull, "w")


def step_function(strategy, step, noise, jit_compile=False):
    """A compiled training step on the global batch (images [B, ...], labels [B]).

    step(images, labels, Z) is step.py's train_step; noise(images) draws the global Z. On one
    device this is tf.function(step(images, labels, noise(images))), exactly as before; on
    several, each replica runs step on its slice and the printed figures are the replicas' means
    (equal slices, so the means of the global batch)."""
    if not isinstance(strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)):
        return tf.function(lambda images, labels: step(images, labels, noise(images)), jit_compile=jit_compile)
    n = strategy.num_replicas_in_sync

    def replica_step(images, labels, Z):
        r = tf.distribute.get_replica_context().replica_id_in_sync_group
        share = tf.shape(images)[0] // n
        part = slice(r * share, (r + 1) * share)
        return step(images[part], labels[part], Z[part])

    @tf.function
    def distributed_step(images, labels):
        per_replica = strategy.run(replica_step, args=(images, labels, noise(images)))
        return tuple(strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for v in per_replica)

    return distributed_step


def _quiet_lost_worker(args):
    # PreemptionCheckpointHandler's watcher thread waits on the coordination service, which a lost
    # chief takes with it; the main thread says so in one line (train.train_command), without a traceback.
    if not isinstance(args.exc_value, LOST_WORKER_ERRORS):
        threading.__excepthook__(args)
