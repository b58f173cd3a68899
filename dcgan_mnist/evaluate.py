"""Measured sample quality: `python -m dcgan_mnist.evaluate --checkpoint-dir checkpoints`.

Upstream judged its digits by eye in the vis/ grids. This module puts numbers on them with a small
CNN classifier trained here, offline, on the run's own training split (TF-GAN's MNIST metrics do
the same with a classifier they download); the formulas are in metrics.py:
  label agreement    share of generated images the classifier files under the label asked for,
                     overall and per requested label (and the 10 x 10 confusion, --confusion);
  classifier score   exp(E_x KL(p(y|x) || p(y))), the Inception Score with this classifier (max 10);
  Frechet distance   between the classifier's penultimate features of a set and of held-out real
                     images (FID with this classifier in place of Inception);
  KID                Kernel Inception Distance on the same features, unbiased, with its spread;
  precision, recall  improved precision and recall (k = 3 nearest neighbours) on the same features;
  copies             share of images nearer to a training image (pixels) than 99% of held-out real ones;
  CAS                Classification Accuracy Score: the held-out accuracy of a classifier trained only
                     on the scored images. It trains a classifier, so only this command measures it
                     (--no-cas skips it); during training (--eval-every) "cas" is null.
The same figures for held-out real images make the reference row of the table. --npz FILE scores
the images of FILE instead of the run's generator, with the same yardstick.

Held-out real images: the run's validation split (the --valid-size images mnist_with_valid_set
keeps out of training, with the run's seed) and the data's test set when it has one. Neither the
GAN nor the classifier ever trains on them. They are split in two halves: the reference R of the
distances and copies, and the real row S, so the real row is compared with a disjoint real set.
"""
import json
import os
import sys
import time
import zipfile
import zlib

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dcgan_mnist import checkpoint, data, metrics
from dcgan_mnist.cli import OneLineErrorParser, add_verbose, run
from dcgan_mnist.config import METRICS_FILE, Config, ConfigError, add_checkpoint_arguments, check_sampling_arguments
from dcgan_mnist.data import DataError
from dcgan_mnist.files import atomic_write, write_json_atomic
from dcgan_mnist.generate import generate
from dcgan_mnist.metrics import classifier_score, frechet_distance, label_agreement

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
# Images of a set searched for their nearest training image (copies), and held-out images setting the
# bar: 2,000 against 50,000 Fashion-MNIST images is 8e10 multiply-adds, seconds in float32.
COPIES_N = 2000
CONFUSION_SIZE = (6.0, 5.4)  # inches, at CONFUSION_DPI: a 600 x 540 picture
CONFUSION_DPI = 100


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
    batches = data.without_autotune(tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype(np.int32)))
                                    .shuffle(len(images), seed=seed).repeat().batch(batch_size).take(steps))
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # shuffled above, with the seed
    return model


def classifier_path(fingerprint, seed, cache_dir):
    return os.path.join(cache_dir, f"classifier-v{CLASSIFIER_VERSION}-{fingerprint}-seed{seed}.keras")


def load_or_train_classifier(images, labels, seed, cache_dir=None, retrain=False, steps=None, name="classifier"):
    """(classifier, its file, whether it was trained now). Cached by a hash of the training data,
    so the same data reuse it and other data train another. name: what the messages call it."""
    cache_dir = CACHE_DIR if cache_dir is None else cache_dir
    steps = classifier_steps(len(images)) if steps is None else steps

    path = classifier_path(data.fingerprint(images, labels), seed, cache_dir)
    if os.path.isfile(path) and not retrain:
        return keras.models.load_model(path), path, False
    start = time.perf_counter()
    print(f"{name}: training on {len(images)} images ({steps} steps, seed {seed}); cached in {path}")
    model = train_classifier(images, labels, seed, steps)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = os.path.join(cache_dir, f".tmp-{os.getpid()}.keras")  # atomic: no half-written cache file
    model.save(tmp)
    os.replace(tmp, path)
    print(f"{name}: trained in {time.perf_counter() - start:.0f} s")
    return model, path, True


