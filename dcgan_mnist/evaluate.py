"""Measured sample quality: `python -m dcgan_mnist.evaluate --checkpoint-dir checkpoints`.

Upstream judged its digits by eye in the vis/ grids. This module puts numbers on them with a small
CNN (classifier.py) trained offline on the run's own training split, for its image shape and its K
labels (MNIST's 10 digits, or the classes of an image folder); the formulas are in metrics.py:
  label agreement    share of generated images the classifier files under the label asked for,
                     overall and per requested label (and the K x K confusion, --confusion);
  classifier score   exp(E_x KL(p(y|x) || p(y))), the Inception Score with this classifier (max K);
  Frechet distance   between the classifier's penultimate features of a set and of held-out real
                     images (FID with this classifier in place of Inception);
  KID                Kernel Inception Distance on the same features, unbiased, with its spread;
  precision, recall  improved precision and recall (k = 3 nearest neighbours) on the same features;
  copies             share of images nearer to a training image (pixels) than 99% of held-out real ones;
  CAS                Classification Accuracy Score: the held-out accuracy of a classifier trained only
                     on the scored images; only this command measures it (hook.py's "cas" is null).
The same figures for held-out real images (data.Split's: neither the GAN nor the classifier trains on
them) make the reference row, on one half S of them; the other half R is the distances' reference.
--npz FILE scores a file's images instead; --seeds S1 S2 ... gives each figure's mean over seeds.
"""
import os
import sys

import numpy as np

from dcgan_mnist import checkpoint, classifier, data, metrics
from dcgan_mnist.cli import OneLineErrorParser, add_verbose, run
from dcgan_mnist.config import Config, ConfigError, add_checkpoint_arguments, check_sampling_arguments
from dcgan_mnist.data import DataError
from dcgan_mnist.files import write_json_atomic
from dcgan_mnist.generate import CONTEXT, generate
from dcgan_mnist.metrics import classifier_score, frechet_distance, label_agreement
from dcgan_mnist.report import summary, summary_table, table

SEED = 0  # evaluate's default --seed, also used by the figures taken during training
# Images of a set searched for their nearest training image (copies), and held-out images setting the
# bar: 2,000 against 50,000 Fashion-MNIST images is 8e10 multiply-adds, seconds in float32.
COPIES_N = 2000
MIN_HELD_OUT = 20
# The fewest images a set is scored on: KID's subsets of 5, precision/recall's 3 neighbours; as few as
# --n-per-label 1 draws of the ten digits (runs of fewer labels need more per label).
NPZ_MIN_IMAGES = 10


def run_data(cfg, fingerprint=None):
    """The data.Split of a run, by its own settings, as train.prepare makes it. fingerprint: run.json's;
    DataError if the data found now are other data than the run trained on."""
    split = data.split_run(data.load_dataset(cfg), cfg.held_out(), cfg.seed)
    if fingerprint is not None and data.fingerprint(split.train_images, split.train_labels,
                                                    cfg.class_names) != fingerprint:
        # Other data than the run's: its "held-out" images may be ones the GAN trained on.
        raise DataError(f"{split.source} is not the data the run was trained on (its fingerprint "
                        f"differs from run.json's); evaluate the run on its own data")
    return split


