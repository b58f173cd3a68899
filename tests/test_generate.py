"""Digits on demand from a checkpoint the test made."""
import numpy as np
from PIL import Image

from conftest import SMALL_FLAGS, run_cli


def test_generate_writes_npz_and_grid(tmp_path, tiny_idx):
    r = run_cli("train", "--data-dir", tiny_idx, "--valid-size", "0", "--batch-size", "8", "--max-iterations", "2",
                "--seed", "1", "--upstream-quirks", *SMALL_FLAGS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # No model flags: they come from the run's record (small dims, quirks mode).
    r = run_cli("generate", "--labels", "7710", "--n-per-label", "3", "--npz", "out.npz", "--out", "grid.png",
                "--seed", "5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as f:
        images, labels = f["images"], f["labels"]
    assert images.dtype == np.uint8 and images.shape == (12, 28, 28)
    assert labels.tolist() == [7, 7, 7, 7, 7, 7, 1, 1, 1, 0, 0, 0]
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (3 * 28, 4 * 28)  # one row per requested label
    cells = np.asarray(grid)[..., 0]
    np.testing.assert_array_equal(cells[28:56, 56:84], images[5])  # row 1, column 2 = sample 5
    again = run_cli("generate", "--labels", "7710", "--n-per-label", "3", "--npz", "again.npz", "--seed", "5",
                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    with np.load(tmp_path / "again.npz") as f:
        np.testing.assert_array_equal(f["images"], images)  # same seed, same digits


def test_generate_errors(tmp_path):
    r = run_cli("generate", "--checkpoint-dir", tmp_path / "none", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: no checkpoint in") and len(r.stderr.splitlines()) == 1
    r = run_cli("generate", "--labels", "1a", cwd=tmp_path)
    assert r.returncode == 2 and "--labels '1a'" in r.stderr
    assert not list(tmp_path.glob("*.png"))
