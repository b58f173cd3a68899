"""Faults injected into real training runs on tiny data, seconds each (child processes where the
process itself is under test, kill -9 and signals; else in this process): kill -9 at several points
and inside a checkpoint write, a damaged latest checkpoint or record, SIGINT / SIGTERM, a NaN loss, a
full disk, an unwritable folder, a folder of another run. Each run that goes on to its end is
compared with an uninterrupted one: the same weights, Adam state, counters, noise state and grids,
bit for bit."""
import glob
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import fault_runner as fr
from dcgan_mnist import folder as run_folder

# On one test worker, with test_faults_at_scale's tests that compare with the same undisturbed run:
# it (and this module's twin) are then made once, not once per worker.
pytestmark = pytest.mark.xdist_group("fault_reference")


@pytest.fixture(scope="session")  # not module: a worker may come back to this module
def reference(data_dir, fault_reference, tmp_path_factory):
    """The undisturbed run (conftest.fault_reference) and its twin, the same command run again in this
    process: returns both folders, the reference's first. (A real process ends as they do:
    test_faults_at_scale's first trainer.)"""
    twin = str(tmp_path_factory.mktemp("twin"))
    assert fr.train.main(fr.tiny_flags(data_dir, twin)) == 0
    return [fault_reference, twin]


def test_identical_runs_are_bit_identical(reference):
    a, b = reference
    state = fr.state(os.path.join(a, "ckpt"))
    assert any(name.startswith("ema/") for name in state)  # the averaged generator is part of exact resume
    fr.assert_same_state(state, fr.state(os.path.join(b, "ckpt")))
    assert fr.grids(os.path.join(a, "vis")) == fr.grids(os.path.join(b, "vis"))


def assert_like_reference(run_dir, reference_dir):
    got, want = fr.state(os.path.join(run_dir, "ckpt")), fr.state(os.path.join(reference_dir, "ckpt"))
    assert int(got["iteration/.ATTRIBUTES/VARIABLE_VALUE"]) == fr.TOTAL
    fr.assert_same_state(got, want)
    got_grids, want_grids = fr.grids(os.path.join(run_dir, "vis")), fr.grids(os.path.join(reference_dir, "vis"))
    assert list(got_grids) == list(want_grids)
    last = list(want_grids)[-1]
    assert got_grids[last] == want_grids[last], f"last grid {last} differs"
    assert got_grids == want_grids


def test_sigkill_in_a_checkpoint_write_and_at_a_random_iteration_then_resume_equals_uninterrupted_and_no_lock_stays(
        data_dir, reference, tmp_path, monkeypatch, capsys):
    flags = fr.tiny_flags(data_dir, str(tmp_path))
    ckpt = os.path.join(str(tmp_path), "ckpt")
    # 1. Killed inside its second checkpoint write: ckpt-6's files are written, not yet recorded.
    killed = fr.run(flags, fault="kill_in_save:2")
    assert killed.returncode == -signal.SIGKILL
    assert os.path.exists(os.path.join(ckpt, "ckpt-6.index"))
    assert fr.tf.train.latest_checkpoint(ckpt).endswith("ckpt-3")
    # What a kill in the middle of writing the data leaves: half a data file and a temporary folder.
    with open(os.path.join(ckpt, "ckpt-6.data-00000-of-00001"), "r+b") as f:
        f.truncate(100)
    os.makedirs(os.path.join(ckpt, "ckpt-9_temp"))
    with open(os.path.join(ckpt, "ckpt-9_temp", "part-00000-of-00001.data-00000-of-00001"), "wb") as f:
        f.write(b"half a checkpoint")
    # 2. A kill -9 at a seeded random iteration, after a resume (tests/test_slow_checks.py kills at many).
    kills = sorted(random.Random(5).sample(range(6, fr.TOTAL - 2), 1))
    resumed = []
    for k in kills:
        proc = fr.start(flags)
        resumed += [line for line in fr.wait_for_line(proc, f"iteration: {k}\n") if line.startswith("resuming")]
        proc.kill()
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
    with open(os.path.join(ckpt, run_folder.LOCK_FILE)) as f:
        assert f.read().split()[0] == str(proc.pid)  # the dead holder's record stays; its lock went with it
    # The last resume, in this process: the lock the killed trainer left blocks nobody.
    status, out, err = run_in_process(flags, "none", monkeypatch, capsys)
    assert status == 0, err
    resumed += [line for line in out.splitlines() if line.startswith("resuming")]
    assert len(resumed) == len(kills) + 1, resumed  # every restart resumed from a checkpoint
    assert resumed[0].rstrip().endswith("ckpt-3 at iteration 3")
    assert_like_reference(str(tmp_path), reference[0])


