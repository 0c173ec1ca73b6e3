"""The README and the pages under docs/ say what is true of this repository: every relative
link and picture resolves (anchors to real headings), every `nas` command they show names a
real subcommand with real flags and parses, their Python and YAML examples run and load,
and no path of the machine that wrote them is left in them. Lean: no training, no network;
the README's own search example runs in tests/scenarios/test_python_api.py."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from nas.cli import build_parser

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
# Flags of other tools that prose names on their own (Ray's `ray start`).
OTHER_TOOLS_FLAGS = {"--node-ip-address", "--dashboard-host", "--head"}


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _blocks(page: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced code block."""
    return FENCE.findall(page.read_text())


def _prose(page: Path) -> str:
    """The page without its fenced code blocks."""
    return FENCE.sub("", page.read_text())


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(page), re.MULTILINE):
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def _links(page: Path) -> list[str]:
    """Targets of the page's markdown links and pictures, outside code."""
    prose = re.sub(r"`[^`]*`", "", _prose(page))
    return re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)


def test_the_readme_starts_with_the_two_setup_commands() -> None:
    """A tool runs the README's first code block on a fresh clone: it stays the set-up."""
    language, first = _blocks(README)[0]
    commands = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert language == "bash" and commands == ["make search", "make test"], first


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_and_picture_resolves(page: Path) -> None:
    problems = []
    for target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            problems.append(f"{target}: no heading '#{anchor}' in {_name(resolved)}")
    assert not problems, f"{_name(page)}: {problems}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in _links(README)}
    unlinked = [_name(p) for p in PAGES[1:] if p.resolve() not in linked]
    assert not unlinked, f"README.md links none of {unlinked}"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _shell_commands(page: Path) -> list[str]:
    """Each command line of the page's shell blocks (and `$ ` lines of its text blocks),
    continuations joined, comments dropped."""
    lines = []
    for language, text in _blocks(page):
        text = text.replace("\\\n", " ")
        for line in text.splitlines():
            if language == "text":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            elif language not in SHELL_LANGUAGES:
                continue
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def _nas_invocations(line: str) -> list[list[str]]:
    """The arguments after `nas` (or `.venv/bin/nas`) in each command of a shell line."""
    tokens = shlex.split(line)
    commands, current = [], []
    for token in [*tokens, "&&"]:
        if token in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    found = []
    for command in commands:
        command = [t for i, t in enumerate(command)
                   if not t.startswith((">", "2>")) and not (i and command[i - 1] in (">", "2>"))]
        starts = [i for i, t in enumerate(command) if t == "nas" or t.endswith("bin/nas")]
        if starts:
            found.append(command[starts[0] + 1:])
    return found


def test_every_nas_command_in_a_shell_block_parses() -> None:
    """Subcommand, flags, values and positional arguments, as `nas` itself would parse them."""
    subcommands = _subcommands()
    problems, checked = [], 0
    for page in PAGES:
        for line in _shell_commands(page):
            for args in _nas_invocations(line):
                checked += 1
                where = f"{_name(page)}: nas {' '.join(args)}"
                if not args or args[0] not in subcommands:
                    problems.append(f"{where}: no such subcommand; allowed: "
                                    f"{', '.join(subcommands)}")
                    continue
                parser = subcommands[args[0]]
                # Exact names: argparse would also take an abbreviation (--sav for --save).
                unknown = {a.split("=")[0] for a in args[1:] if a.startswith("-")}
                unknown -= _options(parser)
                if unknown:
                    problems.append(f"{where}: unknown {sorted(unknown)}")
                    continue
                if {"-h", "--help"} & set(args):
                    continue
                errors = io.StringIO()
                try:
                    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(errors):
                        parser.parse_args(args[1:])
                except SystemExit:
                    problems.append(f"{where}: {errors.getvalue().strip()}")
    assert not problems, "\n".join(problems)
    assert checked >= 20, f"only {checked} nas commands found in shell blocks"


