"""Measured sample quality: `python -m dcgan_mnist.evaluate --checkpoint-dir checkpoints`.

Upstream judged its digits by eye in the vis/ grids. This module puts numbers on them with a small
CNN classifier trained here, offline, on the run's own training split (TF-GAN's MNIST metrics do
the same with a classifier they download):
  label agreement    share of generated images the classifier files under the label asked for;
  classifier score   exp(E_x KL(p(y|x) || p(y))), the Inception Score with this classifier (max 10);
  Frechet distance   between the classifier's penultimate features of a set and of held-out real
                     images (FID with this classifier in place of Inception).
The same figures for held-out real images make the reference row of the table.

Held-out real images: the run's validation split (the --valid-size images mnist_with_valid_set
keeps out of training, with the run's seed) and the data's test set when it has one. Neither the
GAN nor the classifier ever trains on them. They are split in two halves: the Frechet reference R
and the real row S, so the real row's distance is between two disjoint real sets.
"""
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from dcgan_mnist import checkpoint, data
from dcgan_mnist.cli import OneLineErrorParser, add_verbose, run
from dcgan_mnist.config import METRICS_FILE, Config, ConfigError, add_checkpoint_arguments, check_sampling_arguments
from dcgan_mnist.data import DataError
from dcgan_mnist.files import write_json_atomic
from dcgan_mnist.generate import generate

# Shared by every run on the same training data: the classifier is keyed by the data's
# fingerprint (data.fingerprint, the same hash run.json records), the seed and this version.
CACHE_DIR = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dcgan_mnist")
CLASSIFIER_VERSION = 2  # bump when the architecture or its training changes: old files are ignored
# Adam steps of CLASSIFIER_BATCH images: CLASSIFIER_EPOCHS passes over the training split, at least
# CLASSIFIER_MIN_STEPS and at most CLASSIFIER_MAX_STEPS (8,000 digits: 2,000 steps; 50,000 images:
# 6,000 steps, 15 epochs). CLASSIFIER_STEPS, when not None, is the number for any size (tests set it tiny).
CLASSIFIER_EPOCHS = 32
CLASSIFIER_MIN_STEPS = 2000
CLASSIFIER_MAX_STEPS = 6000
CLASSIFIER_STEPS = None
CLASSIFIER_BATCH = 128
CLASSIFIER_SHIFT = 1  # training only: each image moved by -SHIFT..SHIFT whole pixels each way
SEED = 0  # evaluate's default --seed, also used by the figures taken during training


# ---------------------------------------------------------------- the classifier

def build_classifier(seed):
    """Two 3x3 convolutions with batchnorm and max pooling, dropout, the 128 features, 10 logits;
    in training a random shift of up to CLASSIFIER_SHIFT pixels comes first (layer "shift")."""
    keras.utils.set_random_seed(seed)
    shift = CLASSIFIER_SHIFT / 28  # a fraction of the size; "nearest" rounds it to whole pixels
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Rescaling(1 / 255.0),
        # Active only when training (fit); an identity in predict and in features_and_probs.
        layers.RandomTranslation(shift, shift, fill_mode="constant", interpolation="nearest", seed=seed,
                                 name="shift"),
        layers.Conv2D(32, 3, use_bias=False),
        layers.BatchNormalization(momentum=0.9),
        layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, use_bias=False),
        layers.BatchNormalization(momentum=0.9),
        layers.ReLU(),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dropout(0.3, seed=seed),
        layers.Dense(128, activation="relu", name="features"),  # the Frechet distance's features
        layers.Dense(10, name="logits"),
    ], name="classifier")


def classifier_steps(n_images):
    """The Adam steps a classifier trains for on n_images: CLASSIFIER_STEPS if set, else by size."""
    if CLASSIFIER_STEPS is not None:
        return CLASSIFIER_STEPS
    by_size = round(CLASSIFIER_EPOCHS * n_images / CLASSIFIER_BATCH)
    return min(CLASSIFIER_MAX_STEPS, max(CLASSIFIER_MIN_STEPS, by_size))