def features_and_probs(classifier, images, batch_size=1000):
    """Penultimate features [N, 128] and p(y|x) [N, 10] of uint8 images [N, 28, 28]."""
    both = keras.Model(classifier.inputs, [classifier.get_layer("features").output, classifier.outputs[0]])
    feats, logits = both.predict(images[..., None], batch_size=batch_size, verbose=0)
    logits = logits.astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return feats.astype(np.float64), probs / probs.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- data of a run

def run_data(cfg):
    """(training images, labels, held-out images, labels, source) of a run, by its own settings:
    the split train.prepare makes, plus the data's test set when it has one."""
    dataset = data.load_dataset(cfg)
    trX, vaX, trY, vaY = data.mnist_with_valid_set(dataset.train_images, dataset.train_labels,
                                                   cfg.held_out(), cfg.seed)
    if dataset.test_images is not None:
        vaX = np.concatenate([vaX, dataset.test_images])
        vaY = np.concatenate([vaY, dataset.test_labels])
    return trX, trY, vaX, vaY, dataset.source


class Evaluator:
    """The classifier and the held-out reference of one run, ready to score any generator of it,
    or any set of images (score)."""

    def __init__(self, cfg, n_per_label=None, seed=SEED, cache_dir=None, retrain=False, steps=None,
                 fingerprint=None):
        self.n_per_label = cfg.eval_n_per_label if n_per_label is None else n_per_label
        self.seed, self.cache_dir, self.steps = seed, cache_dir, steps
        trX, trY, heldX, heldY, self.source = run_data(cfg)
        if fingerprint is not None and data.fingerprint(trX, trY) != fingerprint:
            # Other data than the run's: its "held-out" images may be ones the GAN trained on.
            raise DataError(f"{self.source} is not the data the run was trained on (its fingerprint "
                            f"differs from run.json's); evaluate the run on its own data")
        if len(heldX) < 20:
            raise ConfigError(f"only {len(heldX)} held-out real images in {self.source} (--valid-size "
                              f"{cfg.held_out()}): the evaluation needs at least 20; train with a larger --valid-size")
        self.classifier, self.classifier_file, _ = load_or_train_classifier(trX, trY, seed, cache_dir, retrain, steps)
        self.train_images, self.train_labels = trX, trY
        self.held_images, self.held_labels = heldX, heldY  # CAS is measured on all of them
        feats, probs = features_and_probs(self.classifier, heldX)
        self.accuracy = label_agreement(probs, heldY)
        # R (the distances' reference) and S (the real row): disjoint halves of the held-out images.
        order = np.random.default_rng([seed, 1]).permutation(len(heldX))
        ref, row = order[:len(order) // 2], order[len(order) // 2:]
        self.n_held, self.n_ref = len(heldX), len(ref)
        # Equal sample sizes: the real row and the distances use m images.
        self.m = min(10 * self.n_per_label, len(row))
        row = row[:self.m]
        self.ref_features = feats[ref]
        # R's own distances to the training split set the bar for copies: S then scores about 0.01.
        self.copies_threshold = metrics.copies_threshold(heldX[ref[:COPIES_N]], trX)
        self.real = self._figures(heldX[row], heldY[row], feats[row], probs[row])
        self.real_confusion = metrics.confusion(probs[row], heldY[row])
        self.real_cas_of = {}  # training digits -> CAS, measured once per evaluator

    def _figures(self, images, labels, feats, probs):
        """Every figure but CAS (None here; see cas): the label figures on all images, the
        distances on m of them at random (a file may be in label order), copies on COPIES_N."""
        pick = np.random.default_rng([self.seed, 5]).permutation(len(labels))[:self.m]
        n_pr = min(len(pick), self.n_ref)  # precision and recall compare sets of one size
        kid, kid_std = metrics.kid(feats[pick], self.ref_features, seed=[self.seed, 6])
        precision, recall = metrics.precision_recall(self.ref_features[:n_pr], feats[pick[:n_pr]])
        return dict(label_agreement=label_agreement(probs, labels),
                    per_label_agreement=metrics.per_label_agreement(probs, labels),
                    classifier_score=classifier_score(probs),
                    frechet_distance=frechet_distance(feats[pick], self.ref_features),
                    kid=kid, kid_std=kid_std, precision=precision, recall=recall,
                    copies=metrics.copies(images[pick[:COPIES_N]], self.train_images, self.copies_threshold),
                    cas=None, n=len(labels))

    def cas(self, images, labels):
        """Classification Accuracy Score: the accuracy on all held-out real images of a classifier
        trained, by this evaluator's recipe (train_classifier), only on images with their labels."""
        steps = classifier_steps(len(images)) if self.steps is None else self.steps
        print(f"CAS: training a classifier on the {len(images)} scored images ({steps} steps, seed {self.seed})")
        classifier = train_classifier(images, labels, self.seed, steps)
        return label_agreement(features_and_probs(classifier, self.held_images)[1], self.held_labels)

    def real_cas(self, n):
        """CAS of n real training digits (all of them when the split has fewer): what a generator
        of n perfect digits would score. Cached like the evaluator's own classifier, which it is
        when n covers the whole split."""
        n = min(n, len(self.train_images))
        if n not in self.real_cas_of:
            keep = np.sort(np.random.default_rng([self.seed, 7]).permutation(len(self.train_images))[:n])
            classifier, _, _ = load_or_train_classifier(self.train_images[keep], self.train_labels[keep],
                                                        self.seed, self.cache_dir, steps=self.steps,
                                                        name="CAS of real training digits")
            probs = features_and_probs(classifier, self.held_images)[1]
            self.real_cas_of[n] = label_agreement(probs, self.held_labels)
        return self.real_cas_of[n]

    def draw(self, model):
        """n_per_label images of each label from a generator (a DCGAN), labels shuffled."""
        # Labels shuffled, then 500 at a time: every batch mixes the labels like a training batch
        # does (batchnorm uses the statistics of the batch at sampling time too, as upstream's), so
        # it needs no context draws beside it.
        labels = np.random.default_rng([self.seed, 2]).permutation(np.repeat(np.arange(10), self.n_per_label))
        parts = [generate(model, labels[i:i + 500], 1, [self.seed, 3, i], context=False)
                 for i in range(0, len(labels), 500)]
        return np.concatenate([p[0] for p in parts]), labels

    def __call__(self, model, cas=False):
        """The figures of a generator (a DCGAN), with the real row and the classifier's accuracy."""
        return self.score(*self.draw(model), cas=cas)

    def score(self, images, labels, cas=False):
        """The figures of uint8 images [N, 28, 28] asked for labels [N] (the "generated" row), with
        the real row, the confusion of both and the classifier's accuracy; CAS only if cas."""
        feats, probs = features_and_probs(self.classifier, images)
        generated = self._figures(images, labels, feats, probs)
        real = self.real
        if cas:
            generated["cas"] = self.cas(images, labels)
            real = dict(real, cas=self.real_cas(len(images)))
        return dict(generated=generated, real=real,
                    confusion=dict(generated=metrics.confusion(probs, labels).tolist(),
                                   real=self.real_confusion.tolist()),
                    frechet_n=min(len(images), self.m), frechet_reference_n=self.n_ref,
                    classifier=dict(heldout_accuracy=self.accuracy, heldout_n=self.n_held,
                                    trained_on=len(self.train_images), file=self.classifier_file),
                    n_per_label=self.n_per_label, seed=self.seed, data=self.source)


class TrainingHook:
    """--eval-every-epoch / --eval-every: created before train.py's loop, called after every
    iteration and at every epoch's end; prints one line per measurement and appends it to
    CHECKPOINT_DIR/metrics.jsonl: the trained weights' figures, and under "average" those of the
    averaged generator when the run keeps one. Every figure but CAS, which trains a classifier
    (minutes): its "cas" is null here, and `python -m dcgan_mnist.evaluate` measures it."""

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
        summaries = scalars(trained, "eval/")
        if self.averaged is not None:
            self.last["average"] = average = self.evaluator(self.averaged)["generated"]
            line += f"; averaged generator: {one_line(average)}"
            summaries.update(scalars(average, "eval_average/"))
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

def scalars(figures, prefix):
    """The single numbers among figures, for TensorBoard: not n, the per-label list or an unmeasured CAS."""
    return {prefix + name: value for name, value in figures.items() if name != "n" and isinstance(value, float)}


def one_line(g):
    return (f"label agreement {g['label_agreement']:.4f}, classifier score {g['classifier_score']:.3f}, "
            f"Frechet distance {g['frechet_distance']:.3f}, KID {g['kid']:.4f}, precision {g['precision']:.3f}, "
            f"recall {g['recall']:.3f}, copies {g['copies']:.3f}")


def cell(value, form):
    return "-" if value is None else format(value, form)


def table(rows, result):
    """rows: (name, figures) pairs, e.g. ("generated", result["generated"]); the notes from result."""
    c = result["classifier"]
    lines = [f"{'':<20}{'images':>7}{'agreement':>10}{'score':>7}{'Frechet':>10}{'KID':>20}{'precision':>10}"
             f"{'recall':>7}{'CAS':>8}{'copies':>7}"]
    for name, r in rows:
        kid = f"{r['kid']:.4f} +- {r['kid_std']:.4f}"
        lines.append(f"{name:<20}{r['n']:>7}{r['label_agreement']:>10.4f}{r['classifier_score']:>7.3f}"
                     f"{r['frechet_distance']:>10.3f}{kid:>20}{r['precision']:>10.3f}{r['recall']:>7.3f}"
                     f"{cell(r['cas'], '.4f'):>8}{r['copies']:>7.3f}")
    lines.append(f"{'agreement of':<20}" + "".join(f"{f'label {y}':>8}" for y in range(metrics.N_LABELS)))
    for name, r in rows:
        lines.append(f"{name:<20}" + "".join(f"{cell(a, '.4f'):>8}" for a in r["per_label_agreement"]))
    lines.append(f"Frechet, KID, precision/recall: {result['frechet_n']} images of each set against "
                 f"{result['frechet_reference_n']} other held-out real images; classifier score out of 10; "
                 f"CAS{' (-: not measured)' * any(r['cas'] is None for _, r in rows)} on all {c['heldout_n']} "
                 f"held-out real images; copies: share nearer "
                 f"a training image than 99% of held-out real images are")
    lines.append(f"classifier: {c['heldout_accuracy']:.2%} accurate on {c['heldout_n']} held-out real images "
                 f"(trained on {c['trained_on']}: {c['file']})")
    return "\n".join(lines)


def draw_confusion(shares, title):
    """A 10 x 10 picture of confusion shares: requested label (rows) against label read (columns)."""
    fig = Figure(figsize=CONFUSION_SIZE, dpi=CONFUSION_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, col), share in np.ndenumerate(shares):
        if share >= 0.005:  # blank cells for zero: the mistakes stand out
            ax.text(col, row, f"{share:.2f}", ha="center", va="center", fontsize="small",
                    color="white" if share > 0.5 else "black")
    ax.set_xticks(range(metrics.N_LABELS))
    ax.set_yticks(range(metrics.N_LABELS))
    ax.set_xlabel("label read by the classifier")
    ax.set_ylabel("label requested")
    ax.set_title(title, fontsize="medium")
    return fig


def write_confusion(shares, title, path):
    with atomic_write(path) as f:
        draw_confusion(np.asarray(shares), title).savefig(f, format="png")


# ---------------------------------------------------------------- any set of images

NPZ_MIN_IMAGES = 10  # as few as --n-per-label 1 draws: KID's subsets of 5, precision/recall's 3 neighbours
NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)  # what np.load raises on a bad file


