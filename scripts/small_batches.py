"""Digits asked for a few at a time, with and without generate's context: read back by the run's evaluator.

    python scripts/small_batches.py --checkpoint-dir RUN [--requests 100]

For the trained and the averaged weights: --requests requests of every label (`generate --labels D
--n-per-label N`, N = 1, 3, 10, a seed each) and --requests of all ten (`--labels 0123456789`,
N = 1, 10), each drawn with and without generate's context (the 500 ordinary draws a request is
drawn among). Prints the share the run's own evaluation classifier (evaluate.py, cached after its
first training) reads as the label asked for, and the share of blank images (no pixel above 127).
Without the context a request is its own batch, normalised by batchnorm with its own statistics.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# isort: off
import dcgan_mnist  # noqa: E402,F401  (first: quiets TensorFlow's start-up)
import numpy as np  # noqa: E402
# isort: on

from dcgan_mnist import checkpoint, evaluate, generate  # noqa: E402
from dcgan_mnist.cli import UserError  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint-dir", required=True, help="a trained run's checkpoint folder")
    p.add_argument("--requests", type=int, default=100, help="requests per label and case (default: %(default)s)")
    args = p.parse_args()
    if args.requests < 1:
        p.error(f"--requests {args.requests}: must be at least 1")
    try:
        trained = checkpoint.restore_generator(args.checkpoint_dir, None, "trained")
    except UserError as e:
        p.error(str(e))
    _, cfg, path, _ = trained
    averaged = checkpoint.restore_generator(args.checkpoint_dir, path, "average")
    classifier = evaluate.Evaluator(cfg, n_per_label=1).classifier
    print(f"{path}, {args.requests} requests per label and case")
    for model, _, _, drawn in (trained, averaged):
        for asked, n in [("one label", 1), ("one label", 3), ("one label", 10), ("0 to 9", 1), ("0 to 9", 10)]:
            if asked == "one label":
                requests = [([label], request * 10 + label) for request in range(args.requests) for label in range(10)]
            else:
                requests = [(list(range(10)), request) for request in range(args.requests)]
            for context in (False, True):
                images, labels = zip(*(generate.generate(model, ask, n, seed, context=context)
                                       for ask, seed in requests))
                images, labels = np.concatenate(images), np.concatenate(labels)
                _, probs = evaluate.features_and_probs(classifier, images)
                blank = np.mean(images.reshape(len(images), -1).max(axis=1) < 128)
                print(f"{drawn:8s} {asked:9s} x {n:2d} per request  context {'yes' if context else 'no ':3s}  "
                      f"images {len(images):5d}  label agreement {evaluate.label_agreement(probs, labels):.4f}  "
                      f"blank {blank:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