def train_classifier(images, labels, seed, steps=None, batch_size=CLASSIFIER_BATCH):
    """A fresh classifier trained on uint8 images [N, 28, 28] with labels [N]: Adam, its learning
    rate from 1e-3 down to 0 along a cosine over the steps (default: classifier_steps(N))."""
    steps = classifier_steps(len(images)) if steps is None else steps
    model = build_classifier(seed)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = (tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype(np.int32)))
               .shuffle(len(images), seed=seed).repeat().batch(batch_size).take(steps))
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # shuffled above, with the seed
    return model


def classifier_path(fingerprint, seed, cache_dir):
    return os.path.join(cache_dir, f"classifier-v{CLASSIFIER_VERSION}-{fingerprint}-seed{seed}.keras")


def load_or_train_classifier(images, labels, seed, cache_dir=None, retrain=False, steps=None):
    """(classifier, its file, whether it was trained now). Cached by a hash of the training data,
    so the same data reuse it and other data train another."""
    cache_dir = CACHE_DIR if cache_dir is None else cache_dir
    steps = classifier_steps(len(images)) if steps is None else steps

    path = classifier_path(data.fingerprint(images, labels), seed, cache_dir)
    if os.path.isfile(path) and not retrain:
        return keras.models.load_model(path), path, False
    start = time.perf_counter()
    print(f"classifier: training on {len(images)} images ({steps} steps, seed {seed}); cached in {path}")
    model = train_classifier(images, labels, seed, steps)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = os.path.join(cache_dir, f".tmp-{os.getpid()}.keras")  # atomic: no half-written cache file
    model.save(tmp)
    os.replace(tmp, path)
    print(f"classifier: trained in {time.perf_counter() - start:.0f} s")
    return model, path, True


def features_and_probs(classifier, images, batch_size=1000):
    """Penultimate features [N, 128] and p(y|x) [N, 10] of uint8 images [N, 28, 28]."""
    both = keras.Model(classifier.inputs, [classifier.get_layer("features").output, classifier.outputs[0]])
    feats, logits = both.predict(images[..., None], batch_size=batch_size, verbose=0)
    logits = logits.astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return feats.astype(np.float64), probs / probs.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- the three figures