def one_line_error(e):
    return " ".join(str(getattr(e, "strerror", None) or e).split())


def npz_arrays(path, where):
    """The arrays "images" and "labels" of an .npz file, those it has; DataError if unreadable."""
    try:
        with open(path, "rb") as head:
            magic = head.read(6)
    except OSError as e:
        raise DataError(f"{where}: {one_line_error(e)}") from None
    # Neither a zip (an .npz) nor an .npy: np.load would try pickle and say so, unhelpfully.
    if not magic.startswith(b"PK") and magic != b"\x93NUMPY":
        raise DataError(f"{where}: not an .npz file (an .npz is a zip archive of arrays)")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise ValueError("one array (an .npy file), not an .npz of images and labels")
        with f:  # reading an array can fail too: a damaged member, a pickled object array
            return {key: f[key] for key in ("images", "labels") if key in f.files}
    except NPZ_ERRORS as e:
        raise DataError(f"{where}: not a readable .npz file ({one_line_error(e)})") from None


def read_npz(path):
    """(images, labels) of a file as generate --npz writes it: uint8 images [N, 28, 28], integer
    labels [N] in 0..9. DataError naming what is wrong otherwise."""
    where = f"--npz {path}"
    arrays = npz_arrays(path, where)
    missing = [key for key in ("images", "labels") if key not in arrays]
    if missing:
        raise DataError(f"{where}: no array '{missing[0]}' (generate --npz writes images and labels)")
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{where}: images have shape {list(images.shape)}, not [N, 28, 28]")
    if len(images) < NPZ_MIN_IMAGES:
        raise DataError(f"{where}: {len(images)} images; KID and precision/recall need at least {NPZ_MIN_IMAGES}")
    if images.dtype != np.uint8:
        raise DataError(f"{where}: images are {images.dtype}, not uint8 (0..255)")
    if labels.shape != (len(images),):
        raise DataError(f"{where}: labels have shape {list(labels.shape)}, not [{len(images)}] (one per image)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels are {labels.dtype}, not integers")
    if labels.min() < 0 or labels.max() >= metrics.N_LABELS:
        raise DataError(f"{where}: labels range from {labels.min()} to {labels.max()}, not within 0..9")
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------- the command

