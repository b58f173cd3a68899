"""Run the trainer with one injected fault: `python tests/fault_runner.py FAULT -- TRAIN FLAGS`,
and the helpers of the tests that run trainers as processes (tiny IDX data, checkpoint contents,
Cluster: several trainers of one multi-worker run).

Test hooks only: users have no flag for these. FAULT is one of
  none                 no fault
  nan_at:N             the batch of iteration N has NaN pixels, so its losses are NaN
  kill_in_save:N       SIGKILL inside the Nth checkpoint write: the files are on disk but the
                       `checkpoint` record is not yet updated (a crash in mid-write)
  enospc_at_save:N     the Nth checkpoint write fails with OSError(ENOSPC), as on a full disk
  stop_at:N            SIGSTOP to itself once iteration N's step is done: frozen at a known
                       iteration (a worker of a multi-worker run holds every other one there)
  sigint_at:N          SIGINT to itself once iteration N's step is done, as Ctrl-C then
"""
import errno
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

# isort: off
from dcgan_mnist import data, monitor, train  # noqa: E402  first: the package silences TensorFlow's import

import numpy as np
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management

from scaffold import SMALL_FLAGS, write_random_pair
# isort: on

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# A run that takes seconds: 80 random 28 x 28 images, the small model, 10 iterations per epoch,
# 40 in all, a checkpoint every 3 iterations (so resumes land mid-epoch) and a grid every 4.
N_IMAGES, TOTAL = 80, 40
TINY = ["--valid-size", "0", *SMALL_FLAGS, "--batch-size", "8",
        "--n-epochs", "4", "--step", "4", "--visualize-dim", "16", "--seed", "1", "--checkpoint-every", "3"]


def tiny_data(folder, n=N_IMAGES, seed=0):
    """Write a small valid image/label IDX pair into folder; return the two paths."""
    flags = write_random_pair(folder, seed, n, images="train-images-idx3-ubyte", labels="train-labels-idx1-ubyte")
    return flags[1], flags[3]


def tiny_flags(data_dir, run_dir, *extra):
    images = os.path.join(data_dir, "train-images-idx3-ubyte")
    labels = os.path.join(data_dir, "train-labels-idx1-ubyte")
    return TINY + ["--train-images", images, "--train-labels", labels,
                   "--checkpoint-dir", os.path.join(run_dir, "ckpt"), "--vis-dir", os.path.join(run_dir, "vis"),
                   *extra]


def command(flags, fault="none"):
    return [sys.executable, os.path.join(HERE, "fault_runner.py"), fault, "--", *flags]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


def start(flags, fault="none"):
    """The trainer as a child process, its stdout readable line by line as it runs."""
    return subprocess.Popen(command(flags, fault), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), cwd=ROOT)


def run(flags, fault="none", timeout=300):
    return subprocess.run(command(flags, fault), capture_output=True, text=True, env=env(), cwd=ROOT,
                          timeout=timeout)


def kill_all(procs):
    """Kill every child still running, a stopped one too (SIGCONT first), and reap it."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.communicate()


def free_ports(n):
    """n free TCP ports on 127.0.0.1, for the workers of a multi-worker run."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    """n processes of one run on 127.0.0.1, each with its own empty temp folder (FOLDER/tmpI, its
    TMPDIR: nothing of the run may stay there) and this checkout on its PYTHONPATH. For n > 1,
    TF_CONFIG names them all and process I is worker I (worker 0, the chief); for n = 1 it is a plain
    run, without any TF_CONFIG of the caller's."""

    def __init__(self, folder, n):
        self.folder, self.procs, self.envs = pathlib.Path(folder), [], []
        ports = free_ports(n)
        for i in range(n):
            tmp = self.folder / f"tmp{i}"
            tmp.mkdir(parents=True, exist_ok=True)
            e = dict(env(), TMPDIR=str(tmp))
            e.pop("TF_CONFIG", None)
            if n > 1:
                e["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                             "task": {"type": "worker", "index": i}})
            self.envs.append(e)

    def start(self, args):
        """Start every process: python ARGS, where args is a list or, to differ by process, a function
        of the process's index. Their stdout and stderr are read as text."""
        self.procs = [subprocess.Popen([sys.executable, *(args(i) if callable(args) else args)], cwd=ROOT, env=e,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for i, e in enumerate(self.envs)]
        return self

    def wait(self, i, timeout):
        """Process i's (exit status, stdout, stderr, seconds waited). Over timeout, every process is
        killed and the test fails."""
        start = time.monotonic()
        try:
            out, err = self.procs[i].communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"process {i} still running after {timeout} s") from None
        return self.procs[i].returncode, out, err, time.monotonic() - start

    def kill(self):
        kill_all(self.procs)

    def temp_folders_left(self):
        # Folders only: a killed process also leaves autograph's generated .py files there.
        return [path.name for i in range(len(self.envs)) for path in (self.folder / f"tmp{i}").iterdir()
                if path.is_dir()]


def wait_stopped(proc, timeout):
    """Wait until the child is stopped (SIGSTOP, Linux's /proc/PID/stat state T); fail if it ends or
    takes over timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process {proc.pid} ended ({proc.returncode}) before it stopped: "
                                 f"{proc.stderr.read()[-2000:]}")
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "T":
                return
        time.sleep(0.05)
    raise AssertionError(f"process {proc.pid} not stopped after {timeout} s")


def wait_for_line(proc, prefix):
    """Read the child's stdout up to the first line starting with prefix; return all lines read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"the run ended before printing {prefix!r}: {''.join(lines[-8:])}{proc.stderr.read()}")


def state(checkpoint_dir, path=None):
    """Every value the latest checkpoint holds (weights, Adam slots and counters, the noise
    generator's state, iteration, epoch), by name; save_counter aside (it counts saves)."""
    reader = tf.train.load_checkpoint(path or tf.train.latest_checkpoint(checkpoint_dir))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith(("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"))}