def label_agreement(probs, labels):
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def classifier_score(probs, eps=1e-12):
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the set (TF-GAN's classifier_score)."""
    p_y = probs.mean(axis=0, keepdims=True)
    kl = np.sum(probs * (np.log(probs + eps) - np.log(p_y + eps)), axis=1)
    return float(np.exp(kl.mean()))


def frechet_distance(features_a, features_b):
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of two feature sets [N, D]."""
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    s_a, s_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    # Tr((S_a S_b)^(1/2)) is the sum of square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2),
    # a symmetric matrix, so eigh does it without scipy's sqrtm.
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ s_b @ root_a), 0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * cross)


# ---------------------------------------------------------------- data of a run

def run_data(cfg):
    """(training images, labels, held-out images, labels, source) of a run, by its own settings:
    the split train.prepare makes, plus the data's test set when it has one."""
    dataset = data.load_dataset(cfg)
    trX, vaX, trY, vaY = data.mnist_with_valid_set(dataset.train_images, dataset.train_labels,
                                                   cfg.valid_size, cfg.seed)
    if dataset.test_images is not None:
        vaX = np.concatenate([vaX, dataset.test_images])
        vaY = np.concatenate([vaY, dataset.test_labels])
    return trX, trY, vaX, vaY, dataset.source


class Evaluator:
    """The classifier and the held-out reference of one run, ready to score any generator of it."""

    def __init__(self, cfg, n_per_label=None, seed=SEED, cache_dir=None, retrain=False, steps=None,
                 fingerprint=None):
        self.n_per_label = cfg.eval_n_per_label if n_per_label is None else n_per_label
        self.seed = seed
        trX, trY, heldX, heldY, self.source = run_data(cfg)
        if fingerprint is not None and data.fingerprint(trX, trY) != fingerprint:
            # Other data than the run's: its "held-out" images may be ones the GAN trained on.
            raise DataError(f"{self.source} is not the data the run was trained on (its fingerprint "
                            f"differs from run.json's); evaluate the run on its own data")
        if len(heldX) < 20:
            raise ConfigError(f"only {len(heldX)} held-out real images in {self.source} (--valid-size "
                              f"{cfg.valid_size}): the evaluation needs at least 20; train with a larger --valid-size")
        self.classifier, self.classifier_file, _ = load_or_train_classifier(trX, trY, seed, cache_dir, retrain, steps)
        self.n_train = len(trX)
        feats, probs = features_and_probs(self.classifier, heldX)
        self.accuracy = label_agreement(probs, heldY)
        # R (Frechet reference) and S (the real row): disjoint halves of the held-out images.
        order = np.random.default_rng([seed, 1]).permutation(len(heldX))
        ref, row = order[:len(order) // 2], order[len(order) // 2:]
        self.n_held, self.n_ref = len(heldX), len(ref)
        # Equal sample sizes: the real row and both distances use m images.
        self.m = min(10 * self.n_per_label, len(row))
        row = row[:self.m]
        self.ref_features = feats[ref]
        self.real = self._figures(probs[row], heldY[row], feats[row])

    def _figures(self, probs, labels, feats):
        return dict(label_agreement=label_agreement(probs, labels), classifier_score=classifier_score(probs),
                    frechet_distance=frechet_distance(feats[:self.m], self.ref_features), n=len(labels))

    def __call__(self, model):
        """The figures of a generator (a DCGAN), with the real row and the classifier's accuracy."""
        # Labels shuffled, then 500 at a time: every batch mixes the labels like a training batch
        # does (batchnorm uses the statistics of the batch at sampling time too, as upstream's), so
        # it needs no context draws beside it.
        labels = np.random.default_rng([self.seed, 2]).permutation(np.repeat(np.arange(10), self.n_per_label))
        parts = [generate(model, labels[i:i + 500], 1, [self.seed, 3, i], context=False)
                 for i in range(0, len(labels), 500)]
        images = np.concatenate([p[0] for p in parts])
        feats, probs = features_and_probs(self.classifier, images)
        return dict(generated=self._figures(probs, labels, feats), real=self.real,
                    frechet_n=self.m, frechet_reference_n=self.n_ref,
                    classifier=dict(heldout_accuracy=self.accuracy, heldout_n=self.n_held,
                                    trained_on=self.n_train, file=self.classifier_file),
                    n_per_label=self.n_per_label, seed=self.seed, data=self.source)


class TrainingHook:
    """--eval-every-epoch / --eval-every: created before train.py's loop, called after every
    iteration and at every epoch's end; prints one line per measurement and appends it to
    CHECKPOINT_DIR/metrics.jsonl: the trained weights' figures, and under "average" those of the
    averaged generator when the run keeps one."""

    def __init__(self, cfg, model, averaged=None):
        self.cfg, self.model, self.averaged = cfg, model, averaged
        self.evaluator = Evaluator(cfg)
        e = self.evaluator
        print(f"quality: classifier {e.accuracy:.2%} accurate on {e.n_held} held-out real images; "
              f"{e.n_per_label} generated images per label per measurement")
        self.path = os.path.join(cfg.checkpoint_dir, METRICS_FILE)
        self.start = time.perf_counter()
        self.last = None
        self.real_written = False

    def _append(self, record):
        # The held-out real figures first (once per process, so a resumed run repeats them): plot
        # draws them beside the curves, measured by the same classifier on the same sample size.
        real = dict(real=self.evaluator.real, classifier_accuracy=self.evaluator.accuracy)
        lines = [] if self.real_written else [real]
        self.real_written = True
        with open(self.path, "a") as f:
            for line in lines + [record]:
                f.write(json.dumps(line) + "\n")

    def __call__(self, iteration, epoch, epoch_end=False, final=False):
        """Measure if due; return the figures as {"eval/name": value} for TensorBoard ({} if not due)."""
        cfg = self.cfg
        due = final or (cfg.eval_every and iteration % cfg.eval_every == 0) or (epoch_end and cfg.eval_every_epoch)
        if not due or (self.last is not None and self.last["iteration"] == iteration):
            return {}
        trained = self.evaluator(self.model)["generated"]
        self.last = dict(iteration=iteration, epoch=round(epoch, 3),
                         wall_time=round(time.perf_counter() - self.start, 1), **trained)
        line = f"quality at iteration {iteration} (epoch {epoch:.2f}): {one_line(trained)}"
        summaries = {f"eval/{name}": value for name, value in trained.items() if name != "n"}
        if self.averaged is not None:
            self.last["average"] = average = self.evaluator(self.averaged)["generated"]
            line += f"; averaged generator: {one_line(average)}"
            summaries.update({f"eval_average/{name}": value for name, value in average.items() if name != "n"})
        print(line)
        self._append(self.last)
        return summaries

    def finish(self, iteration, epoch):
        """Measure the final weights unless just done, and print them for the run's summary."""
        figures = self(iteration, epoch, final=True)
        average = f"; averaged generator: {one_line(self.last['average'])}" if "average" in self.last else ""
        print(f"quality of the last weights (iteration {self.last['iteration']}): {one_line(self.last)}{average}; "
              f"held-out real: {one_line(self.evaluator.real)}; all in {self.path}")
        return figures


# ---------------------------------------------------------------- output

def one_line(g):
    return (f"label agreement {g['label_agreement']:.4f}, classifier score {g['classifier_score']:.3f}, "
            f"Frechet distance {g['frechet_distance']:.3f}")


def table(rows, result):
    """rows: (name, figures) pairs, e.g. ("generated", result["generated"]); the notes from result."""
    c = result["classifier"]
    lines = [f"{'':<20}{'images':>8}{'label agreement':>17}{'classifier score':>18}{'Frechet distance':>18}"]
    for name, r in rows:
        lines.append(f"{name:<20}{r['n']:>8}{r['label_agreement']:>17.4f}{r['classifier_score']:>18.3f}"
                     f"{r['frechet_distance']:>18.3f}")
    lines.append(f"Frechet distance: {result['frechet_n']} images of each set against {result['frechet_reference_n']} "
                 f"other held-out real images; classifier score out of 10")
    lines.append(f"classifier: {c['heldout_accuracy']:.2%} accurate on {c['heldout_n']} held-out real images "
                 f"(trained on {c['trained_on']}: {c['file']})")
    return "\n".join(lines)


def command(p, args):
    check_sampling_arguments(p, args, [("--out", args.out)])
    generator, cfg, ckpt_path, drawn = checkpoint.restore_generator(args.checkpoint_dir, args.checkpoint,
                                                                    args.weights)
    evaluator = Evaluator(cfg, args.n_per_label, args.seed, args.cache_dir, args.retrain_classifier,
                          fingerprint=checkpoint.read_run(args.checkpoint_dir)[1])
    result = evaluator(generator)
    result["checkpoint"], result["weights"] = ckpt_path, drawn
    print(f"checkpoint {ckpt_path} ({checkpoint.describe(drawn)}), {args.n_per_label} images per label, "
          f"seed {args.seed}, data {evaluator.source}")
    print(table([("generated", result["generated"]), ("held-out real", result["real"])], result))
    if args.out:
        write_json_atomic(result, args.out)
        print(f"wrote {args.out}")


def main(argv=None):
    p = OneLineErrorParser(prog="python -m dcgan_mnist.evaluate", description=__doc__.splitlines()[0])
    add_checkpoint_arguments(p)
    p.add_argument("--n-per-label", type=int, default=Config.eval_n_per_label,
                   help="generated images per label (default: %(default)s)")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the classifier, the noise and the "
                                                          "held-out halves (default: %(default)s)")
    p.add_argument("--out", help="also write the figures to this JSON file")
    p.add_argument("--retrain-classifier", action="store_true", help="train the classifier again, "
                                                                     "replacing the cached one")
    p.add_argument("--cache-dir", default=CACHE_DIR, help="where classifiers are cached (default: %(default)s)")
    add_verbose(p)
    return run(p, argv, lambda args: command(p, args))


if __name__ == "__main__":
    sys.exit(main())
