"""The averaged generator (--ema-decay): how it follows G's updates, and what draws from it.

Exact resume of the average is covered with everything else a checkpoint holds by
tests/test_reliability.py (fault_runner.state reads every value, ema/ included)."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import TRAINED_RUN_FLAGS, call_main, write_random_pair
from dcgan_mnist import checkpoint, generate, train

GEN = ("gen_W1", "gen_W2", "gen_W3", "gen_W4")


def values(path, prefix):
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(f"{prefix}/{name}/.ATTRIBUTES/VARIABLE_VALUE") for name in GEN}


@pytest.fixture
def ckpt(trained_run):
    """The trained run's checkpoints (conftest.trained_run): ckpt-1 to ckpt-3, the default averaging."""
    return trained_run / "checkpoints"


def test_average_moves_after_each_g_update_with_tensorflows_warm_up(ckpt):
    w0, w1 = values(str(ckpt / "ckpt-1"), "model"), values(str(ckpt / "ckpt-2"), "model")
    # Iteration 0 updates D only: the average is still G's initial weights, which D's step left alone.
    for name in GEN:
        np.testing.assert_array_equal(values(str(ckpt / "ckpt-1"), "ema")[name], w0[name])
        assert not np.array_equal(w0[name], w1[name]), name
    # Iteration 1, G's first update (t = 1): decay min(0.999, (1 + t) / (10 + t)) = 2 / 11.
    decay = 2 / 11
    after_g = values(str(ckpt / "ckpt-2"), "ema")
    for name in GEN:
        np.testing.assert_allclose(after_g[name], decay * w0[name] + (1 - decay) * w1[name], rtol=1e-5, atol=1e-8,
                                   err_msg=name)
    # Iteration 2 updates D: the average stays.
    for name, value in values(str(ckpt / "ckpt-3"), "ema").items():
        np.testing.assert_array_equal(value, after_g[name])


def test_restore_model_draws_the_average_by_default_and_the_trained_weights_on_request(ckpt):
    ckpt = str(ckpt)
    model, _, _, path, drawn = checkpoint.restore_generator(ckpt)
    assert drawn == "average" and path.endswith("ckpt-3")
    want = values(path, "ema")
    for v in model.gen_vars:
        np.testing.assert_array_equal(v.numpy(), want[v.name.split(":")[0]])
    model, *_, drawn = checkpoint.restore_generator(ckpt, weights="trained")
    want = values(path, "model")
    assert drawn == "trained"
    for v in model.gen_vars:
        np.testing.assert_array_equal(v.numpy(), want[v.name.split(":")[0]])


def test_generate_says_what_it_drew_from(ckpt, tmp_path, capsys):
    flags = ["--checkpoint-dir", ckpt, "--labels", "01", "--n-per-label", "4"]
    default = call_main(capsys, generate.main, *flags, "--npz", tmp_path / "a.npz")
    trained = call_main(capsys, generate.main, *flags, "--npz", tmp_path / "t.npz", "--weights", "trained")
    assert default[0] == 0 and trained[0] == 0, default[2] + trained[2]
    assert "(averaged generator)" in default[1] and "(trained weights)" in trained[1]
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "t.npz") as t:
        assert not np.array_equal(a["images"], t["images"])


def test_without_an_average_trained_weights_are_drawn_and_asking_for_one_is_an_error(tmp_path, capsys,
                                                                                       monkeypatch):
    flags = write_random_pair(tmp_path, seed=3) + TRAINED_RUN_FLAGS + [
        "--max-iterations", "2", "--ema-decay", "0",
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--vis-dir", str(tmp_path / "vis")]
    assert train.main(flags) == 0
    assert not any(name.startswith("ema/") for name, _ in tf.train.list_variables(str(tmp_path / "ckpt" / "ckpt-2")))
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(capsys, generate.main, "--checkpoint-dir", "ckpt", "--npz", "x.npz")
    assert code == 0 and "(trained weights)" in out, err
    code, out, err = call_main(capsys, generate.main, "--checkpoint-dir", "ckpt", "--npz", "y.npz", "--weights",
                               "average")
    assert code == 2 and len(err.splitlines()) == 1 and "--weights trained" in err, err
    assert not (tmp_path / "y.npz").exists()


def test_ema_decay_is_checked():
    from dcgan_mnist.config import Config, ConfigError
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ConfigError, match=f"^--ema-decay {bad}: must be in"):
            Config(ema_decay=bad).validate()
