"""The classifier that evaluate.py's figures read images with: built, trained, cached, applied.

A small CNN trained offline on a run's own training split (TF-GAN's MNIST metrics use a classifier
they download): its p(y|x) gives label agreement and the classifier score, its 128 penultimate
features the Frechet distance, KID and precision/recall (metrics.py). CAS trains one more, by the
same recipe, on the scored images.
"""
import os
import time
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from dcgan_mnist import data
from dcgan_mnist.config import IMAGE_SHAPE, N_LABELS

# Shared by every run on the same training data: the classifier is keyed by the data's
# fingerprint (data.fingerprint of the pixels and labels), the seed, this version and, for other
# images than MNIST's 28 x 28 grey digits of ten labels, the image shape and number of classes.
CACHE_DIR = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dcgan_mnist")
CLASSIFIER_VERSION = 2  # bump when the architecture or its training changes: old files are ignored
# Adam steps of CLASSIFIER_BATCH images: CLASSIFIER_EPOCHS passes over the training split, at least
# CLASSIFIER_MIN_STEPS and at most CLASSIFIER_MAX_STEPS (8,000 digits: 2,000 steps; 50,000 images:
# 6,000 steps, 15 epochs). CLASSIFIER_STEPS, when not None, is the number for any size (tests set it tiny).
CLASSIFIER_EPOCHS = 32
CLASSIFIER_MIN_STEPS = 2000
CLASSIFIER_MAX_STEPS = 6000
CLASSIFIER_STEPS = None
CLASSIFIER_BATCH = 128  # read when a classifier trains, so that tests can make its steps cheaper
CLASSIFIER_SHIFT = 1  # training only: each image moved by -SHIFT..SHIFT whole pixels each way
# Two valid 3x3 convolutions and two poolings leave a 12-pixel side 1 pixel: smaller images
# (4 or 8 pixels, which the GAN takes) are padded with black up to it.
MIN_SIDE = 12


def build_classifier(seed, image_shape=IMAGE_SHAPE, n_classes=N_LABELS):
    """Two 3x3 convolutions with batchnorm and max pooling, dropout, the 128 features, n_classes logits,
    for images [H, W, C]; in training a random shift of up to CLASSIFIER_SHIFT pixels comes first
    (layer "shift")."""
    keras.utils.set_random_seed(seed)
    H, W, _ = image_shape
    extra = [max(0, MIN_SIDE - side) for side in (H, W)]
    return keras.Sequential([
        keras.Input(tuple(image_shape)),
        layers.Rescaling(1 / 255.0),
        *([layers.ZeroPadding2D([(e // 2, e - e // 2) for e in extra])] if any(extra) else []),
        # Active only when training (fit); an identity in predict and in features_and_probs. A fraction
        # of the size; "nearest" rounds it to whole pixels.
        layers.RandomTranslation(CLASSIFIER_SHIFT / H, CLASSIFIER_SHIFT / W, fill_mode="constant",
                                 interpolation="nearest", seed=seed, name="shift"),
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
        layers.Dense(n_classes, name="logits"),
    ], name="classifier")


def classifier_steps(n_images):
    """The Adam steps a classifier trains for on n_images: CLASSIFIER_STEPS if set, else by size."""
    if CLASSIFIER_STEPS is not None:
        return CLASSIFIER_STEPS
    by_size = round(CLASSIFIER_EPOCHS * n_images / CLASSIFIER_BATCH)
    return min(CLASSIFIER_MAX_STEPS, max(CLASSIFIER_MIN_STEPS, by_size))


def with_channels(images):
    """uint8 images [N, H, W] (grey) or [N, H, W, 3] (colour) as the classifier takes them, [N, H, W, C]."""
    return images[..., None] if images.ndim == 3 else images


def train_classifier(images, labels, seed, steps=None, batch_size=None, n_classes=N_LABELS):
    """A fresh classifier of n_classes trained on uint8 images [N, H, W] or [N, H, W, 3] with labels [N]:
    Adam, its learning rate from 1e-3 down to 0 along a cosine over the steps (default: classifier_steps(N))."""
    steps = classifier_steps(len(images)) if steps is None else steps
    batch_size = CLASSIFIER_BATCH if batch_size is None else batch_size
    images = with_channels(images)
    model = build_classifier(seed, images.shape[1:], n_classes)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = data.without_autotune(tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
                                    .shuffle(len(images), seed=seed).repeat().batch(batch_size).take(steps))
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # shuffled above, with the seed
    return model


def classifier_path(fingerprint, seed, cache_dir, image_shape=IMAGE_SHAPE, n_classes=N_LABELS):
    # MNIST's shape and labels are left out of the name, so the classifiers cached before other shapes
    # were taken stay in use.
    shape = tuple(image_shape)
    kind = "" if (shape, n_classes) == (IMAGE_SHAPE, N_LABELS) else f"-{'x'.join(map(str, shape))}-{n_classes}classes"
    return os.path.join(cache_dir, f"classifier-v{CLASSIFIER_VERSION}-{fingerprint}{kind}-seed{seed}.keras")


def load_or_train_classifier(images, labels, seed, cache_dir=None, retrain=False, steps=None, name="classifier",
                             n_classes=N_LABELS):
    """(classifier, its file, whether it was trained now). Cached by a hash of the training data
    (with their shape and n_classes), so the same data reuse it and other data train another.
    name: what the messages call it."""
    cache_dir = CACHE_DIR if cache_dir is None else cache_dir
    steps = classifier_steps(len(images)) if steps is None else steps

    path = classifier_path(data.fingerprint(images, labels), seed, cache_dir, with_channels(images).shape[1:],
                           n_classes)
    if os.path.isfile(path) and not retrain:
        return keras.models.load_model(path), path, False
    start = time.perf_counter()
    print(f"{name}: training on {len(images)} images ({steps} steps, seed {seed}); cached in {path}")
    model = train_classifier(images, labels, seed, steps, n_classes=n_classes)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = os.path.join(cache_dir, f".tmp-{os.getpid()}.keras")  # atomic: no half-written cache file
    model.save(tmp)
    os.replace(tmp, path)
    print(f"{name}: trained in {time.perf_counter() - start:.0f} s")
    return model, path, True


# Each classifier's two-output view (features and logits), made once: a new keras.Model per call traced
# its predict function again (a third of a second a call, most of a training hook's measurement).
_FEATURES_AND_LOGITS = weakref.WeakKeyDictionary()


def features_and_probs(classifier, images, batch_size=1000):
    """Penultimate features [N, 128] and p(y|x) [N, classes] of uint8 images [N, H, W] or [N, H, W, 3]."""
    both = _FEATURES_AND_LOGITS.get(classifier)
    if both is None:
        both = _FEATURES_AND_LOGITS[classifier] = keras.Model(
            classifier.inputs, [classifier.get_layer("features").output, classifier.outputs[0]])
    feats, logits = both.predict(with_channels(images), batch_size=batch_size, verbose=0)
    logits = logits.astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return feats.astype(np.float64), probs / probs.sum(axis=1, keepdims=True)