def assert_same_state(a, b):
    assert sorted(a) == sorted(b)
    differ = [name for name in a if not np.array_equal(a[name], b[name])]
    assert not differ, f"{len(differ)} of {len(a)} values differ, e.g. {differ[:3]}"


# A multi-worker run's weights equal one device's to float32 summation order: measured differences
# ~1e-6 after 16 iterations, ~2e-3 if batch norm used per-replica statistics instead of the global batch's.
WEIGHTS_ATOL = 2e-5


def checkpoint_weights(path, prefix="model"):
    """The generator's weights in a checkpoint (and the discriminator's, for prefix "model"; "ema": the
    averaged generator's), by upstream's names."""
    reader = tf.train.load_checkpoint(path)
    names = ["gen_W1", "gen_W2", "gen_W3", "gen_W4"]
    if prefix == "model":
        names += ["discrim_W1", "discrim_W2", "discrim_W3", "discrim_W4"]
    return {n: reader.get_tensor(f"{prefix}/{n}/.ATTRIBUTES/VARIABLE_VALUE") for n in names}


def assert_close_weights(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=WEIGHTS_ATOL, err_msg=name)


def grids(vis_dir):
    return {name: open(os.path.join(vis_dir, name), "rb").read() for name in sorted(os.listdir(vis_dir))
            if name.startswith("sample_")}


def _nth_call(n, action, original):
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            action()
        return original(*args, **kwargs)
    return wrapper


def inject(fault, setattr=setattr):
    """Patch the fault in; tests running in-process pass pytest's monkeypatch.setattr."""
    kind, _, arg = fault.partition(":")
    if kind == "none":
        return
    n = int(arg)
    if kind == "nan_at":
        original = data.training_batches

        def poisoned(images, labels, batch_size, seed, epoch, skip=0):
            first = epoch * (len(images) // batch_size) + skip  # global iteration of the first batch
            ds = original(images, labels, batch_size, seed, epoch, skip)
            return ds.enumerate().map(
                lambda i, b: (tf.where(first + i == n, b[0] * np.nan, b[0]), b[1]))
        setattr(data, "training_batches", poisoned)
    elif kind == "kill_in_save":
        # CheckpointManager.save writes the files, then the `checkpoint` record twice (before and
        # after deleting old checkpoints): the (2n-1)th record is the nth save's first.
        setattr(checkpoint_management, "update_checkpoint_state_internal", _nth_call(
            2 * n - 1, lambda: os.kill(os.getpid(), signal.SIGKILL),
            checkpoint_management.update_checkpoint_state_internal))
    elif kind in ("stop_at", "sigint_at"):
        sent = signal.SIGSTOP if kind == "stop_at" else signal.SIGINT
        original = monitor.Monitor.iteration  # called after each iteration's step, on every worker

        def signalling(self, iteration, *args):
            if iteration == n:
                os.kill(os.getpid(), sent)
            return original(self, iteration, *args)
        setattr(monitor.Monitor, "iteration", signalling)
    elif kind == "enospc_at_save":
        def full():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        setattr(tf.train.CheckpointManager, "save", _nth_call(n, full, tf.train.CheckpointManager.save))
    else:
        raise SystemExit(f"unknown fault {fault}")


if __name__ == "__main__":
    fault, sep, *flags = sys.argv[1:]
    assert sep == "--"
    inject(fault)
    sys.exit(train.main(flags))
