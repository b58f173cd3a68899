"""Run a training command and measure what a long run costs: time per epoch, resident memory
after each epoch, the sizes of what it leaves, and how long its GIF takes to build.

    python scripts/measure_run.py --out runs/mnist/measure.json -- \
        python -m dcgan_mnist.train --checkpoint-dir runs/mnist/ckpt --vis-dir runs/mnist/vis ...

The command's own output goes to stdout unchanged (and to OUT's .log beside it, each line with
its time since start); the summary is printed at the end and written to --out as JSON. Resident
memory is read from /proc/PID/status (VmRSS, VmHWM) of the command's process, so Linux only.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

EPOCH = re.compile(r"^epoch (\d+)/(\d+): (\d+) iterations in ([\d.]+) s")


def rss_bytes(pid):
    """(current, peak) resident set size of pid in bytes, or None when it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
    except OSError:
        return None
    return tuple(int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM"))


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def flag(command, name):
    return command[command.index(name) + 1] if name in command else None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="summary JSON; the timed log goes beside it (.log)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = p.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command to measure after --")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1)
    peak = [0]

    def sample():  # the peak between epoch lines, which VmHWM also keeps
        while proc.poll() is None:
            got = rss_bytes(proc.pid)
            if got:
                peak[0] = max(peak[0], got[1])
            time.sleep(1)

    threading.Thread(target=sample, daemon=True).start()
    epochs = []
    with open(os.path.splitext(args.out)[0] + ".log", "a") as log:
        for line in proc.stdout:
            now = time.perf_counter() - start
            sys.stdout.write(line)
            log.write(f"{now:9.1f} {line}")
            log.flush()
            m = EPOCH.match(line)
            if m:
                got = rss_bytes(proc.pid) or (None, None)
                epochs.append(dict(epoch=int(m.group(1)), iterations=int(m.group(3)), seconds=float(m.group(4)),
                                   rss=got[0], peak_rss=got[1], at=round(now, 1)))
    status = proc.wait()
    summary = dict(command=command, exit_status=status, wall_seconds=round(time.perf_counter() - start, 1),
                   peak_rss=peak[0], epochs=epochs)
    if epochs:
        summary.update(rss_after_first_epoch=epochs[0]["rss"], rss_after_last_epoch=epochs[-1]["rss"],
                       seconds_per_epoch_median=sorted(e["seconds"] for e in epochs)[len(epochs) // 2])
    ckpt, vis = flag(command, "--checkpoint-dir") or "checkpoints", flag(command, "--vis-dir") or "vis"
    summary.update(checkpoint_dir_bytes=folder_bytes(ckpt), vis_dir_bytes=folder_bytes(vis))
    gif = os.path.join(vis, "progress.gif")
    if os.path.isfile(gif):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dcgan_mnist.train", "--gif", "--vis-dir", vis], check=True,
                       capture_output=True)
        summary.update(gif_bytes=os.path.getsize(gif), gif_build_seconds=round(time.perf_counter() - t, 1))
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: v for k, v in summary.items() if k != "epochs"}, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
