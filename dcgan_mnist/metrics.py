"""The quality figures' formulas, in NumPy, on what the evaluation classifier reads from a set of
images (its penultimate features [N, D], its p(y|x) [N, K] over K labels) or on the images' pixels.

evaluate.py computes the classifier's outputs and decides which sets are compared; this module
only does the arithmetic, so each formula can be checked on inputs whose answer is known.
"""
import numpy as np

KID_SUBSETS = 100  # torch-fidelity's default number of subsets
KID_SUBSET_SIZE = 1000  # torch-fidelity's default subset size, capped by the sets' sizes (kid_subset_size)
KID_WHOLE_KERNELS = 3000  # sets up to this size get whole kernel matrices (3 x 72 MB at most)
PR_K = 3  # the k of Kynkaanniemi et al.'s k-nearest-neighbour radii
COPIES_QUANTILE = 0.01  # copies: nearer to the training set than 99% of held-out real images
CHUNK = 1024  # rows of a distance matrix computed at once: bounded memory on 50,000 training images


# ---------------------------------------------------------------- read by the classifier

def label_agreement(probs, labels):
    return float(np.mean(np.argmax(probs, axis=1) == labels))


def per_label_agreement(probs, labels):
    """Label agreement among the images asked for each label 0..K-1, K the width of probs (None for a
    label not asked for)."""
    read = np.argmax(probs, axis=1)
    return [float(np.mean(read[labels == y] == y)) if np.any(labels == y) else None for y in range(probs.shape[1])]


def confusion(probs, labels):
    """K x K shares, K the width of probs: row y, the images asked for label y; column c, the share
    of them read as c. A label not asked for has a row of zeros."""
    n_labels = probs.shape[1]
    counts = np.zeros((n_labels, n_labels))
    np.add.at(counts, (labels, np.argmax(probs, axis=1)), 1)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def classifier_score(probs, eps=1e-12):
    """exp(E_x KL(p(y|x) || p(y))), p(y) the mean of p(y|x) over the set (TF-GAN's classifier_score):
    from 1 to K, the width of probs."""
    p_y = probs.mean(axis=0, keepdims=True)
    kl = np.sum(probs * (np.log(probs + eps) - np.log(p_y + eps)), axis=1)
    return float(np.exp(kl.mean()))


# ---------------------------------------------------------------- distances between feature sets

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


def polynomial_kernel(x, y):
    """(x.y / d + 1)^3, the kernel of Binkowski et al.'s KID."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_from_sums(within_x, within_y, across, m):
    """The unbiased estimate of MMD^2 between two samples of the same size m from sums of their kernel
    values: within each sample without each point with itself (so m (m - 1) terms), and across (m^2)."""
    return (within_x + within_y) / (m * (m - 1)) - 2 * across / m ** 2


def mmd2_from_kernels(k_xx, k_yy, k_xy):
    """mmd2_from_sums from the samples' kernel matrices: their diagonals left out of the within sums."""
    m = len(k_xx)
    return float(mmd2_from_sums(k_xx.sum() - np.trace(k_xx), k_yy.sum() - np.trace(k_yy), k_xy.sum(), m))


def mmd2_unbiased(x, y):
    return mmd2_from_kernels(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))


