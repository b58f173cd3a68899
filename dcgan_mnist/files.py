"""Files written whole: grids, run records, arrays.

Everything the project writes for a user goes to a temporary file in the destination folder and
is renamed over the destination only once complete, so a crash or a full disk never leaves a
half-written file in place of a good one.
"""
import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """with atomic_write(path) as f: ... writes f to path whole, or leaves path untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomic(obj, path):
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
