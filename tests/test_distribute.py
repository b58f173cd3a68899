"""--strategy: several replicas train as one device does on the same global batches, to float32 rounding.

The one-device reference is conftest's one_device_run. Every run of several replicas is a separate
process (tests/train_driver.py) with a time limit, killed if it overruns: a multi-worker runtime and
logical CPU devices can only be set up before TensorFlow starts, and a stuck collective must not
hang the suite. CPU only, tiny model, tiny data.
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fault_runner as fr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "train_driver.py")
TIMEOUT = 300  # seconds for any one process; the runs take ~10-40 s on 2 busy cores
# The printed figures (means over the global batch of terms that use its batchnorm statistics): on two
# replicas their sums run in another order. A sum of n float32 terms in another order moves by about
# u sqrt(n) relative, bounded as tests/test_step.py bounds it by 2 u (1 + sqrt(n)), u = 2^-24, n the
# longest sum: 8 x 14 x 14 terms, gen_W3's batchnorm. About 4.8e-6; measured at most 1.5e-7 with
# oneDNN and with Eigen; replica 0's own figures (half the batch) differ by 3e-3 and more.
FIGURES_RTOL = 2 * 2.0 ** -24 * (1 + np.sqrt(8 * 14 * 14))


def start(weights, cpus, flags):
    return subprocess.Popen([sys.executable, DRIVER, str(weights), str(cpus)] + flags, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(procs):
    """Wait for every process within TIMEOUT; kill all of them if any overruns or fails."""
    outputs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=TIMEOUT)
            outputs.append(out)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a training process ran over {TIMEOUT} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    return outputs


def weights(path, replica=0):
    with np.load(path) as f:
        return {k.split("/")[0]: f[k] for k in f.files if k.endswith(f"/replica_{replica}")}


FIGURE = re.compile(r"^iteration: (\d+)\ngen loss: (\S+)\ndiscrim loss: (\S+)\nAverage P\(real\)= (\S+)\n"
                    r"Average P\(gen\)= (\S+)$", re.M)


def printed_figures(log):
    """{iteration: [gen loss, discrim loss, P(real), P(gen)]} of upstream's six-line log."""
    return {int(m[0]): [float(x) for x in m[1:]] for m in FIGURE.findall(log)}


def run_workers(replica_flags, tmp_path, n_epochs):
    """Two worker processes of one multi-worker run on 127.0.0.1 (fault_runner.Cluster) -> their final weights."""
    flags = replica_flags + ["--strategy", "multiworker", "--n-epochs", str(n_epochs),
                             "--checkpoint-dir", str(tmp_path / "ckpt"), "--vis-dir", str(tmp_path / "vis")]
    cluster = fr.Cluster(tmp_path, 2).start(lambda i: [DRIVER, str(tmp_path / f"w{i}.npz"), "1", *flags])
    try:
        results = [cluster.wait(i, TIMEOUT) for i in range(2)]
    finally:
        cluster.kill()
    for status, out, err, _ in results:
        assert status == 0, (out + err)[-3000:]
    outputs = [out for _, out, _, _ in results]
    # Worker 1 printed one line, kept nothing and removed its own checkpoints (ckpt/workers/worker-1).
    assert os.listdir(tmp_path / "tmp1") == []
    assert not (tmp_path / "ckpt" / "workers").exists()
    assert outputs[1].splitlines() == ["worker 1: training; the chief writes the log, grids, checkpoints and summaries"]
    assert "replicas: 2, 4 images each per iteration" in outputs[0]
    w0, w1 = weights(tmp_path / "w0.npz"), weights(tmp_path / "w1.npz")
    for name in w0:
        np.testing.assert_array_equal(w0[name], w1[name])  # in sync: one all-reduce, the same updates
    return w0


# Two workers that resume and end where one device ends: test_faults_at_scale.py's kill -9 of a worker, relaunched.