def command(p, args):
    if args.confusion and not args.confusion.lower().endswith(".png"):
        p.error(f"--confusion {args.confusion}: must end in .png")
    check_sampling_arguments(p, args, [("--out", args.out), ("--confusion", args.confusion)])
    scored = read_npz(args.npz) if args.npz else None  # a bad file is refused before any work
    drawn = checkpoint.load_generator(args)
    evaluator = Evaluator(drawn.cfg, args.n_per_label, args.seed, args.cache_dir, args.retrain_classifier,
                          fingerprint=drawn.fingerprint)
    if scored is None:
        result = evaluator(drawn.generator, cas=not args.no_cas)
        result["checkpoint"], result["weights"] = drawn.path, drawn.drawn
        what = f"{drawn.describe()}, {args.n_per_label} images per label"
        name = f"{os.path.basename(drawn.path)}, {checkpoint.describe(drawn.drawn)}"
    else:
        result = evaluator.score(*scored, cas=not args.no_cas)
        result["npz"] = args.npz
        what = f"{args.npz}: {len(scored[1])} images, scored with the run of {drawn.path}"
        name = os.path.basename(args.npz)
    print(f"{what}, seed {args.seed}, data {evaluator.source}")
    print(table([("generated" if scored is None else "--npz", result["generated"]),
                 ("held-out real", result["real"])], result))
    if args.out:
        write_json_atomic(result, args.out)
        print(f"wrote {args.out}")
    if args.confusion:
        write_confusion(result["confusion"]["generated"], f"{name}: the share of each label requested\n"
                                                          f"read as each label by the classifier", args.confusion)
        print(f"wrote {args.confusion}")