class Evaluator:
    """The classifier and the held-out reference of one run (its data.Split), ready to score any
    generator of it, or any set of images (score). label_names: the run's labels, label 0 first
    (cfg.label_names()); None: the ten digits. Images are the split's shape, [H, W] or [H, W, 3]."""

    def __init__(self, split, n_per_label=Config.eval_n_per_label, seed=SEED, cache_dir=None, retrain=False,
                 steps=None, label_names=None):
        self.n_per_label, self.seed, self.cache_dir, self.steps = n_per_label, seed, cache_dir, steps
        self.label_names = tuple(label_names or Config().label_names())
        self.n_labels = len(self.label_names)
        trX, trY, heldX, heldY, self.source = split[:5]
        if len(heldX) < MIN_HELD_OUT:
            raise ConfigError(f"only {len(heldX)} held-out real images in {self.source} (--valid-size "
                              f"{split.valid_size}): the evaluation needs at least {MIN_HELD_OUT}; train with a "
                              f"larger --valid-size")
        n_set = self.n_labels * n_per_label
        if n_set < NPZ_MIN_IMAGES:
            raise ConfigError(f"{n_per_label} images per label of {self.n_labels} labels are {n_set}; the figures "
                              f"need at least {NPZ_MIN_IMAGES}: give --n-per-label (in training --eval-n-per-label) "
                              f"{-(-NPZ_MIN_IMAGES // self.n_labels)} or more")
        self.classifier, self.classifier_file, _ = classifier.load_or_train_classifier(
            trX, trY, seed, cache_dir, retrain, steps, n_classes=self.n_labels)
        self.train_images, self.train_labels = trX, trY
        self.held_images, self.held_labels = heldX, heldY  # CAS is measured on all of them
        feats, probs = classifier.features_and_probs(self.classifier, heldX)
        self.accuracy = label_agreement(probs, heldY)
        # R (the distances' reference) and S (the real row): disjoint halves of the held-out images.
        order = np.random.default_rng([seed, 1]).permutation(len(heldX))
        ref, row = order[:len(order) // 2], order[len(order) // 2:]
        self.n_held, self.n_ref = len(heldX), len(ref)
        # Equal sample sizes: the real row and the distances use m images.
        self.m = min(n_set, len(row))
        row = row[:self.m]
        self.ref_features = feats[ref]
        # R's own distances to the training split set the bar for copies: S then scores about 0.01.
        self.copies_threshold = metrics.copies_threshold(heldX[ref[:COPIES_N]], trX)
        self.real = self._figures(heldX[row], heldY[row], feats[row], probs[row])
        self.real_confusion = metrics.confusion(probs[row], heldY[row])
        self.real_cas_of = {}  # training images -> CAS, measured once per evaluator

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

    def held_out_accuracy(self, model):
        return label_agreement(classifier.features_and_probs(model, self.held_images)[1], self.held_labels)

    def cas(self, images, labels):
        """Classification Accuracy Score: the accuracy on all held-out real images of a classifier
        trained, by this evaluator's recipe (train_classifier), only on images with their labels."""
        steps = classifier.classifier_steps(len(images)) if self.steps is None else self.steps
        print(f"CAS: training a classifier on the {len(images)} scored images ({steps} steps, seed {self.seed})")
        return self.held_out_accuracy(classifier.train_classifier(images, labels, self.seed, steps,
                                                                  n_classes=self.n_labels))

    def real_cas(self, n):
        """CAS of n real training images (all of them when the split has fewer): what a generator
        of n perfect images would score. Cached like the evaluator's own classifier, which it is
        when n covers the whole split."""
        n = min(n, len(self.train_images))
        if n not in self.real_cas_of:
            keep = np.sort(np.random.default_rng([self.seed, 7]).permutation(len(self.train_images))[:n])
            model, _, _ = classifier.load_or_train_classifier(self.train_images[keep], self.train_labels[keep],
                                                              self.seed, self.cache_dir, steps=self.steps,
                                                              name="CAS of real training images",
                                                              n_classes=self.n_labels)
            self.real_cas_of[n] = self.held_out_accuracy(model)
        return self.real_cas_of[n]

    def draw(self, model):
        """n_per_label images of each of the run's labels from a generator (a DCGAN), labels shuffled."""
        if model.dim_y != self.n_labels:
            raise ValueError(f"a generator of {model.dim_y} labels, an evaluator of {self.n_labels}")
        # Labels shuffled, then CONTEXT at a time: every batch mixes the labels like a training batch
        # does (batchnorm uses the statistics of the batch at sampling time too, as upstream's), so
        # it needs no context draws beside it; and it is as large as the batch generate draws its
        # images in (CONTEXT beside the request), so both normalise over as many images.
        labels = np.repeat(np.arange(self.n_labels), self.n_per_label)
        labels = np.random.default_rng([self.seed, 2]).permutation(labels)
        parts = [generate(model, labels[i:i + CONTEXT], 1, [self.seed, 3, i], context=False)
                 for i in range(0, len(labels), CONTEXT)]
        return np.concatenate([p[0] for p in parts]), labels

    def __call__(self, model, cas=False):
        """The figures of a generator (a DCGAN), with the real row and the classifier's accuracy."""
        return self.score(*self.draw(model), cas=cas)

    def score(self, images, labels, cas=False):
        """The figures of uint8 images [N, H, W] or [N, H, W, 3] (the split's shape) asked for labels [N]
        (the "generated" row), with the real row, the confusion of both and the classifier's accuracy;
        CAS only if cas."""
        feats, probs = classifier.features_and_probs(self.classifier, images)
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
                    n_per_label=self.n_per_label, seed=self.seed, data=self.source,
                    label_names=list(self.label_names))