def test_every_nas_command_and_flag_in_the_prose_exists() -> None:
    """Inline `nas COMMAND --flag ...` names a real subcommand and its flags; a flag named
    on its own belongs to some subcommand (or to another tool the page names)."""
    subcommands = _subcommands()
    every_option = set().union(*(_options(p) for p in subcommands.values()))
    problems = []
    for page in PAGES:
        for span in re.findall(r"`([^`]+)`", _prose(page)):
            words = span.split()
            flags = {f.split("=")[0] for f in re.findall(r"(?<![\w-])--[a-z][\w-]*", span)}
            if words[0] == "nas" and len(words) > 1:
                if words[1] not in subcommands:
                    problems.append(f"{_name(page)}: `{span}`: no such subcommand")
                elif flags - _options(subcommands[words[1]]):
                    problems.append(f"{_name(page)}: `{span}`: unknown "
                                    f"{sorted(flags - _options(subcommands[words[1]]))}")
            elif words[0].startswith("--") and flags - every_option - OTHER_TOOLS_FLAGS:
                problems.append(f"{_name(page)}: `{span}`: no nas subcommand takes "
                                f"{sorted(flags - every_option - OTHER_TOOLS_FLAGS)}")
    assert not problems, "\n".join(problems)


def _machine_paths() -> list[str]:
    """Absolute paths that only make sense on the machine that wrote a page."""
    return sorted({str(ROOT), str(ROOT.parent), str(Path.home())} - {"/"})


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_no_absolute_path_of_a_machine(page: Path) -> None:
    text = page.read_text()
    found = [p for p in _machine_paths() if re.search(re.escape(p) + r"(?![\w.-])", text)]
    found += re.findall(r"(?<![\w.:/~-])/(?:work|home|root|Users|tmp|mnt|private|var/folders)"
                        r"/[\w./-]*", text)
    assert not found, f"{_name(page)} names {found}"


def _headings(page: Path) -> set[str]:
    return {" ".join(m.group(1).split()).lower()
            for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", _prose(page), re.MULTILINE)}


def test_the_code_cites_pages_and_sections_that_exist() -> None:
    """Docstrings and comments cite the design notes in the repository, as
    `docs/design.md, "Section"`; the page and the section are there (the old
    DESIGN.md never was)."""
    from nas.models import blocks

    assert "docs/design.md" in blocks.__doc__
    problems, cited = [], 0
    for folder in ("nas", "scripts", "benchmarks", "search_spaces"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".sh", ".yaml") or not path.is_file():
                continue
            text = path.read_text()
            where = _name(path)
            if "DESIGN.md" in text:
                problems.append(f"{where}: cites DESIGN.md, which is not in the repository")
            for match in re.finditer(r'docs/([\w-]+\.md)(?:,\s*"([^"]+)")?', text):
                cited += 1
                page = ROOT / "docs" / match.group(1)
                section = " ".join((match.group(2) or "").split())
                if not page.is_file():
                    problems.append(f"{where}: docs/{match.group(1)}: no such page")
                elif section and section.lower() not in _headings(page):
                    problems.append(f"{where}: no section '{section}' in docs/{page.name}")
    assert not problems, "\n".join(problems)
    assert cited, "no docstring cites a page of docs/"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_yaml_examples_are_valid_space_files(page: Path) -> None:
    from nas.space import parse_space

    for language, text in _blocks(page):
        if language in ("yaml", "yml"):  # a bad example raises its one-line SpaceError
            space = parse_space(yaml.safe_load(text), f"{_name(page)} example")
            assert space.params, f"{_name(page)}: an example with no space: values"


def test_the_docs_show_yaml_examples() -> None:
    assert any(language in ("yaml", "yml") for page in PAGES for language, _ in _blocks(page))


def test_python_examples_in_docs_run() -> None:
    """Each Python block of docs/*.md, run as a user would, in a fresh interpreter (the
    README's example is a search: tests/scenarios/test_python_api.py runs it)."""
    examples = [(p, text) for p in PAGES[1:] for language, text in _blocks(p)
                if language == "python"]
    assert examples, "no Python example in docs/"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for page, text in examples:
        proc = subprocess.run([sys.executable, "-c", text], cwd=ROOT, env=env, text=True,
                              capture_output=True, timeout=300)
        assert proc.returncode == 0, f"{_name(page)}:\n{text}\n{proc.stderr[-3000:]}"