def main(argv=None):
    p = OneLineErrorParser(prog="python -m dcgan_mnist.evaluate", description=__doc__.splitlines()[0],
                           epilog="CAS trains a classifier on the scored images, about as long as the evaluator's "
                                  "own (minutes on 2 cores), and once more on as many real training images unless "
                                  "cached: it is measured only by this command, never during training "
                                  "(--eval-every, whose metrics.jsonl has \"cas\": null).")
    add_checkpoint_arguments(p)
    p.add_argument("--n-per-label", type=int, default=Config.eval_n_per_label,
                   help="generated images per label (default: %(default)s)")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the classifier, the noise and the "
                                                          "held-out halves (default: %(default)s)")
    p.add_argument("--npz", metavar="FILE",
                   help="score the images of this file (uint8 images [N, 28, 28], int labels [N], as generate --npz "
                        "writes) instead of the run's generator, with the run's classifier, training split and "
                        "held-out images")
    p.add_argument("--no-cas", action="store_true", help="skip the Classification Accuracy Score (quick)")
    p.add_argument("--out", help="also write the figures to this JSON file")
    p.add_argument("--confusion", metavar="FILE.png",
                   help="also write the confusion picture of the scored images: label requested against label read")
    p.add_argument("--retrain-classifier", action="store_true", help="train the classifier again, "
                                                                     "replacing the cached one")
    p.add_argument("--cache-dir", default=CACHE_DIR, help="where classifiers are cached (default: %(default)s)")
    add_verbose(p)
    return run(p, argv, lambda args: command(p, args))


if __name__ == "__main__":
    sys.exit(main())
