"""Sample grids: upstream's save_visualization, written with Pillow.

Image idx of a batch goes to row idx // n_cols, column idx % n_cols, each cell 28 x 28, saved
as an RGB image (upstream: 392 x 392 x 3 for 196 samples). Files are written to a temporary
name and renamed, so a crash never leaves a half-written grid in place of a good one.
"""
import os

import numpy as np
from PIL import Image

from dcgan_mnist.files import atomic_write


def make_grid(images, shape, upstream_quirks=False):
    """images [N, h, w, c] or [N, h, w] in [0, 1] -> uint8 [rows*h, cols*w, 3]."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    n_rows, n_cols = shape
    n, h, w, c = images.shape
    if n > n_rows * n_cols:
        raise ValueError(f"{n} images do not fit a {n_rows} x {n_cols} grid")
    if upstream_quirks:
        # Defect 3: upstream mapped [-1, 1] to [0, 1] although its samples are sigmoid outputs,
        # already in [0, 1], so its grids are washed out to [0.5, 1].
        images = (images + 1.0) / 2.0
    grid = np.zeros((n_rows * h, n_cols * w, c), dtype=np.float32)
    for idx, image in enumerate(images):
        i, j = idx // n_cols, idx % n_cols
        grid[i * h:(i + 1) * h, j * w:(j + 1) * w, :] = image
    if c == 1:
        grid = np.repeat(grid, 3, axis=2)
    return np.round(np.clip(grid, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_image_atomic(pixels_or_image, path, **save_kw):
    """Write a PIL image (or uint8 array) to path via a temporary file in the same folder."""
    image = pixels_or_image if isinstance(pixels_or_image, Image.Image) else Image.fromarray(pixels_or_image)
    with atomic_write(path) as f:
        image.save(f, format=_format(path), **save_kw)


def _format(path):
    ext = os.path.splitext(path)[1].lower()
    return {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF"}.get(ext, "PNG")


def save_visualization(images, shape, save_path, upstream_quirks=False):
    """Upstream's name: write images as a grid of shape (rows, cols) to save_path."""
    kw = {"quality": 95} if _format(save_path) == "JPEG" else {}
    save_image_atomic(make_grid(images, shape, upstream_quirks), save_path, **kw)


MAX_GIF_FRAMES = 60


def save_progress_gif(vis_dir, name="progress.gif", frame_ms=200, last_frame_ms=2000):
    """Animate vis_dir's sample_NNNN.jpg grids in the order they were written into vis_dir/name,
    so a user sees the digits form. Returns the GIF's path, or None when there is no grid.
    At most MAX_GIF_FRAMES grids, evenly spaced, first and last included: the default 100 epochs
    write 195 grids, whose GIF took 16 MB (and every frame in memory at once) for a 40 s loop."""
    grids = []
    for entry in os.listdir(vis_dir) if os.path.isdir(vis_dir) else []:
        stem, ext = os.path.splitext(entry)
        if ext == ".jpg" and stem.startswith("sample_") and stem[7:].isdigit():
            grids.append((int(stem[7:]), entry))
    if not grids:
        return None
    grids.sort()
    if len(grids) > MAX_GIF_FRAMES:
        grids = [grids[i] for i in np.linspace(0, len(grids) - 1, MAX_GIF_FRAMES).round().astype(int)]
    frames = []
    for _, entry in grids:
        with Image.open(os.path.join(vis_dir, entry)) as image:
            frames.append(image.convert("RGB"))
    path = os.path.join(vis_dir, name)
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]  # hold the last grid
    save_image_atomic(frames[0], path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path
