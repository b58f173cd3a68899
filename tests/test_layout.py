"""The package's shape: short functions, tools that do not import the trainer, one command layer
whose --verbose works however a command is started, and a constant that does not load Keras."""
import ast
import logging
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import ROOT, call_main
from dcgan_mnist import evaluate, export, generate, model, plot, train

PACKAGE = sorted((ROOT / "dcgan_mnist").glob("*.py"))
MAX_LINES = 60


def test_no_function_in_the_package_is_longer_than_a_screen():
    long = [f"{p.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for p in PACKAGE for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def imported_modules(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_module_imports_the_trainer():
    importers = [p.name for p in PACKAGE if p.name != "train.py" and "dcgan_mnist.train" in imported_modules(p)]
    assert not importers, f"{importers} import dcgan_mnist.train"


def test_reading_a_constant_does_not_load_keras():
    code = "import sys, dcgan_mnist.plot, dcgan_mnist.config; print(sorted(m for m in sys.modules if 'keras' in m))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# Each command with flags that parse and then fail in the command itself (exit 2).
FAILING = {train: ["--k", "0"], generate: ["--checkpoint-dir", "/nonexistent/run"],
           evaluate: ["--checkpoint-dir", "/nonexistent/run"], plot: ["--checkpoint-dir", "/nonexistent/run"],
           export: ["--checkpoint-dir", "/nonexistent/run", "--out", "{tmp}/served"], model: ["--dim-w3", "0"]}


@pytest.mark.parametrize("command", list(FAILING), ids=lambda m: m.__name__.split(".")[-1])
def test_verbose_shows_tensorflows_messages_however_the_command_is_started(capsys, tmp_path, command):
    """main(["--verbose", ...]) in this process, not only `python -m ... --verbose`: the command layer
    (cli.run) reads the flag once parsed, and an error is still one line with its exit status."""
    argv = [a.format(tmp=tmp_path) for a in FAILING[command]]
    try:
        code, _, err = call_main(capsys, command.main, "--verbose", *argv)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert tf.get_logger().getEffectiveLevel() == logging.INFO
        code, _, err = call_main(capsys, command.main, *argv)
        assert code == 2 and tf.get_logger().getEffectiveLevel() == logging.ERROR
    finally:
        tf.get_logger().setLevel(logging.ERROR)
    assert list(tmp_path.iterdir()) == []  # nothing written
