"""Issue 12's "done when", run for real: the faults of shared folders and several workers at the
default model sizes, on the first 1,280 MNIST test digits, two workers on 127.0.0.1.

    python scripts/faults_at_scale.py [--work-dir /tmp/faults_at_scale] [--at 17]

1. a second trainer on a folder in use (one process): its exit status, time and line; the first
   run's final checkpoint against an undisturbed run's, value by value;
2. two workers, 40 iterations (checkpoints every 5), undisturbed: the reference;
3. kill -9 of worker 1 at iteration --at, then SIGSTOP of worker 1, then SIGTERM to worker 1: how
   each worker ends and how long the others take, then both relaunched with the same command;
4. `generate --seed 0` of each relaunched run against the reference (averaged generator and
   --weights trained): the largest pixel difference in /255;
5. what is left in each worker's temp folder (TMPDIR) and under the run folder (workers/).
Each run folder is deleted once measured (a checkpoint is 162 MB), unless --keep.
"""
import argparse
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

# isort: off
import dcgan_mnist  # noqa: E402,F401  first: it silences TensorFlow's start-up
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from conftest import SHARED_MNIST, write_idx  # noqa: E402
# isort: on

TOTAL = 40


def first_digits(folder, n):
    """IDX files of the first n MNIST test digits: the --train-images / --train-labels flags."""
    paths = []
    for kind, offset in (("images-idx3", 16), ("labels-idx1", 8)):
        with gzip.open(SHARED_MNIST / f"t10k-{kind}-ubyte.gz") as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8, offset=offset)
        array = raw.reshape(-1, 28, 28)[:n] if kind.startswith("images") else raw[:n]
        paths.append(str(write_idx(os.path.join(folder, f"first{n}-{kind}-ubyte"), array)))
    return ["--train-images", paths[0], "--train-labels", paths[1]]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Run:
    """One run of the trainer: `workers` processes (1: a plain one-process run)."""

    def __init__(self, work, name, data_flags, workers):
        self.folder = os.path.join(work, name)
        self.ckpt = os.path.join(self.folder, "ckpt")
        self.flags = data_flags + ["--valid-size", "0", "--seed", "1", "--n-epochs", "4", "--checkpoint-every", "5",
                                   "--checkpoint-dir", self.ckpt, "--vis-dir", os.path.join(self.folder, "vis")]
        self.workers, self.procs, self.envs = workers, [], []
        ports = free_ports(workers)
        for i in range(workers):
            env = dict(os.environ, PYTHONPATH=ROOT, TMPDIR=os.path.join(self.folder, f"tmp{i}"))
            os.makedirs(env["TMPDIR"], exist_ok=True)
            env.pop("TF_CONFIG", None)
            if workers > 1:
                env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                               "task": {"type": "worker", "index": i}})
            self.envs.append(env)

    def start(self):
        self.procs = [subprocess.Popen([sys.executable, "-m", "dcgan_mnist.train"] + self.flags, cwd=ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for env in self.envs]
        self.outs = [[] for _ in self.procs]
        return self

    def wait_for(self, prefix):
        """Read the chief's log up to the line that starts with prefix."""
        for line in self.procs[0].stdout:
            self.outs[0].append(line)
            if line.startswith(prefix):
                return
        raise SystemExit(f"{self.folder}: the chief ended before {prefix!r}: {self.procs[0].stderr.read()}")

    def finish(self, i, timeout=3600):
        """(exit status, stdout, stderr, seconds waited) of process i."""
        start = time.monotonic()
        try:
            out, err = self.procs[i].communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.procs[i].kill()
            out, err = self.procs[i].communicate()
        return self.procs[i].returncode, "".join(self.outs[i]) + out, err, time.monotonic() - start

    def run(self):
        self.start()
        results = [self.finish(i) for i in range(self.workers)]
        for status, _, err, _ in results:
            if status != 0:
                raise SystemExit(f"{self.folder}: exit {status}: {err[-2000:]}")
        return results

    def digits(self, weights=None):
        """generate --seed 0's 100 digits (uint8) from the run's latest checkpoint."""
        npz = os.path.join(self.folder, f"digits-{weights or 'default'}.npz")
        cmd = [sys.executable, "-m", "dcgan_mnist.generate", "--checkpoint-dir", self.ckpt, "--seed", "0", "--npz", npz]
        subprocess.run(cmd + (["--weights", weights] if weights else []), cwd=ROOT, check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
        with np.load(npz) as f:
            return f["images"].astype(int)

    def leftovers(self):
        temp = [name for i in range(self.workers) for name in os.listdir(self.envs[i]["TMPDIR"])
                if os.path.isdir(os.path.join(self.envs[i]["TMPDIR"], name))]
        workers = os.path.join(self.ckpt, "workers")
        return temp, sorted(os.listdir(workers)) if os.path.isdir(workers) else None


def state(ckpt):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith(("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"))}


def one_line(err):
    lines = err.splitlines()
    return (f"{len(lines)} stderr line{'s' if len(lines) != 1 else ''}, "
            f"{'a traceback' if 'Traceback' in err else 'no traceback'}: {lines[-1] if lines else ''}")


def compare(name, run, reference):
    for weights in (None, "trained"):
        diff = np.abs(run.digits(weights) - reference[weights]).max()
        print(f"  {name}: generate --seed 0{' --weights trained' if weights else ''} vs the uninterrupted "
              f"2-worker run: max difference {diff}/255")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default="/tmp/faults_at_scale")
    p.add_argument("--n", type=int, default=1280, help="MNIST test digits to train on")
    p.add_argument("--at", type=int, default=17, help="iteration at which each fault is injected")
    p.add_argument("--keep", action="store_true", help="keep the run folders")
    args = p.parse_args()
    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    data = first_digits(args.work_dir, args.n)
    done = []

    def measured(run):
        done.append(run.leftovers())
        if not args.keep:
            shutil.rmtree(run.ckpt)

    # 1. One trainer per folder.
    undisturbed = Run(args.work_dir, "one-undisturbed", data, 1)
    undisturbed.run()
    first = Run(args.work_dir, "one-first", data, 1).start()
    first.wait_for("iteration: 5\n")
    second = Run(args.work_dir, "one-first", data, 1).start()
    status, _, err, seconds = second.finish(0)
    print(f"second trainer on the folder in use: exit {status} after {seconds:.1f} s, {one_line(err)}")
    status, _, err, _ = first.finish(0)
    a, b = state(first.ckpt), state(undisturbed.ckpt)
    differ = [n for n in a if not np.array_equal(a[n], b.get(n))]
    print(f"first run: exit {status}; its final checkpoint against an undisturbed run's: {len(differ)} of "
          f"{len(a)} values differ{' (bit-identical)' if not differ and sorted(a) == sorted(b) else ''}")
    measured(first)
    measured(undisturbed)

    # 2. The reference: two workers, undisturbed.
    reference_run = Run(args.work_dir, "two-undisturbed", data, 2)
    reference_run.run()
    reference = {w: reference_run.digits(w) for w in (None, "trained")}
    measured(reference_run)

    # 3. A fault to worker 1 at iteration --at, then both relaunched.
    for name, sig in (("kill -9", signal.SIGKILL), ("SIGSTOP", signal.SIGSTOP), ("SIGTERM", signal.SIGTERM)):
        run = Run(args.work_dir, f"two-{sig.name}", data, 2).start()
        run.wait_for(f"iteration: {args.at}\n")
        run.procs[1].send_signal(sig)
        status, out, err, seconds = run.finish(0)
        print(f"{name} to worker 1 at iteration {args.at}: the chief exits {status} after {seconds:.1f} s, "
              f"{one_line(err)}")
        if sig == signal.SIGSTOP:
            run.procs[1].send_signal(signal.SIGCONT)
            run.procs[1].kill()  # frozen, it would stay so: ended as its scheduler would
        status1, out1, err1, _ = run.finish(1)
        stopped = [line for line in out1.splitlines() if line.startswith("stopped by")]
        print(f"  worker 1: exit {status1}{', ' + one_line(err1) if err1 else ''}"
              f"{'; ' + stopped[0][:160] if stopped else ''}")
        stopped = [line for line in out.splitlines() if line.startswith("stopped by")]
        if stopped:
            print(f"  chief: {stopped[0][:160]}")
        print(f"  latest checkpoint: {os.path.basename(tf.train.latest_checkpoint(run.ckpt))}; "
              f"left: {run.leftovers()}")
        results = run.run()  # relaunched, both with the same command
        resumed = [line for line in results[0][1].splitlines() if line.startswith("resuming")]
        print(f"  relaunched: exit {results[0][0]}, {results[1][0]}; {resumed[0] if resumed else 'not resumed'}")
        compare(name, run, reference)
        measured(run)

    # 4. What is left behind.
    temp = [name for leftover in done for name in leftover[0]]
    workers = [leftover[1] for leftover in done if leftover[1] is not None]
    print(f"after everything: {len(temp)} folders in the workers' temp folders {temp}; "
          f"workers/ folders left under run folders: {workers or 'none'}")


if __name__ == "__main__":
    main()
