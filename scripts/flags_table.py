"""Print the Markdown table of `python -m dcgan_mnist.train`'s flags, for the README."""
import argparse

from dcgan_mnist.config import add_arguments

parser = add_arguments(argparse.ArgumentParser())
print("| flag | default | what |\n| --- | --- | --- |")
for action in parser._actions:
    if not action.option_strings or action.dest == "help":
        continue
    default = "" if action.default in (None, False) else f"`{action.default}`"
    text = (action.help or "").replace(" (default: %(default)s)", "").replace("%%", "%")
    print(f"| `{action.option_strings[0]}` | {default} | {text} |")
