"""The README documents every flag of the main job and holds the commands CI runs."""
import argparse
import pathlib

from dcgan_mnist.config import add_arguments

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_lists_every_train_flag():
    readme = (ROOT / "README.md").read_text()
    parser = add_arguments(argparse.ArgumentParser())
    missing = [a.option_strings[0] for a in parser._actions
               if a.option_strings and a.dest != "help" and f"`{a.option_strings[0]}`" not in readme]
    assert not missing, f"README's flag table lacks {missing}: regenerate it with scripts/flags_table.py"


def test_ci_runs_the_readme_commands():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    for command in ("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]'", "python -m pytest"):
        assert f"    {command}\n" in readme and f"{command}\n" in ci
