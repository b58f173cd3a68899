"""The formulas of dcgan_mnist/metrics.py on inputs whose answer is known: constructed
probabilities, Gaussian features, random pixels. No classifier here (tests/test_evaluate.py scores
real digits with one). Random inputs are seeded; a failure names its seed."""
import numpy as np
import pytest

from dcgan_mnist import metrics


def test_classifier_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert metrics.classifier_score(confident) == pytest.approx(10, rel=1e-6)  # sure and varied: the maximum
    assert metrics.classifier_score(np.eye(10)[np.zeros(1000, int)]) == pytest.approx(1)  # always one class
    assert metrics.classifier_score(np.full((1000, 10), 0.1)) == pytest.approx(1)  # never sure


def test_frechet_distance_zero_on_itself_and_grows_with_a_shift():
    feats = np.random.default_rng(0).normal(size=(2000, 16)) @ np.random.default_rng(1).normal(size=(16, 16))
    assert abs(metrics.frechet_distance(feats, feats)) < 1e-6
    d = [metrics.frechet_distance(feats, feats + shift) for shift in (0.1, 0.5, 1.0)]
    assert d == pytest.approx([16 * s ** 2 for s in (0.1, 0.5, 1.0)], rel=1e-6)  # |mu_a - mu_b|^2, same covariance
    scaled = metrics.frechet_distance(feats, 2 * feats)
    assert scaled > 1.0


# ---------------------------------------------------------------- per label

def test_per_label_agreement_and_confusion_count_rows_by_requested_label():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    read = np.array([0, 0, 0, 7, 1, 2, 2, 2, 2, 2])  # one 0 read as 7, one 1 read as 2
    probs = np.eye(10)[read] * 0.9 + 0.01
    agreement = metrics.per_label_agreement(probs, labels)
    assert agreement[:3] == [0.75, 0.5, 1.0] and agreement[3:] == [None] * 7  # labels 3..9 not asked for
    shares = metrics.confusion(probs, labels)
    assert shares.shape == (10, 10)
    assert shares[0, 0] == 0.75 and shares[0, 7] == 0.25 and shares[1, 1] == shares[1, 2] == 0.5
    assert shares[2, 2] == 1 and not shares[3:].any()  # a label not asked for: a row of zeros
    np.testing.assert_allclose(shares[:3].sum(axis=1), 1)
    np.testing.assert_allclose(np.diag(shares)[:3], agreement[:3])


# ---------------------------------------------------------------- KID

def brute_mmd2(x, y):
    """The unbiased MMD^2 written as its definition: means over pairs i != j within a set, all pairs across."""
    k = lambda a, b: (a @ b / len(a) + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return xx + yy - 2 * xy


@pytest.mark.parametrize("seed", [0, 1])
def test_mmd2_is_the_unbiased_estimate_of_its_definition(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.3, 1.2, size=(12, 5))
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(brute_mmd2(x, y), rel=1e-10), f"seed {seed}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kid_of_two_samples_of_one_distribution_is_zero_within_its_spread(seed):
    # 1,000 points each, as the real row at the default size: subsets of 500.
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(64, 64)) / 8
    a, b = rng.normal(size=(1000, 64)) @ mix, rng.normal(size=(1000, 64)) @ mix
    mean, std = metrics.kid(a, b, subsets=20, seed=seed)
    assert std > 0 and abs(mean) < 2 * std, f"seed {seed}: KID {mean} +- {std} of two samples of one distribution"
    shifted, _ = metrics.kid(a, b + 0.2, subsets=20, seed=seed)
    assert shifted > 10 * std, f"seed {seed}: KID {shifted} of a shifted sample, spread {std}"


def test_kid_is_the_same_from_whole_kernel_matrices_and_per_subset(monkeypatch):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 16)), rng.normal(0.1, 1, size=(200, 16))
    whole = metrics.kid(a, b, subsets=10, seed=4)
    monkeypatch.setattr(metrics, "KID_WHOLE_KERNELS", 0)
    assert metrics.kid(a, b, subsets=10, seed=4) == pytest.approx(whole, rel=1e-9)


def test_kid_subsets_are_at_most_half_the_smaller_set():
    assert metrics.kid_subset_size(1000, 1000) == 500
    assert metrics.kid_subset_size(10000, 10000) == metrics.KID_SUBSET_SIZE == 1000
    assert metrics.kid_subset_size(50, 3000) == 25


# ---------------------------------------------------------------- precision and recall

def test_kth_neighbour_radius_leaves_the_point_itself_out():
    points = np.arange(6, dtype=float)[:, None] ** 2  # 0 1 4 9 16 25 on a line
    np.testing.assert_allclose(metrics.kth_neighbour_radii(points, k=1), [1, 1, 3, 5, 7, 9])
    np.testing.assert_allclose(metrics.kth_neighbour_radii(points, k=2), [4, 3, 4, 7, 9, 16])


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_and_recall_tell_fidelity_from_diversity(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(600, 8))
    same = rng.normal(size=(600, 8))
    p, r = metrics.precision_recall(real, same)
    assert p > 0.75 and r > 0.75, f"seed {seed}: one distribution, precision {p}, recall {r}"
    # Collapsed onto ten real points: all inside the real manifold, covering almost none of it.
    collapsed = real[rng.choice(600, 10, replace=False)].repeat(60, axis=0)
    p, r = metrics.precision_recall(real, collapsed)
    assert p == 1 and r < 0.1, f"seed {seed}: collapsed, precision {p}, recall {r}"
    # Half of them far off: precision halves, the other half still covers the real set.
    half_off = np.concatenate([same[:300], same[300:] + 100])
    p, r = metrics.precision_recall(real, half_off)
    assert 0.3 < p < 0.55 and r > 0.6, f"seed {seed}: half far off, precision {p}, recall {r}"


def test_precision_and_recall_want_sets_of_one_size():
    with pytest.raises(ValueError, match="same size"):
        metrics.precision_recall(np.zeros((10, 2)), np.zeros((11, 2)))


# ---------------------------------------------------------------- copies

def test_nearest_distances_match_a_direct_search():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    train = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    direct = np.sqrt((((images[:, None].astype(float) - train[None].astype(float)) / 255) ** 2).sum(axis=(2, 3)))
    np.testing.assert_allclose(metrics.nearest_distances(images, train), direct.min(axis=1), rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_copies_are_one_for_training_images_and_about_the_quantile_for_unseen_ones(seed, monkeypatch):
    monkeypatch.setattr(metrics, "CHUNK", 100)  # several chunks each way
    rng = np.random.default_rng(seed)
    # Blurred blobs, so nearest neighbours vary as for digits: one distribution for all three sets.
    centres = rng.integers(0, 256, (40, 28, 28))
    draw = lambda n: np.clip(centres[rng.integers(0, 40, n)] + rng.normal(0, 60, (n, 28, 28)), 0, 255).astype(np.uint8)  # noqa: E731
    train, heldout, unseen = draw(500), draw(1500), draw(1500)
    threshold = metrics.copies_threshold(heldout, train)
    assert threshold > 0
    assert metrics.copies(train[:500], train, threshold) == 1, f"seed {seed}"
    share = metrics.copies(unseen, train, threshold)
    assert 0.002 <= share <= 0.03, f"seed {seed}: copies of unseen images {share}, expected about 0.01"
