"""Faults of shared folders and several workers: a second trainer on a folder in use, a
filesystem without locks, a worker lost to kill -9 or SIGSTOP, a SIGTERM to one worker, and what
workers leave behind (a lock left by kill -9: test_reliability.py's kill -9 resumes over it). The
trainers whose process is under test are real processes (a second trainer of a folder runs in this
one); the multi-worker runs are two of them on 127.0.0.1. Each signal is sent once a given log line
is read or the worker has frozen itself at a given iteration, never after a fixed sleep, and the
time bounds are generous (TensorFlow's own, docs/distributed.md, are 10 s)."""
import errno
import os
import shlex
import signal
import socket
import time

import pytest

import fault_runner as fr
from conftest import SMALL_FLAGS, call_main, write_random_pair
from dcgan_mnist import checkpoint, generate
from dcgan_mnist import folder as run_folder

BOUND = 90  # seconds for the other worker to stop; measured 4-25 s on 2 busy cores


@pytest.fixture(scope="module")
def reference(fault_reference):
    """The undisturbed run, in the test process (conftest.fault_reference): its folder."""
    return fault_reference


# ---------------------------------------------------------------- one trainer per folder

@pytest.mark.xdist_group("fault_reference")  # with test_reliability.py: one reference run
def test_second_trainer_on_a_folder_in_use_is_refused_and_the_first_is_untouched(data_dir, reference, tmp_path,
                                                                                 capsys):
    flags = fr.tiny_flags(data_dir, str(tmp_path))
    first = fr.start(flags)
    try:
        fr.wait_for_line(first, "iteration: 5\n")
        first.send_signal(signal.SIGSTOP)  # holding the folder, frozen for as long as the second takes
        try:
            second = call_main(capsys, fr.train.main, *flags)  # the second trainer: in this process
        finally:
            first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    ckpt = os.path.join(str(tmp_path), "ckpt")
    status, second_out, second_err = second
    assert status == 2
    assert second_out == ""  # refused before reading the data
    assert second_err.splitlines() == [
        f"error: --checkpoint-dir {ckpt} is in use by another trainer (process {first.pid} on "
        f"{socket.gethostname()}); wait for it to end, stop it, or pass another --checkpoint-dir"]
    assert first.returncode == 0, err
    # Untouched: the real process, paused while the second was refused, ends bit for bit as the same
    # command run in the test process.
    fr.assert_same_state(fr.state(ckpt), fr.state(os.path.join(reference, "ckpt")))
    assert fr.grids(os.path.join(str(tmp_path), "vis")) == fr.grids(os.path.join(reference, "vis"))


def test_generate_reads_a_folder_in_use(trained_copy, tmp_path, capsys):
    # In this process: its lock is held on another open file than any generate would open, and flock
    # treats the two as two holders, as it would two processes.
    held = run_folder.hold(str(trained_copy / "checkpoints"))
    try:
        start = time.monotonic()
        status, _, err = call_main(capsys, generate.main, "--checkpoint-dir", trained_copy / "checkpoints", "--out",
                                   tmp_path / "digits.png")
        assert status == 0, err
        assert time.monotonic() - start < 120  # no waiting for the lock (a generate takes seconds)
        assert (tmp_path / "digits.png").stat().st_size > 0
    finally:
        held.close()


def test_a_filesystem_without_locks_is_named_in_one_warning(tmp_path, monkeypatch, capsys):
    def no_locks(f, how):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(run_folder.fcntl, "flock", no_locks)
    folder = str(tmp_path / "ckpt")
    run_folder.check_free(folder)  # nothing there yet: nothing to say
    run_folder.hold(folder).close()
    run_folder.check_free(folder)  # the check alone stays silent; hold() warns
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"warning: --checkpoint-dir {folder}: this filesystem has no working file locks "
                     f"({os.strerror(errno.ENOLCK)}); nothing stops a second trainer from using the folder at "
                     f"the same time"]


def test_the_lock_file_alone_is_an_empty_folder(tmp_path):
    folder = str(tmp_path / "ckpt")
    with run_folder.hold(folder):
        assert os.listdir(folder) == [run_folder.LOCK_FILE]
        assert run_folder.move_aside(folder) is None  # --force-new: nothing to move aside
        assert checkpoint.found_on_disk(folder) == []


# ---------------------------------------------------------------- two workers on 127.0.0.1

# 64 random images, batch 8: 8 iterations per epoch; far more epochs than any test lets run.
WORKER_FLAGS = ["--valid-size", "0", "--batch-size", "8", *SMALL_FLAGS, "--step", "5", "--seed", "7",
                "--checkpoint-every", "5", "--n-epochs", "1000"]


@pytest.fixture
def workers(tmp_path):
    """Two workers of one run (fault_runner.Cluster: temp folders tmp_path/tmp0 and tmp1), started.
    Tests using it are in the xdist group "clusters" (as is test_distribute's): never two clusters at once."""
    flags = WORKER_FLAGS + write_random_pair(tmp_path, seed=0) + [
        "--checkpoint-dir", str(tmp_path / "ckpt"), "--vis-dir", str(tmp_path / "vis")]
    w = fr.Cluster(tmp_path, 2).start(["-m", "dcgan_mnist.train", *flags])
    yield w
    w.kill()


