"""Who owns a run's checkpoint folder, and what is done to the folder as a whole.

- One trainer per folder: the chief holds an OS lock on CHECKPOINT_DIR/.lock (hold) for as long
  as it lives; a second trainer is refused before it reads or writes anything (check_free).
- --force-new moves an old run's folder aside (move_aside); nothing is deleted.
- workers/worker-N: where workers other than the chief save (worker_folder).
- probe_writable: a folder that cannot take a file is refused before the run starts.
"""
import contextlib
import fcntl
import os
import shutil
import socket
import tempfile
import time

from dcgan_mnist.cli import UserError


def probe_writable(path, flag):
    """Check that folder `path` exists or can be created, and takes a file, without creating it
    (a failed run writes nothing): the probe file goes in its nearest existing ancestor."""
    if not path:
        raise UserError(f"{flag}: empty path")
    target = os.path.abspath(path)
    while not os.path.exists(target):
        target = os.path.dirname(target)
    if not os.path.isdir(target):
        raise UserError(f"{flag} {path}: {target} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=target, prefix=".write-probe-") as f:
            f.write(b"probe")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UserError(f"{flag} {path}: cannot write in {target} ({e.strerror or e})") from None


def move_aside(checkpoint_dir):
    """--force-new: rename the old run's folder to CHECKPOINT_DIR.old-TIMESTAMP; return that name
    (None when there was nothing to move). Nothing is deleted."""
    if not os.path.isdir(checkpoint_dir) or not set(os.listdir(checkpoint_dir)) - {LOCK_FILE}:
        return None
    base = os.path.normpath(checkpoint_dir) + ".old-" + time.strftime("%Y%m%d-%H%M%S")
    aside, n = base, 1
    while os.path.exists(aside):
        n += 1
        aside = f"{base}-{n}"
    os.rename(checkpoint_dir, aside)
    return aside


# ---------------------------------------------------------------- one trainer per folder

LOCK_FILE = ".lock"  # the chief's fcntl.flock, and who holds it ("PID HOST")


def check_free(checkpoint_dir):
    """Refuse at once a folder that another trainer holds, before reading or writing anything in
    it (hold takes the lock itself once every check has passed). Opens only a .lock that exists:
    a folder without one has no holder."""
    try:
        f = open(os.path.join(checkpoint_dir, LOCK_FILE), "r+")
    except OSError:
        return  # no lock file, or none we may open: hold() decides
    with f:
        _lock(f, checkpoint_dir, warn=False)  # released when f closes


def hold(checkpoint_dir):
    """Create checkpoint_dir if needed and take its lock: an exclusive fcntl.flock on
    CHECKPOINT_DIR/.lock, which the OS releases when the returned file is closed or the process
    ends, however it ends (kill -9 included; a stale .lock left behind blocks nobody). Keep the
    file for the rest of the run. UserError (exit 2) naming the holder if another process has it;
    on a filesystem without working locks, one warning line and the run goes on unguarded."""
    os.makedirs(checkpoint_dir, exist_ok=True)
    f = open(os.path.join(checkpoint_dir, LOCK_FILE), "a+")
    try:
        if _lock(f, checkpoint_dir, warn=True):
            f.truncate(0)  # who holds it, for the message of a trainer refused
            f.write(f"{os.getpid()} {socket.gethostname()}\n")
            f.flush()
    except BaseException:
        f.close()
        raise
    return f


def _lock(f, checkpoint_dir, warn):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:  # another open file has it: a live process
        f.seek(0)
        pid, _, host = f.read().strip().partition(" ")
        holder = f"process {pid} on {host}" if host else "another process"
        raise UserError(f"--checkpoint-dir {checkpoint_dir} is in use by another trainer ({holder}); wait for it "
                        f"to end, stop it, or pass another --checkpoint-dir") from None
    except OSError as e:  # ENOLCK, EOPNOTSUPP...: e.g. some network filesystems
        if warn:
            print(f"warning: --checkpoint-dir {checkpoint_dir}: this filesystem has no working file locks "
                  f"({e.strerror or e}); nothing stops a second trainer from using the folder at the same time")
        return False


WORKERS = "workers"


def worker_folder(checkpoint_dir, task_id):
    """Where worker task_id (not the chief) saves: CHECKPOINT_DIR/workers/worker-N. Nothing reads
    these saves (every worker restores the chief's checkpoints); each worker empties its folder when
    it starts and removes it when it exits, and the chief clears workers/ when it starts, so a
    worker killed with kill -9 leaves at most one checkpoint, until the run starts again."""
    return os.path.join(checkpoint_dir, WORKERS, f"worker-{task_id}")


def remove_worker_folder(folder):
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(folder))  # workers/, once the last worker's folder is gone


def clear_worker_folders(checkpoint_dir):
    """The chief, holding the folder's lock, removes what earlier runs' workers left."""
    shutil.rmtree(os.path.join(checkpoint_dir, WORKERS), ignore_errors=True)