# ---------------------------------------------------------------- the command

def recorded_run(args):
    """The Config of the run the flags name, from its record alone: a bad --npz is refused before the
    generator is loaded. Upstream's (28 x 28 grey digits, 10 labels) for --pretrained, the shipped
    generator's, and where there is no run (the command then stops for want of one)."""
    recorded = None if args.pretrained else checkpoint.read_run(args.checkpoint_dir or Config.checkpoint_dir)[0]
    return recorded or Config()


def check_image_shape(images, image_shape, where):
    """DataError unless images are [N, H, W] (or [N, H, W, 1]) for image_shape [H, W, 1], [N, H, W, 3]
    for [H, W, 3]."""
    H, W, C = image_shape
    want = (H, W) if C == 1 else (H, W, C)
    shape = images.shape[1:3] if C == 1 and images.ndim == 4 and images.shape[3] == 1 else images.shape[1:]
    if len(shape) != len(want):
        raise DataError(f"{where}: images must have {len(want) + 1} dimensions [N, {', '.join(map(str, want))}], "
                        f"got shape {images.shape}: the run's images are {'grey' if C == 1 else 'colour'}")
    if shape != want:
        raise DataError(f"{where}: images are {' x '.join(map(str, shape))}, expected {' x '.join(map(str, want))} "
                        f"as the run's")


def read_scored(path, cfg):
    """(images, labels) of an --npz file as generate --npz writes it for the run cfg records: uint8 images
    [N, H, W] (grey) or [N, H, W, 3] (colour) of the run's size, integer labels [N] in 0..K-1 (the run's
    K labels), at least NPZ_MIN_IMAGES. DataError naming the file and what is wrong otherwise."""
    where = f"--npz {path}"
    arrays = data.read_npz(path, ("images", "labels"), where)
    for key in ("images", "labels"):
        if key not in arrays:
            raise DataError(f"{where}: no array '{key}' (generate --npz writes images and labels)")
    check_image_shape(arrays["images"], cfg.image_shape(), f"{where}[images]")
    images, labels = data.check_pair(arrays["images"], arrays["labels"], f"{where}[images]", f"{where}[labels]",
                                     n_labels=len(cfg.label_names()))
    if len(images) < NPZ_MIN_IMAGES:
        raise DataError(f"{where}: {len(images)} images; KID and precision/recall need at least {NPZ_MIN_IMAGES}")
    return images, labels


def check_arguments(p, args):
    """Refuse bad flags (exit 2, one line) before any work; returns the seeds."""
    if args.confusion and not args.confusion.lower().endswith(".png"):
        p.error(f"--confusion {args.confusion}: must end in .png")
    seeds = args.seeds or [args.seed]
    for args.seed in seeds:  # check_sampling_arguments checks args.seed: each in turn, the first kept
        check_sampling_arguments(p, args, [("--out", args.out), ("--confusion", args.confusion)])
    args.seed = seeds[0]
    return seeds


def evaluate_seed(args, drawn, split, scored, seed):
    """The result of one seed: the run's generator's figures, or with --npz the file's."""
    evaluator = Evaluator(split, args.n_per_label, seed, args.cache_dir, args.retrain_classifier,
                          label_names=drawn.cfg.label_names())
    if scored is None:
        return dict(evaluator(drawn.generator, cas=not args.no_cas), checkpoint=drawn.path, weights=drawn.drawn)
    return dict(evaluator.score(*scored, cas=not args.no_cas), npz=args.npz)


