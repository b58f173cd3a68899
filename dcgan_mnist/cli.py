"""The command layer every `python -m dcgan_mnist.X` shares.

An error a user can act on carries its exit status: UserError (2) for bad input, a flag, a file
or a folder, named in the message (DataError: bad data, raised by data.py and imagefolder.py);
Stopped (1) for a run that had to stop. run() parses the
command line, applies --verbose, calls the command and turns either error into one line on
stderr and its status, with no traceback. argparse's own errors are one line too (exit 2).
"""
import argparse
import logging
import sys

import absl.logging


class UserError(Exception):
    """Bad input: the message names the flag, file or folder and what is wrong. Exit status 2."""
    exit_code = 2


class DataError(UserError, ValueError):
    """A data file or folder that is missing, unreadable or malformed; the message names it. Exit status 2."""


class Stopped(Exception):
    """A run that had to stop (a non-finite loss, a failed write, a lost worker). Exit status 1."""
    exit_code = 1


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr and exit status 2 (no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_verbose(parser):
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own messages")


def show_tensorflow_messages(verbose):
    """--verbose: TensorFlow's Python-side messages (warnings, retracing notes) are shown from here
    on, however the command was started. Its start-up lines, printed while it loads, are shown only
    when --verbose is on the command line of the process (dcgan_mnist/__init__.py reads it)."""
    level = logging.INFO if verbose else logging.ERROR
    logging.getLogger("tensorflow").setLevel(level)  # tf.get_logger(), without loading TensorFlow
    absl.logging.set_verbosity(absl.logging.INFO if verbose else absl.logging.ERROR)


def run(parser, argv, command):
    """Parse argv (sys.argv[1:] when None), then command(args): its return value (0 if None) or
    the exit status of the UserError or Stopped it raised, printed as `error: message`."""
    args = parser.parse_args(argv)
    show_tensorflow_messages(args.verbose)
    try:
        return command(args) or 0
    except (UserError, Stopped) as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
