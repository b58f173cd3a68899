"""The quality table: fixed mode against --upstream-quirks at an equal budget.

    python scripts/quality_run.py --iterations 1500 --work runs/quality-mnist -- --dataset mnist_test

Trains twice with the same seed and data (flags after -- go to dcgan_mnist.train), once in the
default mode and once with --upstream-quirks, each in its own folder under --work; then evaluates
both with the same classifier and held-out images and prints the table side by side (and writes it
to WORK/quality.json). A run already trained to --iterations in its folder is only evaluated.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dcgan_mnist.config import Config  # noqa: E402

MODES = (("fixed (default)", "fixed", []), ("--upstream-quirks", "quirks", ["--upstream-quirks"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=1500, help="training budget of each run (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of both runs (default: %(default)s)")
    p.add_argument("--work", default="quality_runs", help="folder for the two runs (default: %(default)s)")
    p.add_argument("--n-per-label", type=int, default=Config.eval_n_per_label,
                   help="generated images per label (default: %(default)s)")
    p.add_argument("train_flags", nargs="*", help="flags for dcgan_mnist.train after --, e.g. the data")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT)
    jobs = []
    for _, name, flags in MODES:  # both at once: the same budget, side by side on the same machine
        folder = os.path.join(args.work, name)
        cmd = [sys.executable, "-m", "dcgan_mnist.train", "--max-iterations", str(args.iterations),
               "--seed", str(args.seed), "--log-every", "100", "--checkpoint-dir", os.path.join(folder, "checkpoints"),
               "--vis-dir", os.path.join(folder, "vis")] + flags + args.train_flags
        print(f"training {name}: {' '.join(cmd[1:])} (log: {folder}/train.log)", flush=True)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "train.log"), "a") as log:
            jobs.append((name, folder, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)))
    start = time.perf_counter()
    for name, folder, job in jobs:
        if job.wait() != 0:
            sys.exit(f"training {name} failed (exit {job.returncode}); see {folder}/train.log")
    print(f"trained in {time.perf_counter() - start:.0f} s", flush=True)

    from dcgan_mnist.checkpoint import restore_generator
    from dcgan_mnist.evaluate import Evaluator, run_data
    from dcgan_mnist.report import table

    results, evaluator = {}, None
    for title, name, _ in MODES:
        folder = os.path.join(args.work, name, "checkpoints")
        # The checkpoint at the budget itself, even if the folder holds a longer run.
        run = restore_generator(folder, os.path.join(folder, f"ckpt-{args.iterations}"), "trained")
        if evaluator is None:  # both runs share data, split and seed: one classifier, one reference
            evaluator = Evaluator(run_data(run.cfg, run.fingerprint), args.n_per_label,
                                  label_names=run.cfg.label_names())
        results[title] = dict(evaluator(run.generator), checkpoint=run.path)
    first = next(iter(results.values()))
    print(f"\n{args.iterations} iterations, seed {args.seed}, data {first['data']}, "
          f"{args.n_per_label} generated images per label")
    print(table([(t, r["generated"]) for t, r in results.items()] + [("held-out real", first["real"])], first))
    with open(os.path.join(args.work, "quality.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
