"""python -m dcgan_mnist.export: the generator as a SavedModel, loaded in a fresh process."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import TRAINED_RUN_DIM_Z
from dcgan_mnist import checkpoint, export, generate

# Run in a fresh interpreter: nothing of this checkout is imported, only TensorFlow.
LOAD = """
import sys
import numpy as np
import tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
with np.load(sys.argv[2]) as f:
    out = serve(z=tf.constant(f["z"]), labels=tf.constant(f["labels"]))
np.save(sys.argv[3], out["images"].numpy())
"""


@pytest.fixture
def run(trained_run):
    """The trained run (conftest.trained_run; its noise size is not the default): its folder."""
    return trained_run


def test_saved_model_serves_the_checkpoints_generator(run, tmp_path, capsys):
    out = tmp_path / "served"
    assert export.main(["--checkpoint-dir", str(run / "checkpoints"), "--out", str(out)]) == 0
    assert TRAINED_RUN_DIM_Z == 12
    assert "serving_default(z float32 [N, 12], labels int32 [N]) -> images uint8 [N, 28, 28]" in capsys.readouterr().out
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".tmp")) == []

    rng = np.random.default_rng(9)
    z = rng.uniform(-1, 1, size=(30, TRAINED_RUN_DIM_Z)).astype(np.float32)
    labels = (np.arange(30) % 10).astype(np.int32)
    np.savez(tmp_path / "inputs.npz", z=z, labels=labels)
    subprocess.run([sys.executable, "-c", LOAD, str(out), str(tmp_path / "inputs.npz"), str(tmp_path / "images.npy")],
                   cwd=tmp_path, check=True, timeout=180, capture_output=True)
    served = np.load(tmp_path / "images.npy")
    assert served.shape == (30, 28, 28) and served.dtype == np.uint8

    # generate's pixels for the same noise and labels, drawn among its context for seed 0.
    model = checkpoint.restore_generator(str(run / "checkpoints")).generator
    np.testing.assert_array_equal(served, generate.draw(model, z, np.eye(10)[labels], seed=0))
    assert served.std() > 0  # a real image, not a constant

    # A request of one digit is drawn among the context too: its noise still decides the image.
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    ones = [serve(z=tf.constant(z[i:i + 1]), labels=tf.constant(labels[:1]))["images"].numpy() for i in range(2)]
    np.testing.assert_array_equal(ones[0], generate.draw(model, z[:1], np.eye(10)[labels[:1]], seed=0))
    assert not np.array_equal(ones[0], ones[1])


def test_saved_model_holds_the_generator_only(run, tmp_path):
    out = tmp_path / "served"
    assert export.main(["--checkpoint-dir", str(run / "checkpoints"), "--out", str(out)]) == 0
    names = [name for name, _ in tf.train.list_variables(str(out / "variables" / "variables"))]
    assert any("gen_W1" in n for n in names) and not any("discrim" in n for n in names)


def test_refuses_without_a_checkpoint_or_onto_existing_files(run, tmp_path, capsys):
    assert export.main(["--checkpoint-dir", str(tmp_path / "none"), "--out", str(tmp_path / "a")]) == 2
    assert "error: no checkpoint in" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as e:
        export.main(["--checkpoint-dir", str(run / "checkpoints"), "--out", str(taken)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"--out {taken}: already exists and is not an empty folder; refusing to overwrite it" in err
    assert os.listdir(taken) == ["keep.txt"] and (taken / "keep.txt").read_text() == "mine"

    empty = tmp_path / "empty"  # an empty folder is fine to fill
    empty.mkdir()
    assert export.main(["--checkpoint-dir", str(run / "checkpoints"), "--out", str(empty)]) == 0
    assert "saved_model.pb" in os.listdir(empty)