def kid_subset_size(n_a, n_b, subset_size=KID_SUBSET_SIZE):
    """At most half the smaller set, so the subsets differ and their spread means something."""
    return max(2, min(subset_size, min(n_a, n_b) // 2))


def kid(features_a, features_b, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
    """Kernel Inception Distance, (mean, standard deviation) over `subsets` random subsets of
    kid_subset_size images drawn from each set without replacement, as torch-fidelity reports it."""
    n_a, n_b = len(features_a), len(features_b)
    size = kid_subset_size(n_a, n_b, subset_size)
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(n_a, size, replace=False), rng.choice(n_b, size, replace=False)) for _ in range(subsets)]
    if max(n_a, n_b) <= KID_WHOLE_KERNELS:
        # Small sets: the three kernel matrices once (a hundred times fewer products at the evaluator's
        # default 1,000 images), each subset a 0/1 row over a set: a block's sum is the quadratic form
        # s K s', all subsets in one matrix product, no block copied.
        k_aa, k_bb = polynomial_kernel(features_a, features_a), polynomial_kernel(features_b, features_b)
        k_ab = polynomial_kernel(features_a, features_b)
        in_a, in_b = np.zeros((subsets, n_a)), np.zeros((subsets, n_b))
        for s, (a, b) in enumerate(draws):
            in_a[s, a], in_b[s, b] = 1, 1
        within_a = np.einsum("sn,sn->s", in_a @ k_aa, in_a) - in_a @ np.diag(k_aa)  # without each point with itself
        within_b = np.einsum("sn,sn->s", in_b @ k_bb, in_b) - in_b @ np.diag(k_bb)
        values = mmd2_from_sums(within_a, within_b, np.einsum("sn,sn->s", in_a @ k_ab, in_b), size)
    else:
        values = [mmd2_unbiased(features_a[a], features_b[b]) for a, b in draws]
    return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------- nearest neighbours

def squared_distances(a, b):
    """|a_i - b_j|^2 [len(a), len(b)] in float32, by |a|^2 + |b|^2 - 2 a.b (a matrix product).
    In place on the product: one matrix of len(a) x len(b) at a time, not five."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    d = a @ b.T
    d *= -2
    d += np.sum(a * a, axis=1)[:, None]
    d += np.sum(b * b, axis=1)[None, :]
    return np.maximum(d, 0, out=d)  # rounding can make a distance to itself slightly negative


def kth_neighbour_radii(features, k=PR_K):
    """Each point's distance to its k-th nearest neighbour in its own set, itself not counted."""
    radii = []
    for start in range(0, len(features), CHUNK):
        d = squared_distances(features[start:start + CHUNK], features)
        d.partition(k, axis=1)
        radii.append(d[:, k].copy())  # index 0 is the point itself, at distance 0
    return np.sqrt(np.concatenate(radii))


def share_inside(points, centres, radii):
    """The share of points within radii[j] of some centre j: inside the set's k-NN manifold."""
    inside = []
    for start in range(0, len(points), CHUNK):
        d = squared_distances(points[start:start + CHUNK], centres)
        np.sqrt(d, out=d)
        inside.append(np.any(d <= radii[None, :], axis=1))
    return float(np.mean(np.concatenate(inside)))


def precision_recall(real_features, gen_features, k=PR_K):
    """Improved precision and recall (Kynkaanniemi et al. 2019): precision, the share of generated
    points inside the real manifold (the union of each real point's ball to its k-th nearest real
    neighbour); recall, the share of real points inside the generated manifold. Sets of one size."""
    if len(real_features) != len(gen_features):
        raise ValueError(f"precision_recall: sets of {len(real_features)} and {len(gen_features)} points; "
                         f"the definition compares sets of the same size")
    precision = share_inside(gen_features, real_features, kth_neighbour_radii(real_features, k))
    recall = share_inside(real_features, gen_features, kth_neighbour_radii(gen_features, k))
    return precision, recall


def nearest_distances(images, train_images):
    """Each image's pixel L2 distance (pixels scaled to 0..1) to its nearest training image."""
    flat = images.reshape(len(images), -1).astype(np.float32) / 255
    nearest = np.full(len(images), np.inf, dtype=np.float32)
    for start in range(0, len(train_images), 8 * CHUNK):  # training images by chunks: bounded memory
        train = train_images[start:start + 8 * CHUNK].reshape(-1, flat.shape[1]).astype(np.float32) / 255
        for row in range(0, len(flat), CHUNK):
            d = squared_distances(flat[row:row + CHUNK], train).min(axis=1)
            nearest[row:row + CHUNK] = np.minimum(nearest[row:row + CHUNK], d)
    return np.sqrt(nearest)


def copies_threshold(heldout_images, train_images, quantile=COPIES_QUANTILE):
    """The distance to the training set that only `quantile` of held-out real images come under."""
    return float(np.quantile(nearest_distances(heldout_images, train_images), quantile))


def copies(images, train_images, threshold):
    """The share of images nearer to their nearest training image than threshold (copies_threshold):
    about COPIES_QUANTILE for real images the run never saw, 1 for the training images themselves."""
    return float(np.mean(nearest_distances(images, train_images) < threshold))
