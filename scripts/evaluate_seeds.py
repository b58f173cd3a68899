"""Every figure of a run's last checkpoint over several evaluation seeds, as docs/quality.md gives them:
`python scripts/evaluate_seeds.py --checkpoint-dir runs/mnist/ckpt --seeds 0 1 2 --work runs/mnist/eval`.

For each seed and each of the averaged generator and the trained weights, runs
`python -m dcgan_mnist.evaluate --seed S --weights W --out WORK/W-S.json` (the seed sets the
classifier, the noise, the held-out halves, KID's subsets and CAS's training), keeps the JSON files,
then prints one Markdown table: each figure's mean over the seeds and, after ±, half its range
(max - min) / 2. The real row is the held-out real digits' own figures. With --confusion, the
averaged generator's picture of the first seed is written too.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

FIGURES = ("label_agreement", "classifier_score", "frechet_distance", "kid", "precision", "recall", "cas", "copies")
HEAD = ("agreement", "score", "Frechet", "KID", "precision", "recall", "CAS", "copies")


def evaluate(args, seed, weights):
    out = os.path.join(args.work, f"{weights}-{seed}.json")
    if not os.path.isfile(out):
        cmd = [sys.executable, "-m", "dcgan_mnist.evaluate", "--checkpoint-dir", args.checkpoint_dir,
               "--seed", str(seed), "--weights", weights, "--out", out]
        if args.confusion and weights == "average" and seed == args.seeds[0]:
            cmd += ["--confusion", args.confusion]
        subprocess.run(cmd, check=True)
    with open(out) as f:
        return json.load(f)


def cell(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    digits = 4 if max(abs(v) for v in values) < 10 else 2
    return f"{np.mean(values):.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint-dir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--work", required=True, help="folder for the evaluate --out files (reused when present)")
    p.add_argument("--confusion", help="write the averaged generator's confusion picture (first seed) here")
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    runs = {w: [evaluate(args, s, w) for s in args.seeds] for w in ("average", "trained")}
    rows = [("averaged generator", [r["generated"] for r in runs["average"]]),
            ("trained weights", [r["generated"] for r in runs["trained"]]),
            ("held-out real digits", [r["real"] for r in runs["average"]])]
    print("| | " + " | ".join(HEAD) + " |")
    print("| --- " * (len(HEAD) + 1) + "|")
    for name, results in rows:
        print(f"| {name} | " + " | ".join(cell([r[f] for r in results]) for f in FIGURES) + " |")
    print("\nagreement per requested label (mean over seeds):")
    for name, results in rows:
        per = np.mean([r["per_label_agreement"] for r in results], axis=0)
        print(f"| {name} | " + " | ".join(f"{a:.3f}" for a in per) + " |")
    first = runs["average"][0]
    print(f"\n{first['checkpoint']}; classifier accuracy per seed: "
          + ", ".join(f"{r['classifier']['heldout_accuracy']:.4f}" for r in runs["average"]))


if __name__ == "__main__":
    main()
