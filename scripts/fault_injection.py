"""Kill training runs at random moments and check that resuming loses nothing.

    python scripts/fault_injection.py --runs 5 --kills 4

For each run: one uninterrupted reference run, then the same run killed with SIGKILL (or, with
--signal TERM / INT, stopped by that signal) at random moments, resumed each time, and finished.
A moment is a random iteration (seeded, increasing) plus a random delay of up to 1.5 iterations'
time after it is printed, so kills land anywhere in a step, a grid write or a checkpoint write.
The final checkpoint (weights, Adam state, counters, noise state) and every grid are compared
with the reference's, bit for bit. A checkpoint is written every --checkpoint-every iterations so
that kills also land inside checkpoint writes; the script counts the kills that left a
checkpoint's files without its record, or its temporary folder (killed mid-write).

Data: --train-images/--train-labels, else 80 random 28 x 28 images written to a temporary folder.
Prints one line per kill and a summary table (docs/reliability.md).
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)
import fault_runner as fr  # noqa: E402  (tiny data, checkpoint contents)


def train_command(flags):
    return [sys.executable, "-m", "dcgan_mnist.train", *flags]


def recorded(ckpt_dir):
    latest = fr.tf.train.latest_checkpoint(ckpt_dir)
    return int(latest.rsplit("-", 1)[1]) if latest else -1


def on_disk(ckpt_dir):
    if not os.path.isdir(ckpt_dir):
        return set()
    return {int(m.group(1)) for f in os.listdir(ckpt_dir) for m in [re.match(r"ckpt-(\d+)\.index$", f)] if m}


def one_run(flags, ckpt_dir, kills, sig, rng, total, step_seconds, log):
    """Interrupt the run `kills` times at random moments, then finish it. Returns counts."""
    mid_write = resumed = interrupted = 0
    for k, target in enumerate(sorted(rng.sample(range(1, total - 1), kills))):
        before = on_disk(ckpt_dir)
        proc = subprocess.Popen(train_command(flags), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=fr.env(), cwd=ROOT)
        for line in proc.stdout:
            resumed += line.startswith("resuming from")
            if line == f"iteration: {target}\n":
                break
        time.sleep(rng.uniform(0, 1.5 * step_seconds))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=600)
        last = recorded(ckpt_dir)
        unrecorded = sorted(n for n in on_disk(ckpt_dir) - before if n > last)
        temp = [f for f in os.listdir(ckpt_dir) if "_temp" in f] if os.path.isdir(ckpt_dir) else []
        mid_write += bool(unrecorded or temp)
        # A kill that came after the run had finished interrupted nothing: counted apart.
        interrupted += proc.returncode == -sig if sig == signal.SIGKILL else out.count("stopped by") == 1
        log(f"  {signal.Signals(sig).name} {k + 1} after iteration {target}: exit {proc.returncode}, "
            f"latest checkpoint ckpt-{last}"
            + (f", unrecorded {unrecorded}" if unrecorded else "") + (f", temp {temp}" if temp else "")
            + (f" | {out.strip().splitlines()[-1]}" if sig != signal.SIGKILL and out.strip() else ""))
    done = subprocess.run(train_command(flags), capture_output=True, text=True, env=fr.env(), cwd=ROOT)
    resumed += "resuming from" in done.stdout
    if done.returncode != 0:
        raise SystemExit(f"the final resume failed: {done.stderr}")
    return interrupted, mid_write, resumed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--kills", type=int, default=4, help="interruptions per run")
    p.add_argument("--signal", default="KILL", choices=["KILL", "TERM", "INT"])
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--checkpoint-every", default="1")
    p.add_argument("--train-images")
    p.add_argument("--train-labels")
    p.add_argument("--flags", default="--valid-size 0 --dim-w1 64 --dim-w2 16 --dim-w3 8 --batch-size 8 "
                                      "--n-epochs 6 --step 4 --visualize-dim 16 --log-every 1",
                   help="training flags besides data, seed and folders (default: the tests' tiny run)")
    p.add_argument("--keep", action="store_true", help="keep the runs' folders")
    args = p.parse_args()
    sig = getattr(signal, "SIG" + args.signal)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="fault-injection-")
    if args.train_images:
        data = ["--train-images", args.train_images, "--train-labels", args.train_labels]
    else:
        images, labels = fr.tiny_data(work)
        data = ["--train-images", images, "--train-labels", labels]
    log = lambda s: print(s, flush=True)  # noqa: E731
    rows = []
    for r in range(args.runs):
        common = args.flags.split() + data + ["--seed", str(r), "--checkpoint-every", args.checkpoint_every]
        folders = {name: os.path.join(work, f"run{r}-{name}") for name in ("ref", "hit")}
        start = time.perf_counter()
        ref = subprocess.run(train_command(common + ["--checkpoint-dir", folders["ref"] + "/ckpt",
                                                     "--vis-dir", folders["ref"] + "/vis"]),
                             capture_output=True, text=True, env=fr.env(), cwd=ROOT)
        if ref.returncode != 0:
            raise SystemExit(ref.stderr)
        # An iteration's time, from the reference's last epoch (the first one includes tracing).
        total = int(re.findall(r"done: (\d+) iterations", ref.stdout)[0])
        step_seconds = float(re.findall(r"([\d.]+) s/iteration", ref.stdout)[-1])
        log(f"run {r}: reference {time.perf_counter() - start:.1f} s, {total} iterations, "
            f"{step_seconds:.4f} s each (with checkpoints)")
        flags = common + ["--checkpoint-dir", folders["hit"] + "/ckpt", "--vis-dir", folders["hit"] + "/vis"]
        interrupted, mid_write, resumed = one_run(flags, folders["hit"] + "/ckpt", args.kills, sig, rng, total,
                                                  step_seconds, log)
        a, b = fr.state(folders["hit"] + "/ckpt"), fr.state(folders["ref"] + "/ckpt")
        same_state = sorted(a) == sorted(b) and all(np.array_equal(a[n], b[n]) for n in a)
        same_grids = fr.grids(folders["hit"] + "/vis") == fr.grids(folders["ref"] + "/vis")
        rows.append((r, interrupted, mid_write, resumed, same_state, same_grids))
        log(f"run {r}: {interrupted} of {args.kills} SIG{args.signal} interrupted it, {mid_write} "
            f"mid-checkpoint-write, {resumed} resumes, final state identical: {same_state}, "
            f"grids identical: {same_grids}")
    print(f"\n| runs | SIG{args.signal} sent per run | of them interrupting the run | landing mid-checkpoint-write "
          f"| resumes | identical final state | identical grids |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    n = len(rows)
    print(f"| {n} | {args.kills} | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | "
          f"{sum(r[3] for r in rows)} | {sum(r[4] for r in rows)}/{n} | {sum(r[5] for r in rows)}/{n} |")
    if not args.keep:
        shutil.rmtree(work)
    return 0 if all(r[4] and r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
