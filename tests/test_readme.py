"""The README documents every flag of the main job, holds the commands CI runs, stays short, links
every page of docs/, and no relative link in it or in docs/ is broken."""
import argparse
import pathlib
import re

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


README_MAX_BYTES = 15_000
LINK = re.compile(r"""!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|<img\s[^>]*\bsrc="([^"]+)\"""")


def relative_links(text):
    """The targets of a Markdown text's links and images that are not URLs or in-page anchors, with
    code (fenced blocks, inline spans) left out."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("#"):
            yield target.split("#", 1)[0]


def test_readme_is_short_and_links_every_doc():
    readme = ROOT / "README.md"
    size = len(readme.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes, over {README_MAX_BYTES}: move detail into docs/"
    text = readme.read_text()
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"(docs/{p.name})" not in text]
    assert not unlinked, f"README.md does not link {unlinked} (as [docs/NAME.md](docs/NAME.md))"


def test_relative_links_point_to_files():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in relative_links(page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, f"links to files that do not exist: {broken}"


def test_link_finder_sees_links_and_skips_code():
    text = ('[a](docs/a.md) ![b](b.jpg "t") <img src="c.jpg" width="9"> [u](https://x.org/y) [h](#top)\n'
            "`[no](inline.md)`\n```\n[no](fenced.md)\n```\n[d](d.md#part)\n")
    assert list(relative_links(text)) == ["docs/a.md", "b.jpg", "c.jpg", "d.md"]
