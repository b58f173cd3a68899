"""Score generated digits with a classifier that is not the project's evaluator.

    python -m dcgan_mnist.generate --checkpoint-dir RUN --n-per-label 450 --npz average.npz
    python -m dcgan_mnist.generate --checkpoint-dir RUN --n-per-label 450 --npz trained.npz --weights trained
    python scripts/independent_check.py average.npz trained.npz

evaluate.py's classifier is trained on the run's own split; this one has another architecture
(5 x 5 convs, a wider dense layer, no dropout) and is trained on real MNIST test digits that
the check's runs never see: by default digits 4500 to 8999 of MNIST's test set (the runs of
docs/quality.md train on the first 4,500), with digits 9000 to 9999 as the real reference. It
prints label agreement, classifier score and Frechet distance (evaluate.py's formulas, on this
classifier's 256 penultimate features) for each .npz and for the real reference.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# isort: off
import dcgan_mnist  # noqa: E402,F401  (first: quiets TensorFlow's start-up)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
# isort: on

from dcgan_mnist import data  # noqa: E402
from dcgan_mnist.evaluate import (  # noqa: E402
    classifier_score,
    features_and_probs,
    frechet_distance,
    label_agreement,
)

MNIST = os.path.join(os.path.dirname(ROOT), "shared", "data", "mnist")


def classifier(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Rescaling(1 / 255.0),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(256, activation="relu", name="features"),
        layers.Dense(10, name="logits"),
    ])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("npz", nargs="+", help="generate --npz outputs (images uint8 [N, 28, 28], labels [N])")
    p.add_argument("--train", default="4500:9000", help="test-set digits to train on (default: %(default)s)")
    p.add_argument("--reference", default="9000:10000", help="test-set digits as the real reference "
                                                              "(default: %(default)s)")
    p.add_argument("--steps", type=int, default=3000, help="Adam steps of 128 images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    images = data.read_idx(os.path.join(MNIST, "t10k-images-idx3-ubyte.gz"), 3)
    labels = data.read_idx(os.path.join(MNIST, "t10k-labels-idx1-ubyte.gz"), 1).astype(np.int64)
    train, ref = (slice(*map(int, s.split(":"))) for s in (args.train, args.reference))
    model = classifier(args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = data.without_autotune(tf.data.Dataset.from_tensor_slices((images[train][..., None], labels[train]))
                                    .shuffle(10000, seed=args.seed).repeat().batch(128).take(args.steps))
    model.fit(batches, epochs=1, verbose=0)
    ref_feats, ref_probs = features_and_probs(model, images[ref])
    accuracy = label_agreement(ref_probs, labels[ref])
    print(f"independent classifier: {accuracy:.2%} accurate on the {len(ref_feats)} reference digits; "
          f"trained on {train.stop - train.start} other real digits, {args.steps} steps, seed {args.seed}")
    rows = [("real reference", ref_feats, ref_probs, labels[ref])]
    for path in args.npz:
        with np.load(path) as f:
            feats, probs = features_and_probs(model, f["images"])
            rows.append((os.path.basename(path), feats, probs, f["labels"]))
    print(f"{'':<24}{'images':>8}{'label agreement':>17}{'classifier score':>18}{'Frechet distance':>18}")
    for name, feats, probs, y in rows:
        # The real row's distance is between its halves: a real set against another real set.
        other = ref_feats if name != "real reference" else ref_feats[len(ref_feats) // 2:]
        mine = feats if name != "real reference" else feats[:len(feats) // 2]
        print(f"{name:<24}{len(y):>8}{label_agreement(probs, y):>17.4f}{classifier_score(probs):>18.3f}"
              f"{frechet_distance(mine, other):>18.3f}")


if __name__ == "__main__":
    main()