def command(p, args):
    seeds = check_arguments(p, args)
    scored = read_scored(args.npz, recorded_run(args)) if args.npz else None  # refused before any work
    drawn = checkpoint.load_generator(args)
    split = run_data(drawn.cfg, drawn.fingerprint)
    if scored is None:
        what, row = f"{drawn.describe()}, {args.n_per_label} images per label", "generated"
        name = f"{os.path.basename(drawn.path)}, {checkpoint.describe(drawn.drawn)}"
    else:
        what, row = f"{args.npz}: {len(scored[1])} images, scored with the run of {drawn.path}", "--npz"
        name = os.path.basename(args.npz)
    results = []
    for seed in seeds:
        results.append(evaluate_seed(args, drawn, split, scored, seed))
        print(f"{what}, seed {seed}, data {split.source}")
        print(table([(row, results[-1]["generated"]), ("held-out real", results[-1]["real"])], results[-1]))
    written = results[0]
    if len(seeds) > 1:
        figures = summary(results)
        print(f"\nover seeds {' '.join(map(str, seeds))}: each figure's mean ± half its range")
        print(summary_table(figures, [(row, "generated"), ("held-out real", "real")]))
        print("classifier accuracy per seed: " +
              ", ".join(f"{r['classifier']['heldout_accuracy']:.4f}" for r in results))
        written = dict(seeds=seeds, results=results, summary=figures)
    if args.out:
        write_json_atomic(written, args.out)
        print(f"wrote {args.out}")
    if args.confusion:
        from dcgan_mnist.plot import write_confusion  # here: the training hook, which imports this module, draws none
        write_confusion(results[0]["confusion"]["generated"], f"{name}: the share of each label requested\n"
                                                              f"read as each label by the classifier", args.confusion,
                        drawn.cfg.class_names)
        print(f"wrote {args.confusion}" + (f" (seed {seeds[0]})" if len(seeds) > 1 else ""))


def main(argv=None):
    p = OneLineErrorParser(prog="python -m dcgan_mnist.evaluate", description=__doc__.splitlines()[0],
                           epilog="CAS trains a classifier on the scored images, about as long as the evaluator's "
                                  "own (minutes on 2 cores), and once more on as many real training images unless "
                                  "cached: it is measured only by this command, never during training "
                                  "(--eval-every, whose metrics.jsonl has \"cas\": null).")
    add_checkpoint_arguments(p)
    p.add_argument("--n-per-label", type=int, default=Config.eval_n_per_label,
                   help="generated images per label (default: %(default)s)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=SEED, help="seed of the classifier, the noise, the held-out "
                                                              "halves, KID's subsets and CAS's training (default: "
                                                              "%(default)s)")
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                       help="evaluate with each seed, then print a Markdown table of each figure's mean over them "
                            "± half its range; --out then holds every seed's result and the summary, --confusion "
                            "the first seed's picture")
    p.add_argument("--npz", metavar="FILE",
                   help="score the images of this file (uint8 images [N, H, W] (grey) or [N, H, W, 3] (colour) of "
                        "the run's size, int labels [N] of the run's labels, as generate --npz writes) instead of the "
                        "run's generator, with the run's classifier, training split and held-out images")
    p.add_argument("--no-cas", action="store_true", help="skip the Classification Accuracy Score (quick)")
    p.add_argument("--out", help="also write the figures to this JSON file")
    p.add_argument("--confusion", metavar="FILE.png",
                   help="also write the confusion picture of the scored images: label requested against label read "
                        "(K x K for the run's K labels)")
    p.add_argument("--retrain-classifier", action="store_true", help="train the classifier again, "
                                                                     "replacing the cached one")
    p.add_argument("--cache-dir", default=classifier.CACHE_DIR,
                   help="where classifiers are cached (default: %(default)s)")
    add_verbose(p)
    return run(p, argv, lambda args: command(p, args))


if __name__ == "__main__":
    sys.exit(main())
