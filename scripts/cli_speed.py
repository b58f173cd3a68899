"""Time `python -m dcgan_mnist.train` as a user runs it, against the machine's matmul rates.

    python scripts/cli_speed.py [--rounds 3] [--precisions float32,bf16] [--data-dir DIR] [--also DIR]

Each round runs, for each precision, the training command twice on Fashion-MNIST's 50,000
training images (Debian's dataset-fashion-mnist by default), with --max-iterations 20 and 220,
--log-every 1000 and a fresh checkpoint folder: the difference of the two wall times over 200
iterations is the per-iteration time, start-up, data loading, the first traces and the final
checkpoint cancelled out. Between rounds it measures the float32 and bfloat16 matmul rates on the
step's own big shapes (scripts/benchmark.py's matmul_rates, in a process of its own). It prints
each round's s/iteration and, for the best round, the median round and the fastest long run less
the fastest short run, the effective rate (the FLOPs of an iteration whose
G iterations are unprinted, scripts/benchmark.py --flops) as a share of the best rate measured.
--also DIR times another checkout of this repository in the same rounds (e.g. an earlier commit,
`git worktree add DIR COMMIT`): its dcgan_mnist runs the same commands, in turns with this one's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchmark import FASHION, case_flops, cpu_flags  # noqa: E402

SHORT, LONG = 20, 220


def train_seconds(iterations, precision, data_dir, repo):
    """Wall seconds of one training command, with the dcgan_mnist of checkout `repo`, in a fresh folder."""
    with tempfile.TemporaryDirectory() as work:
        cmd = [sys.executable, "-m", "dcgan_mnist.train", "--dataset", "fashion_mnist", "--data-dir", data_dir,
               "--max-iterations", str(iterations), "--log-every", "1000", "--seed", "1",
               "--precision", precision, "--checkpoint-dir", os.path.join(work, "ckpt"),
               "--vis-dir", os.path.join(work, "vis")]
        t = time.perf_counter()
        env = dict(os.environ, PYTHONPATH=repo)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=repo, env=env)
        return time.perf_counter() - t


def matmul_rates():
    out = subprocess.run([sys.executable, os.path.join(HERE, "benchmark.py"), "--run-case", "matmul"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precisions", default="float32,bf16")
    p.add_argument("--data-dir", default=FASHION)
    p.add_argument("--also", metavar="DIR", help="another checkout to time in the same rounds")
    args = p.parse_args(argv)
    repos = {"this checkout": os.path.dirname(HERE)}
    if args.also:
        repos[args.also] = os.path.abspath(args.also)
    cases = [(d, r) for d in args.precisions.split(",") for r in repos]
    label = lambda d, repo: f"{d} ({repo})" if args.also else d  # noqa: E731
    per_it = {c: [] for c in cases}
    walls = {c: ([], []) for c in cases}  # each case's short and long wall times
    rates = {"float32": 0.0, "bf16": 0.0}
    for r in range(args.rounds):
        for d, repo in cases:
            short = train_seconds(SHORT, d, args.data_dir, repos[repo])
            long = train_seconds(LONG, d, args.data_dir, repos[repo])
            per_it[d, repo].append((long - short) / (LONG - SHORT))
            walls[d, repo][0].append(short)
            walls[d, repo][1].append(long)
        measured = matmul_rates()
        rates = {d: max(rates[d], measured[d]) for d in rates}
        times = ", ".join(f"{label(d, repo)} {per_it[d, repo][-1]:.4f} ({walls[d, repo][0][-1]:.1f} s, "
                          f"{walls[d, repo][1][-1]:.1f} s)" for d, repo in cases)
        print(f"round {r + 1}: s/iteration {times}; matmul float32 {measured['float32']:.0f}, "
              f"bfloat16 {measured['bf16']:.0f} GFLOP/s", flush=True)
    flops = case_flops("thinned")
    print(f"CPU flags: {cpu_flags()}; load average {os.getloadavg()[0]:.2f}; best matmul rates: float32 "
          f"{rates['float32']:.0f}, bfloat16 {rates['bf16']:.0f} GFLOP/s; {flops / 1e9:.2f} GFLOP per iteration")
    # A run that stalls at its end (before data.without_autotune, tf.data's autotuning thread held
    # the last iterator up to a minute: docs/speed.md) makes a round's difference wrong either way.
    # The fastest short and fastest long runs are each unstalled, so their difference is the robust
    # figure; the best round is issue 17's.
    for (d, repo), times in per_it.items():
        shorts, longs = walls[d, repo]
        robust = (min(longs) - min(shorts)) / (LONG - SHORT)
        for name, t in (("best round", min(times)), ("fastest long - fastest short", robust),
                        ("median round", sorted(times)[len(times) // 2])):
            print(f"{label(d, repo)}: {name} {t:.4f} s/iteration; {flops / t / 1e9:.0f} GFLOP/s, "
                  f"{flops / t / 1e9 / rates[d]:.0%} of the {d} matmul rate")
        print(f"{label(d, repo)}: rounds {' '.join(f'{t:.4f}' for t in times)}")


if __name__ == "__main__":
    main()
