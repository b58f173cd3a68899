"""Do the evaluation's figures move the right way as a GAN trains? An early and a later checkpoint
of the same run, scored by the same evaluator.

    python scripts/checkpoint_progress.py --work runs/progress --iterations 620 --early 62 [-- TRAIN FLAGS]

Trains one run on the 10,000 MNIST test digits (8,000 trained, 2,000 held out; flags after -- go to
dcgan_mnist.train, e.g. smaller --dim-w1/--dim-w2/--dim-w3), keeping every checkpoint, unless WORK
already holds it; then runs `python -m dcgan_mnist.evaluate` (in this process) on ckpt-EARLY and
ckpt-ITERATIONS, both rows and CAS, and prints which figures moved the right way: label agreement,
classifier score, recall and CAS up; the Frechet distance and KID down (KID by more than both
spreads). Exit 1 if any did not. Precision is printed, not judged: a first epoch's images huddle
together, and one real outlier's wide k-NN ball can hold them all (docs/quality.md).
tests/test_evaluate.py runs it (marked slow).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dcgan_mnist import evaluate, train  # noqa: E402

MNIST = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")
DATA = ["--train-images", os.path.join(MNIST, "t10k-images-idx3-ubyte.gz"),
        "--train-labels", os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz"), "--valid-size", "2000"]
UP = ("label_agreement", "classifier_score", "recall", "cas")


def train_run(work, iterations, flags):
    ckpt = os.path.join(work, "ckpt")
    if not os.path.isfile(os.path.join(ckpt, f"ckpt-{iterations}.index")):
        code = train.main(DATA + ["--seed", "1", "--max-iterations", str(iterations), "--log-every", "1000",
                                  "--keep-checkpoints", "1000", "--checkpoint-dir", ckpt,
                                  "--vis-dir", os.path.join(work, "vis")] + flags)
        if code != 0:
            sys.exit(f"training failed (exit {code})")
    return ckpt


def score(ckpt, iteration, n_per_label, cache_dir, out):
    argv = ["--checkpoint-dir", ckpt, "--checkpoint", os.path.join(ckpt, f"ckpt-{iteration}"), "--weights", "trained",
            "--n-per-label", str(n_per_label), "--out", out] + (["--cache-dir", cache_dir] if cache_dir else [])
    if evaluate.main(argv) != 0:
        sys.exit(f"evaluate failed on ckpt-{iteration}")
    with open(out) as f:
        return json.load(f)["generated"]


def moved_the_right_way(early, late):
    """{figure: True if it moved the right way} between two "generated" rows."""
    moved = {name: late[name] > early[name] for name in UP}
    moved["frechet_distance"] = late["frechet_distance"] < early["frechet_distance"]
    moved["kid"] = late["kid"] + late["kid_std"] + early["kid_std"] < early["kid"]
    return moved


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="progress_run", help="folder of the run (default: %(default)s)")
    p.add_argument("--iterations", type=int, default=620, help="the later checkpoint (default: %(default)s)")
    p.add_argument("--early", type=int, default=62, help="the early checkpoint, an epoch's end (default: %(default)s)")
    p.add_argument("--n-per-label", type=int, default=100, help="images per label scored (default: %(default)s)")
    p.add_argument("--cache-dir", help="evaluate's --cache-dir (default: its own)")
    p.add_argument("train_flags", nargs="*", help="flags for dcgan_mnist.train after --")
    args = p.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    ckpt = train_run(args.work, args.iterations, args.train_flags)
    rows = {it: score(ckpt, it, args.n_per_label, args.cache_dir, os.path.join(args.work, f"ckpt-{it}.json"))
            for it in (args.early, args.iterations)}
    early, late = rows[args.early], rows[args.iterations]
    moved = moved_the_right_way(early, late)
    for name, ok in moved.items():
        print(f"{name:<18}{early[name]:>12.4f} -> {late[name]:>10.4f}  {'right way' if ok else 'WRONG WAY'}")
    print(f"{'precision':<18}{early['precision']:>12.4f} -> {late['precision']:>10.4f}  (not judged)")
    return 0 if all(moved.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
