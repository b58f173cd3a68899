"""Grid layout: image idx lands at row idx // cols, column idx % cols, as upstream's save_visualization."""
import numpy as np
from PIL import Image

from dcgan_mnist.grid import make_grid, save_visualization


def test_known_array_lands_in_the_right_cells(tmp_path):
    images = np.zeros((196, 28, 28, 1), np.float32)
    for idx in range(196):
        images[idx] = (idx % 7) / 6.0  # a per-image constant level
    images[15, 3, 5, 0] = 1.0  # one marked pixel: image 15 is row 1, column 1
    grid = make_grid(images, (14, 14))
    assert grid.shape == (392, 392, 3) and grid.dtype == np.uint8
    for idx in (0, 13, 14, 15, 100, 195):
        r, c = idx // 14, idx % 14
        cell = grid[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28, 0].astype(int)
        expected = round((idx % 7) / 6.0 * 255)
        if idx == 15:
            assert cell[3, 5] == 255
            cell[3, 5] = expected
        assert (cell == expected).all(), idx
    assert (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()

    path = tmp_path / "sample_0000.jpg"
    save_visualization(images, (14, 14), str(path))
    written = np.asarray(Image.open(path))
    assert written.shape == (392, 392, 3)
    assert np.abs(written.astype(int) - grid.astype(int)).mean() < 2  # JPEG, nearly lossless at q95
    assert not list(tmp_path.glob(".tmp-*"))


def test_upstream_quirks_wash_out_to_half_grey():
    black = np.zeros((4, 28, 28, 1), np.float32)
    assert (make_grid(black, (2, 2)) == 0).all()
    assert (make_grid(black, (2, 2), upstream_quirks=True) == 128).all()  # (0 + 1) / 2


def test_progress_gif_keeps_at_most_max_frames_evenly_spaced_with_the_last(tmp_path):
    from dcgan_mnist.grid import MAX_GIF_FRAMES, save_progress_gif
    n = 2 * MAX_GIF_FRAMES + 7
    for i in range(n):  # each grid's shade tells which it is
        Image.new("RGB", (28, 28), (i, i, i)).save(tmp_path / f"sample_{i:04d}.jpg", quality=100)
    with Image.open(save_progress_gif(str(tmp_path))) as gif:
        shades = []
        for k in range(gif.n_frames):
            gif.seek(k)
            shades.append(gif.convert("L").getpixel((14, 14)))
    assert len(shades) == MAX_GIF_FRAMES
    assert abs(shades[0] - 0) <= 2 and abs(shades[-1] - (n - 1)) <= 2
    steps = [b - a for a, b in zip(shades, shades[1:])]
    assert min(steps) >= 1 and max(steps) <= 3, steps  # evenly spaced: about n / MAX_GIF_FRAMES apart