def assert_lost_line(err, lost, ckpt):
    """One line naming the lost worker, the last complete checkpoint and the command that resumes."""
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: lost worker {lost} (127.0.0.1:"), lines[0]
    latest = fr.tf.train.latest_checkpoint(ckpt)
    assert f"the last complete checkpoint is {latest};" in lines[0]
    assert "start every worker again with the same command: python -m dcgan_mnist.train " in lines[0]
    return shlex.split(lines[0].partition("the same command: ")[2])


@pytest.mark.xdist_group("clusters")
def test_kill_9_of_a_worker_stops_the_chief_in_one_line_and_both_relaunched_end_as_one_device(
        replica_flags, one_device_run, tmp_path):
    # Worker 1 freezes itself once iteration 12 is done: neither worker can pass iteration 13, so the
    # last complete checkpoint is ckpt-10, wherever the kill lands in time.
    flags = replica_flags + ["--strategy", "multiworker", "--checkpoint-every", "5", "--checkpoint-dir",
                             str(tmp_path / "ckpt"), "--vis-dir", str(tmp_path / "vis")]
    workers = fr.Cluster(tmp_path, 2).start(lambda i: fr.command(flags, "stop_at:12" if i else "none")[1:])
    try:
        fr.wait_stopped(workers.procs[1], BOUND)
        workers.procs[1].kill()
        status, out, err, seconds = workers.wait(0, BOUND)
        assert status == 1 and seconds < BOUND
        ckpt = str(tmp_path / "ckpt")
        command = assert_lost_line(err, 1, ckpt)
        assert fr.tf.train.latest_checkpoint(ckpt) == f"{ckpt}/ckpt-10"
        assert (tmp_path / "ckpt" / "workers" / "worker-1").is_dir()  # what kill -9 leaves, under the run's folder
        workers.procs[1].communicate()
        # The printed command, on both workers, resumes; to the end of the one-device run's 16 iterations.
        assert command[:3] == ["python", "-m", "dcgan_mnist.train"] and command[3:] == flags
        workers.start(command[1:] + ["--max-iterations", "16"])
        results = [workers.wait(i, timeout=300) for i in range(2)]
    finally:
        workers.kill()
    assert [r[0] for r in results] == [0, 0], results[0][2] + results[1][2]
    assert f"resuming from {ckpt}/ckpt-10 at iteration 10" in results[0][1]
    assert fr.tf.train.latest_checkpoint(ckpt) == f"{ckpt}/ckpt-16"
    # Every worker restored the chief's checkpoint and they trained on together: where one device ends.
    fr.assert_close_weights(fr.checkpoint_weights(f"{ckpt}/ckpt-16"),
                            fr.checkpoint_weights(str(one_device_run / "ckpt" / "ckpt-16")))
    assert sorted(os.listdir(tmp_path / "vis")) == ["progress.gif"] + [f"sample_000{i}.jpg" for i in range(4)]
    assert not (tmp_path / "ckpt" / "workers").exists()
    assert workers.temp_folders_left() == []


@pytest.mark.xdist_group("clusters")
def test_frozen_worker_stops_the_chief_in_one_line(workers, tmp_path):
    fr.wait_for_line(workers.procs[0], "iteration: 12\n")
    workers.procs[1].send_signal(signal.SIGSTOP)
    status, out, err, seconds = workers.wait(0, BOUND)
    assert status == 1 and seconds < BOUND
    assert_lost_line(err, 1, str(tmp_path / "ckpt"))
    assert workers.temp_folders_left() == []


@pytest.mark.xdist_group("clusters")
def test_sigterm_to_one_worker_stops_both_with_a_checkpoint(workers, tmp_path):
    fr.wait_for_line(workers.procs[0], "iteration: 12\n")
    workers.procs[1].send_signal(signal.SIGTERM)
    (status0, out0, err0, _), (status1, out1, err1, _) = workers.wait(0, BOUND), workers.wait(1, BOUND)
    assert (status0, status1) == (0, 0), err0 + err1
    assert "Traceback" not in err0 + err1
    ckpt = str(tmp_path / "ckpt")
    stopped = [line for line in out0.splitlines() if line.startswith("stopped by ")]
    assert len(stopped) == 1, out0[-2000:]
    at = int(stopped[0].split(" at iteration ")[1].split()[0])
    assert at >= 12
    assert stopped[0].startswith(f"stopped by a stop signal to another worker at iteration {at} of 8000; "
                                 f"checkpoint {ckpt}/ckpt-{at}; resume with: python -m dcgan_mnist.train ")
    assert f"stopped by SIGTERM at iteration {at} of 8000; checkpoint {ckpt}/ckpt-{at}; " in out1
    assert fr.tf.train.latest_checkpoint(ckpt).endswith(f"ckpt-{at}")
    assert int(fr.state(ckpt)["iteration/.ATTRIBUTES/VARIABLE_VALUE"]) == at
    assert not (tmp_path / "ckpt" / "workers").exists()
    assert workers.temp_folders_left() == []
