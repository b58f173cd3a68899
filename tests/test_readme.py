"""The README documents every flag of the main job (docs/usage.md holds their table), holds the
commands CI runs, stays short, links every page of docs/; no relative link in it or in docs/ is
broken, down to the heading it names; every table ends before the text under it; and no record or
page that ships names a path of the machine that wrote it."""
import argparse
import dataclasses
import os
import pathlib
import re
import subprocess
import sys

from dcgan_mnist.config import Config, add_arguments

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_lists_every_train_flag_and_usage_holds_their_table():
    readme = (ROOT / "README.md").read_text()
    parser = add_arguments(argparse.ArgumentParser())
    missing = [a.option_strings[0] for a in parser._actions
               if a.option_strings and a.dest != "help" and f"`{a.option_strings[0]}`" not in readme]
    assert not missing, f"README's list of flags lacks {missing}"
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "flags_table.py")], capture_output=True,
                           text=True, check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT))).stdout
    assert table in (ROOT / "docs" / "usage.md").read_text(), \
        "docs/usage.md's table of flags is not scripts/flags_table.py's output: paste it again"


# The README's words for groups of run-deciding settings (config.py's run=True); any other is named by its flag.
RESUME_WORDS = {"sizes": ("dim_z", "dim_y", "dim_W1", "dim_W2", "dim_W3", "dim_channel", "image_size"),
                "batch size": ("batch_size",), "learning rate": ("learning_rate",), "quirks": ("upstream_quirks",),
                "data": ("dataset", "valid_size")}


def test_readme_names_every_setting_a_resume_must_keep():
    readme = (ROOT / "README.md").read_text()
    sentence = re.search(r"On resume, the flags that decide weights or batches \(([^)]*)\)", readme)
    assert sentence, "README.md has no sentence listing the flags a resume must keep"
    named = {w.strip().strip("`") for w in sentence[1].replace("\n", " ").split(",")}
    covered = {name for word in named for name in RESUME_WORDS.get(word, ())}
    covered |= {setting_named(word.lstrip("-")) for word in named}
    deciding = [f.name for f in dataclasses.fields(Config) if f.metadata["run"]]
    missing = [f"--{name.replace('_', '-').lower()}" for name in deciding if name not in covered]
    assert not missing, f"README's resume sentence leaves out {missing}, which config.py marks run=True"


def setting_named(word):
    """The setting a word of the sentence names: a flag (--ema-decay) or a setting's own name (k, seed, beta1)."""
    return word.replace("-", "_")


def test_ci_runs_the_readme_commands():
    readme, ci = (ROOT / "README.md").read_text(), (ROOT / ".ci" / "run").read_text()
    for command in ("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]'", "python -m pytest"):
        assert f"    {command}\n" in readme and f"{command}\n" in ci


README_MAX_BYTES = 15_000
LINK = re.compile(r"""!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|<img\s[^>]*\bsrc="([^"]+)\"""")


def without_code(text):
    """text without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def local_targets(text):
    """The targets of a Markdown text's links and images that are not URLs (in-page anchors
    included), with code (fenced blocks, inline spans) left out."""
    text = re.sub(r"`[^`\n]*`", "", without_code(text))
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
            yield target


def relative_links(text):
    """The files that a Markdown text's links and images name: local targets, anchors dropped."""
    for target in local_targets(text):
        if not target.startswith("#"):
            yield target.split("#", 1)[0]


def anchors(text):
    """The anchors GitHub gives a Markdown text's headings: the heading's text without its code
    marks, lowercased, punctuation other than - and _ dropped, spaces to -; a repeated one gets -1,
    -2, ..."""
    seen, found = {}, set()
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", without_code(text), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return found


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


def test_every_anchor_names_a_heading():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in local_targets(page.read_text()):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, f"links to headings that do not exist: {broken}"


def test_anchors_follow_githubs_rules():
    text = ("# What `--upstream-quirks` changes\n## test_step.py over fresh draws, 15 cases\n"
            "### Small requests\n## Small requests\n```\n# not a heading\n```\n#nospace\n")
    assert anchors(text) == {"what---upstream-quirks-changes", "test_steppy-over-fresh-draws-15-cases",
                             "small-requests", "small-requests-1"}


def test_text_under_a_table_is_not_one_of_its_rows():
    # GitHub renders a line that follows a table without a blank line as one more row.
    glued = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = without_code(page.read_text()).splitlines()
        glued += [f"{page.relative_to(ROOT)}: {after.strip()[:60]}" for before, after in zip(lines, lines[1:])
                  if before.startswith("|") and after.strip() and not after.startswith("|")]
    assert not glued, f"text directly under a table (add a blank line): {glued}"


# A path of the machine that made a file: /work, /root, /home, /tmp, /Users, ... at the start of a
# path (not inside a relative one, a URL or a word).
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:work|root|home|tmp|Users|mnt|var/folders)(?:/|\b)")


def shipped_records():
    """The JSON and Markdown that ship: the package's data files, the README and docs/."""
    package = [p for p in sorted((ROOT / "dcgan_mnist").rglob("*")) if p.suffix in (".json", ".md")]
    return package + [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_no_shipped_record_names_a_machine_path():
    records = shipped_records()
    assert ROOT / "dcgan_mnist" / "pretrained" / "generator.json" in records
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in records for m in MACHINE_PATH.finditer(p.read_text())]
    assert not found, f"paths of the machine that wrote them: {found}"
    assert [m.group(0) for m in MACHINE_PATH.finditer(
        '"/home/u/data" /Users/u/.cache /tmp /mnt/d data/tmp https://x.org/home ~/tmp /usr/share')] == \
        ["/home/", "/Users/", "/tmp", "/mnt/"]


def test_link_finder_sees_links_and_skips_code():
    text = ('[a](docs/a.md) ![b](b.jpg "t") <img src="c.jpg" width="9"> [u](https://x.org/y) [h](#top)\n'
            "`[no](inline.md)`\n```\n[no](fenced.md)\n```\n[d](d.md#part)\n")
    assert list(relative_links(text)) == ["docs/a.md", "b.jpg", "c.jpg", "d.md"]