def test_damaged_latest_checkpoints_fall_back_to_the_last_whole_one(data_dir, reference, tmp_path, monkeypatch,
                                                                   capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(reference[0], run_dir)
    for number, damage in ((fr.TOTAL, "truncate"), (39, "bitflip")):
        data_file = os.path.join(run_dir, "ckpt", f"ckpt-{number}.data-00000-of-00001")
        raw = bytearray(open(data_file, "rb").read())
        if damage == "truncate":
            raw = raw[:len(raw) // 2]
        else:
            raw[len(raw) // 3] ^= 0x10
        open(data_file, "wb").write(bytes(raw))
    # The same command again: ckpt-40 and ckpt-39 are found damaged, it goes back to ckpt-36
    # and redoes iterations 36 to 39.
    status, out, err = run_in_process(fr.tiny_flags(data_dir, run_dir), "none", monkeypatch, capsys)
    assert status == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, out
    assert f"ckpt-{fr.TOTAL} is damaged" in warnings[0] and "ckpt-39 is damaged" in warnings[1]
    assert "ckpt-36 at iteration 36" in out
    assert_like_reference(run_dir, reference[0])


def test_damaged_checkpoint_record_never_restarts_over_the_run(data_dir, reference, tmp_path, monkeypatch, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(reference[0], run_dir)
    with open(os.path.join(run_dir, "ckpt", "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-4')  # cut short: TensorFlow reads it as no checkpoint at all
    status, out, err = run_in_process(fr.tiny_flags(data_dir, run_dir), "none", monkeypatch, capsys)
    assert status == 0, err
    assert "checkpoint is missing or damaged; trying the 10 checkpoints found beside it" in out
    assert f"ckpt-{fr.TOTAL} at iteration {fr.TOTAL}" in out
    assert_like_reference(run_dir, reference[0])


def test_no_restorable_checkpoint_is_an_error_not_a_fresh_start(data_dir, reference, tmp_path, monkeypatch, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(reference[0], run_dir)
    ckpt = os.path.join(run_dir, "ckpt")
    for name in os.listdir(ckpt):
        if name.endswith(".data-00000-of-00001"):
            os.truncate(os.path.join(ckpt, name), 10)
    def files():  # all but .lock, where the lock records its holder (folder.hold)
        return {name: open(os.path.join(ckpt, name), "rb").read() for name in os.listdir(ckpt) if name != ".lock"}
    before = files()
    status, out, err = run_in_process(fr.tiny_flags(data_dir, run_dir), "none", monkeypatch, capsys)
    assert status == 2
    assert out.count("is damaged") == 10
    assert err == [f"error: {ckpt}: none of its 10 checkpoints can be restored; pass --force-new to move them "
                   f"aside and start over"]
    assert files() == before


def test_read_only_output_folder_is_found_before_any_work(data_dir, tmp_path, monkeypatch, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    if not _mount_tmpfs(str(ro), "1m,ro"):
        pytest.skip("needs root and mount to make a read-only folder (root writes through permissions)")
    try:
        flags = fr.tiny_flags(data_dir, str(tmp_path))
        flags[flags.index("--vis-dir") + 1] = str(ro / "vis")
        status, out, err = run_in_process(flags, "none", monkeypatch, capsys)
        assert status == 2
        assert err == [f"error: --vis-dir {ro}/vis: cannot write in {ro} (Read-only file system)"]
        assert sorted(os.listdir(tmp_path)) == ["ro"]  # the checkpoint folder was not created either
    finally:
        subprocess.run(["umount", str(ro)])


def assert_stopped_and_saved(out, signal_name, run_dir):
    """The run's last line says it stopped on signal_name and where; its checkpoint is there; no animation
    (only a completed run animates its grids). Returns the iteration it stopped at."""
    last = out.splitlines()[-1]
    assert last.startswith(f"stopped by {signal_name} at iteration "), last
    stopped_at = int(last.split("at iteration ")[1].split()[0])
    saved = fr.state(os.path.join(run_dir, "ckpt"))
    assert int(saved["iteration/.ATTRIBUTES/VARIABLE_VALUE"]) == stopped_at
    assert f"ckpt-{stopped_at};" in last
    assert "progress.gif" not in os.listdir(os.path.join(run_dir, "vis"))
    return stopped_at


def test_sigterm_finishes_the_step_saves_exits_0_and_the_printed_command_resumes(data_dir, reference, tmp_path,
                                                                                 monkeypatch, capsys):
    flags = fr.tiny_flags(data_dir, str(tmp_path))
    proc = fr.start(flags)
    fr.wait_for_line(proc, "iteration: 11\n")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    stopped_at = assert_stopped_and_saved(out, "SIGTERM", str(tmp_path))
    assert 11 < stopped_at < fr.TOTAL
    # Resumed with the command it printed: the run ends as if never stopped.
    resume = shlex.split(out.splitlines()[-1].split("resume with: ")[1])
    assert resume[:3] == ["python", "-m", "dcgan_mnist.train"] and resume[3:] == flags
    status, out, err = run_in_process(resume[3:], "none", monkeypatch, capsys)  # the process is not the point
    assert status == 0, err
    assert f"at iteration {stopped_at}" in out
    assert_like_reference(str(tmp_path), reference[0])
    assert os.path.isfile(os.path.join(str(tmp_path), "vis", "progress.gif"))


def test_sigint_finishes_the_step_saves_and_exits_0(data_dir, tmp_path, monkeypatch, capfd):
    # In this process, the signal sent by the run to itself after iteration 11's step (as a Ctrl-C
    # arrives during a step): the real process's way is SIGTERM's, above, through the same handler.
    # capfd: the stop's line goes to sys.__stdout__ (train.finish), which capsys does not see.
    status, out, err = run_in_process(fr.tiny_flags(data_dir, str(tmp_path)), "sigint_at:11", monkeypatch, capfd)
    assert status == 0, err
    assert assert_stopped_and_saved(out, "SIGINT", str(tmp_path)) == 12


def run_in_process(flags, fault, monkeypatch, capture):
    """A run in this process (no TensorFlow start-up to wait for), with the fault patched in; capture:
    pytest's capsys, or capfd to see what goes to sys.__stdout__."""
    fr.inject(fault, monkeypatch.setattr)
    status = fr.train.main(flags)
    sys.__stdout__.flush()  # train.finish's stop line goes there (a worker's sys.stdout is silenced)
    out, err = capture.readouterr()
    return status, out, err.strip().splitlines()


def test_nan_loss_stops_without_saving(data_dir, tmp_path, monkeypatch, capsys):
    status, out, err = run_in_process(fr.tiny_flags(data_dir, str(tmp_path)), "nan_at:13", monkeypatch, capsys)
    assert status == 1
    assert len(err) == 1 and err[0].startswith("error: iteration 13: discrim loss is nan"), err
    assert "the last good checkpoint is" in err[0] and err[0].endswith("ckpt-12")
    ckpt = os.path.join(str(tmp_path), "ckpt")
    assert fr.tf.train.latest_checkpoint(ckpt).endswith("ckpt-12")
    assert not [f for f in os.listdir(ckpt) if f.startswith(("ckpt-13", "ckpt-14", "ckpt-15"))]
    for name, value in fr.state(ckpt).items():
        if value.dtype.kind == "f":
            assert np.isfinite(value).all(), name


def test_failed_checkpoint_write_stops_with_the_last_good_one_intact(data_dir, tmp_path, monkeypatch, capsys):
    status, out, err = run_in_process(fr.tiny_flags(data_dir, str(tmp_path)), "enospc_at_save:3", monkeypatch, capsys)
    assert status == 1
    assert len(err) == 1 and "cannot write checkpoint" in err[0] and "ckpt-9" in err[0], err
    assert "No space left on device" in err[0] and "the last good checkpoint is" in err[0]
    ckpt = os.path.join(str(tmp_path), "ckpt")
    assert fr.tf.train.latest_checkpoint(ckpt).endswith("ckpt-6")
    assert int(fr.state(ckpt)["iteration/.ATTRIBUTES/VARIABLE_VALUE"]) == 6


def _mount_tmpfs(folder, size):
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder],
                          capture_output=True).returncode == 0


def test_really_full_disk(data_dir, fault_reference, tmp_path, monkeypatch, capsys):
    """The checkpoint folder on a tmpfs where two checkpoints fit and the third does not (sized from
    the reference run's last checkpoint, each file rounded up to whole pages as tmpfs stores it)."""
    page = 4096
    one = sum(-(-os.path.getsize(p) // page) * page for p in glob.glob(
        os.path.join(fault_reference, "ckpt", f"ckpt-{fr.TOTAL}.*")))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    if not _mount_tmpfs(str(ckpt), f"{(5 * one) // 2 + 4 * page}"):
        pytest.skip("needs root and mount to make a small tmpfs")
    try:
        status, out, err = run_in_process(fr.tiny_flags(data_dir, str(tmp_path)), "none", monkeypatch, capsys)
        assert status == 1
        assert len(err) == 1 and "cannot write checkpoint" in err[0], err
        latest = fr.tf.train.latest_checkpoint(str(ckpt))
        assert latest and latest.endswith("ckpt-6") and f"the last good checkpoint is {latest}" in err[0]
        fr.state(str(ckpt))  # reads back whole
    finally:
        subprocess.run(["umount", str(ckpt)])


def test_other_settings_are_named_and_force_new_moves_the_run_aside(data_dir, reference, tmp_path,
                                                                   monkeypatch, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(reference[0], run_dir)
    before = sorted(os.listdir(os.path.join(run_dir, "ckpt")))
    flags = fr.tiny_flags(data_dir, run_dir)
    trained_with = flags[flags.index("--dim-w1") + 1]
    flags[flags.index("--dim-w1") + 1] = "32"
    status, _, err = run_in_process(flags, "none", monkeypatch, capsys)
    assert status == 2
    assert err == [
        f"error: {run_dir}/ckpt holds a run with other settings: --dim-w1 {trained_with} (now 32); use another "
        f"--checkpoint-dir, the same settings, or --force-new to move it aside"]
    assert sorted(os.listdir(os.path.join(run_dir, "ckpt"))) == before

    status, out, err = run_in_process(flags + ["--force-new", "--max-iterations", "2"], "none", monkeypatch, capsys)
    assert status == 0, err
    aside = [d for d in os.listdir(run_dir) if d.startswith("ckpt.old-")]
    assert len(aside) == 1 and f"moved the previous run in {run_dir}/ckpt to {run_dir}/{aside[0]}" in out
    assert sorted(os.listdir(os.path.join(run_dir, aside[0]))) == before
    fr.assert_same_state(fr.state(os.path.join(run_dir, aside[0])), fr.state(os.path.join(reference[0], "ckpt")))
    assert fr.tf.train.latest_checkpoint(os.path.join(run_dir, "ckpt")).endswith("ckpt-2")
