"""Remake the pretrained generator shipped in dcgan_mnist/pretrained/:

    python scripts/make_pretrained.py --work runs/pretrained

1. Trains `python -m dcgan_mnist.train --dataset mnist_test --seed 1` (upstream's 100 epochs on the
   8,000 training digits of the shipped 10,000, 2,000 held out; every other setting its default)
   into WORK/checkpoints and WORK/vis. Run again, it resumes where it stopped.
2. Writes the averaged generator of the last checkpoint in float16 to dcgan_mnist/pretrained/
   (generator.npz) with its record (generator.json): the command, the commit it was trained at,
   the seed and settings, the training split's fingerprint.
3. Scores it as users will, `python -m dcgan_mnist.evaluate --pretrained` (seed 0, CAS included), and
   adds the figures to the record.
"""
import argparse
import json
import os
import subprocess
import sys

from dcgan_mnist import checkpoint
from dcgan_mnist.files import write_json_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = ["--dataset", "mnist_test", "--seed", "1", "--log-every", "620"]


def commit():
    """The checkout's commit, marked -dirty when tracked files differ from it."""
    return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()


def train(work):
    """Train (or resume) the run; returns its command and the commit its training started at."""
    command = [sys.executable, "-m", "dcgan_mnist.train", *TRAIN, "--checkpoint-dir", os.path.join(work, "checkpoints"),
               "--vis-dir", os.path.join(work, "vis")]
    started = os.path.join(work, "commit.txt")  # written once: a resumed run keeps its first commit
    if not os.path.isfile(started):
        os.makedirs(work, exist_ok=True)
        with open(started, "w") as f:
            f.write(commit() + "\n")
    subprocess.run(command, check=True)
    with open(started) as f:
        return ["python", *command[1:]], f.read().strip()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="runs/pretrained", help="the run's folder (default: %(default)s)")
    p.add_argument("--folder", default=checkpoint.PRETRAINED_DIR, help="where to write (default: the package's)")
    args = p.parse_args(argv)
    command, trained_at = train(args.work)
    source = checkpoint.restore_generator(os.path.join(args.work, "checkpoints"), weights="average")
    about = dict(command=" ".join(command), commit=trained_at)
    checkpoint.write_pretrained(source, args.folder, **about)
    print(f"wrote {args.folder}: the averaged generator of {source.path}")
    if args.folder == checkpoint.PRETRAINED_DIR:  # evaluate --pretrained reads the package's
        figures = os.path.join(args.work, "evaluate.json")
        subprocess.run([sys.executable, "-m", "dcgan_mnist.evaluate", "--pretrained", "--out", figures,
                        "--confusion", os.path.join(args.work, "confusion.png")], check=True)
        with open(figures) as f:
            result = json.load(f)
        record_path = os.path.join(args.folder, checkpoint.PRETRAINED_RECORD)
        with open(record_path) as f:
            record = json.load(f)
        # The classifier's cache file by its name alone: its folder is this machine's.
        classifier = dict(result["classifier"], file=os.path.basename(result["classifier"]["file"]))
        record["evaluate"] = dict(command="python -m dcgan_mnist.evaluate --pretrained",
                                  generated=result["generated"], real=result["real"],
                                  classifier=classifier, n_per_label=result["n_per_label"])
        write_json_atomic(record, record_path)
        print(f"added evaluate's figures to {record_path}")


if __name__ == "__main__":
    sys.exit(main())
