"""The evaluator's classifier on held-out real images: accuracy and training time per data and seed.

    python scripts/classifier_accuracy.py [--data mnist fashion] [--seeds 0 1 2] [--split-seed 1]

mnist: the 10,000 MNIST test digits of --mnist-dir as a run with --train-images/--train-labels and
--valid-size 2000 sees them (8,000 trained, 2,000 held out); fashion: Fashion-MNIST in --fashion-dir
with the default --valid-size 10000 (50,000 trained; held out: the 10,000 validation and the 10,000
test images). The split is the run's (evaluate.run_data, with --split-seed as the run's seed); each
classifier is trained afresh with dcgan_mnist.evaluate.train_classifier (nothing is cached) for
classifier_steps(N) steps unless --steps is given. Prints one row per (data, seed) as it goes, then
the mean and range of each data set, and writes the rows to --out when given.
"""
import argparse
import datetime
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dcgan_mnist import evaluate  # noqa: E402
from dcgan_mnist.config import Config  # noqa: E402

MNIST_DIR = os.path.join(ROOT, "..", "shared", "data", "mnist")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def data_config(name, args):
    if name == "mnist":
        return Config(train_images=os.path.join(args.mnist_dir, "t10k-images-idx3-ubyte.gz"),
                      train_labels=os.path.join(args.mnist_dir, "t10k-labels-idx1-ubyte.gz"),
                      valid_size=2000, seed=args.split_seed)
    return Config(dataset="fashion_mnist", data_dir=args.fashion_dir, seed=args.split_seed)


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            words = set(re.findall(r"\w+", f.read()))
    except OSError:
        return "unknown"
    return " ".join(flag for flag in CPU_FLAGS if flag in words) or "none of " + ", ".join(CPU_FLAGS)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", choices=("mnist", "fashion"), default=["mnist", "fashion"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="classifier seeds (default: 0 1 2)")
    p.add_argument("--split-seed", type=int, default=1, help="the run's seed, which makes the split (default: 1)")
    p.add_argument("--steps", type=int, help="Adam steps (default: evaluate.classifier_steps of the data's size)")
    p.add_argument("--mnist-dir", default=MNIST_DIR, help="holds t10k-images/labels-idx[13]-ubyte.gz")
    p.add_argument("--fashion-dir", default=FASHION_DIR, help="holds Fashion-MNIST's four IDX files")
    p.add_argument("--out", help="also write the rows to this JSON file")
    args = p.parse_args()

    print(f"{datetime.date.today()}, classifier version {evaluate.CLASSIFIER_VERSION}, {os.cpu_count()} cores, "
          f"CPU flags: {cpu_flags()}", flush=True)
    print(f"{'data':8} {'trained':>7} {'held out':>8} {'seed':>4} {'steps':>5} {'accuracy':>8} {'seconds':>7} "
          f"{'CPU s':>6}", flush=True)
    rows = []
    for name in args.data:
        trX, trY, heldX, heldY, _ = evaluate.run_data(data_config(name, args))
        steps = evaluate.classifier_steps(len(trX)) if args.steps is None else args.steps
        for seed in args.seeds:
            wall, cpu = time.perf_counter(), time.process_time()
            classifier = evaluate.train_classifier(trX, trY, seed, steps)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            _, probs = evaluate.features_and_probs(classifier, heldX)
            row = dict(data=name, trained=len(trX), held_out=len(heldX), seed=seed, steps=steps,
                       accuracy=evaluate.label_agreement(probs, heldY), seconds=round(wall, 1), cpu_seconds=round(cpu))
            rows.append(row)
            print(f"{name:8} {row['trained']:7} {row['held_out']:8} {seed:4} {steps:5} {row['accuracy']:8.2%} "
                  f"{row['seconds']:7.0f} {row['cpu_seconds']:6.0f}", flush=True)
    for name in args.data:
        acc = [r["accuracy"] for r in rows if r["data"] == name]
        secs = [r["seconds"] for r in rows if r["data"] == name]
        print(f"{name}: accuracy mean {sum(acc) / len(acc):.2%}, range {min(acc):.2%} to {max(acc):.2%} over "
              f"{len(acc)} seeds; training {min(secs):.0f} to {max(secs):.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