@pytest.mark.slow
@pytest.mark.xdist_group("clusters")
def test_two_workers_from_scratch_match_one_process(replica_flags, one_device_run, tmp_path):
    w0 = run_workers(replica_flags, tmp_path, n_epochs=1)
    fr.assert_close_weights(w0, fr.checkpoint_weights(str(one_device_run / "ckpt" / "ckpt-8")))
    assert sorted(os.listdir(tmp_path / "vis")) == ["progress.gif", "sample_0000.jpg", "sample_0001.jpg"]


@pytest.mark.xdist_group("clusters")  # with the other users of one_device_run: it is made once
def test_mirrored_over_two_cpu_devices_resumes_one_devices_run_and_matches_it(replica_flags, one_device_run,
                                                                              tmp_path):
    # Resumed from the one-device run's first epoch (ckpt-8; --strategy is not a setting of the run), the
    # two replicas train the second epoch and end where one device ended.
    (tmp_path / "ckpt").mkdir()
    for name in os.listdir(one_device_run / "ckpt"):
        if name.startswith("ckpt-8.") or name == "run.json":
            shutil.copy(one_device_run / "ckpt" / name, tmp_path / "ckpt" / name)
    (tmp_path / "ckpt" / "checkpoint").write_text('model_checkpoint_path: "ckpt-8"\n'
                                                   'all_model_checkpoint_paths: "ckpt-8"\n')
    out = finish([start(tmp_path / "w.npz", 2, replica_flags + [
        "--strategy", "mirrored", "--n-epochs", "2", "--checkpoint-dir", str(tmp_path / "ckpt"),
        "--vis-dir", str(tmp_path / "vis"), "--log-every", "1"])])[0]
    assert "replicas: 2, 4 images each per iteration" in out
    assert f"resuming from {tmp_path / 'ckpt'}/ckpt-8 at iteration 8" in out
    replica0, replica1 = weights(tmp_path / "w.npz", 0), weights(tmp_path / "w.npz", 1)
    for name in replica0:
        np.testing.assert_array_equal(replica0[name], replica1[name])
    one_device = str(one_device_run / "ckpt" / "ckpt-16")
    fr.assert_close_weights(replica0, fr.checkpoint_weights(one_device))
    # The averaged generator is mirrored like the weights: the same average as one device's.
    fr.assert_close_weights(fr.checkpoint_weights(str(tmp_path / "ckpt" / "ckpt-16"), "ema"),
                            fr.checkpoint_weights(one_device, "ema"))
    # The printed figures are the global batch's: the same as one device's to float32 rounding.
    mirrored, one = printed_figures(out), printed_figures((one_device_run / "log.txt").read_text())
    assert sorted(mirrored) == list(range(8, 16)) and sorted(one) == list(range(16))
    for iteration in mirrored:
        np.testing.assert_allclose(mirrored[iteration], one[iteration], rtol=FIGURES_RTOL, atol=0,
                                   err_msg=f"iteration {iteration}")


def test_batch_that_does_not_split_over_replicas_is_refused():
    from dcgan_mnist.config import ConfigError
    from dcgan_mnist.distribute import check_split
    check_split(128, 2)
    with pytest.raises(ConfigError,
                       match=r"^--batch-size 7: does not split evenly over the 2 replicas; pass a multiple of 2$"):
        check_split(7, 2)


def test_multiworker_needs_tf_config_and_seed(tmp_path, monkeypatch, capsys):
    from dcgan_mnist import train
    flags = ["--strategy", "multiworker", "--checkpoint-dir", str(tmp_path / "c")]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert train.main(flags + ["--seed", "1"]) == 2
    assert "error: --strategy multiworker: TF_CONFIG is not set" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    assert train.main(flags + ["--seed", "1"]) == 2
    assert "error: TF_CONFIG: not a valid cluster description" in capsys.readouterr().err
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}')
    assert train.main(flags) == 2
    assert "error: --seed is missing" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
