"""The documentation is current and self-contained.

- docs/cli.md is what scripts/gen_cli_reference.py renders from the argparse parser today.
- Every Markdown link in README.md and docs/ resolves: to a file or folder of the repository
  (and, for ``#anchor`` links, to a heading of that page), or it is an http(s) URL.
- Nothing in the repository (README, docs, the package's docstrings and comments, tests, scripts)
  refers to a file outside it: not to the development notes kept beside the repository
  (DESIGN.md, docs/hailo_facts.md, CONVTASNET_FACTS.md, seed/, ../shared), and not to a repository
  path (docs/..., src/..., tests/..., a module such as plan/packing.py) that does not exist.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "convtasnet_hailo"
SCRIPT = ROOT / "scripts" / "gen_cli_reference.py"
#: Folders that are not the repository's content: environments, caches, run outputs.
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "module_runs",
    "__pycache__",
    ".pytest_cache",
    "build",
    "dist",
    "data",
    "runs_train",
    ".deps",
    "node_modules",
}
#: Recorded outputs, kept byte for byte as the program wrote them (their attribution strings
#: name the notes of their day); the code that writes them is scanned like everything else.
RECORDED = ("benchmarks/results/",)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".txt", ".json", ".alls"}
TEXT_NAMES = {"Makefile", "run"}

#: Files beside the repository during development; a user's clone has none of them.
OUTSIDE = re.compile(r"DESIGN\.md|HAILO_FACTS(?:\.md)?|CONVTASNET_FACTS(?:\.md)?|\bseed/|\.\./shared|\bshared/")
#: Top-level folders whose paths a text may name.
TOP_DIRS = ("docs", "src", "tests", "scripts", "benchmarks", "corpus", ".ci")
PATH_TOKEN = re.compile(r"(?<![\w./-])((?:{})/[\w./-]*[\w/])".format("|".join(re.escape(d) for d in TOP_DIRS)))
MODULE_TOKEN = re.compile(r"(?<![\w./-])((?:[a-z_]+/)+[a-z_0-9]+\.(?:py|toml))\b")
MD_NAME = re.compile(r"(?<![\w./-])([\w-]+\.md)\b")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
#: A path a command will write (`--out docs/measured/x.md`) need not exist yet.
OUTPUT_FLAG = re.compile(r"(?:--out|--json|--png|-d|>)\s*[\"']?$")
#: A path cited right after another repository's name ("JorisCos/LibriMix, scripts/x.py") is that
#: repository's file, a source, not one of ours.
CITED_REPO = re.compile(r"\b([\w-]+)/[\w.-]+[,:]?\s+`?$")


def _repo_files() -> list[Path]:
    """The repository's files: what git tracks or would add (its ignore rules leave out data/,
    run folders, environments); without git, a walk that skips the same folders."""
    import subprocess

    try:
        listed = (
            subprocess.run(
                ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                cwd=ROOT,
                capture_output=True,
                check=True,
                timeout=60,
            )
            .stdout.decode()
            .split("\0")
        )
        return sorted(ROOT / name for name in listed if name and (ROOT / name).is_file())
    except (OSError, subprocess.SubprocessError):
        pass
    files = []
    stack = [ROOT]
    while stack:
        folder = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                if entry.name not in SKIP_DIRS and not entry.name.endswith(".egg-info"):
                    stack.append(entry)
            elif entry.is_file():
                files.append(entry)
    return sorted(files)


FILES = _repo_files()
NAMES = {path.name for path in FILES}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _markdown_pages() -> list[Path]:
    return [ROOT / "README.md"] + [p for p in FILES if _rel(p).startswith("docs/") and p.suffix == ".md"]


def _text_files() -> list[Path]:
    chosen = [
        p for p in FILES if (p.suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES) and not _rel(p).startswith(RECORDED)
    ]
    return [p for p in chosen if p.stat().st_size < 2_000_000]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(match) for match in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}


def _is_output(text: str, start: int) -> bool:
    return bool(OUTPUT_FLAG.search(text[max(0, start - 12) : start]))


def _is_cited_elsewhere(text: str, start: int) -> bool:
    match = CITED_REPO.search(text[max(0, start - 60) : start])
    return bool(match) and match.group(1) not in TOP_DIRS


def _glob_exists(token: str, base: Path, text: str, end: int) -> bool:
    """``token`` names a path under ``base``; ``benchmarks/results/2026_*`` a pattern of them."""
    if text[end : end + 1] == "*":
        return any(base.glob(token + "*"))
    return _exists(token, base)


def _exists(relative: str, base: Path) -> bool:
    relative = relative.rstrip("/.")
    return bool(relative) and (base / relative).exists()


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_cli_reference_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_cli_reference_is_current():
    expected = _load_generator().render()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == expected, (
        "docs/cli.md is not what the parser gives: run "
        "`PYTHONPATH=src python scripts/gen_cli_reference.py` and commit docs/cli.md"
    )


def test_cli_reference_names_every_command_and_option():
    from convtasnet_hailo.cli import build_parser

    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    names = {choice.dest for choice in sub._choices_actions}  # aliases are named in their command's section
    for name, child in sub.choices.items():
        if name not in names:
            assert f"(old name: `{name}`)" in page
            continue
        assert f"## `convtasnet-hailo {name}`" in page
        section = page.split(f"## `convtasnet-hailo {name}`", 1)[1].split("\n## ", 1)[0]
        for action in child._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in section, f"docs/cli.md: {name} lacks {option}"


@pytest.mark.parametrize("page", _markdown_pages(), ids=_rel)
def test_markdown_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"(https?|mailto):", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or ROOT not in (linked, *linked.parents):
            broken.append(f"{target} (no such file in the repository)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {_rel(linked)})")
    assert not broken, f"{_rel(page)}: broken links: {broken}"


def test_readme_starts_with_the_two_commands():
    """.ci/run and new users rely on them: `make demo` and `make test`, in the first code block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```", 2)[1]
    assert "make demo" in first_block and "make test" in first_block
    assert len(text.splitlines()) <= 200, "README.md is over 200 lines: move detail into docs/"


def _outside_references(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    found = [f"{match.group(0)!r} (not in the repository)" for match in OUTSIDE.finditer(text)]
    for match in PATH_TOKEN.finditer(text):
        token = match.group(1)
        if not (
            _glob_exists(token, ROOT, text, match.end())
            or _is_output(text, match.start())
            or _is_cited_elsewhere(text, match.start())
        ):
            found.append(f"{token!r} (no such path)")
    for match in MODULE_TOKEN.finditer(text):
        token = match.group(1)
        if token.split("/")[0] in TOP_DIRS or not (PACKAGE / token.split("/")[0]).is_dir():
            continue  # a top-level path (checked above) or another project's file, cited as a source
        if not _exists(token, PACKAGE) and not _exists(token, ROOT) and not _is_output(text, match.start()):
            found.append(f"{token!r} (no such module in src/convtasnet_hailo)")
    for match in MD_NAME.finditer(text):
        if OUTSIDE.fullmatch(match.group(1)):
            continue  # reported above
        if match.group(1) not in NAMES and not _is_output(text, match.start()):
            found.append(f"{match.group(1)!r} (no such page in the repository)")
    return found


def test_nothing_refers_to_a_file_outside_the_repository():
    problems = {}
    for path in _text_files():
        if path == Path(__file__).resolve():
            continue  # this file names the outside notes in order to forbid them
        found = _outside_references(path)
        if found:
            problems[_rel(path)] = found
    assert not problems, (
        "references to files that are not in the repository (cite docs/hailo_facts.md, "
        f"docs/convtasnet_facts.md, docs/exactness.md ... instead): {problems}"
    )


def _readme_commands(section: str | None = None) -> list[list[str]]:
    """The ``convtasnet-hailo ...`` lines of README.md's code blocks (of one ``## section``), as argv."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    if section is not None:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```\w*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split("#", 1)[0])
            if words and words[0].endswith("convtasnet-hailo"):
                commands.append(words[1:])
    return commands


def test_every_readme_command_parses():
    from convtasnet_hailo.cli import build_parser

    commands = _readme_commands()
    assert len(commands) >= 10
    parser = build_parser()
    has_build = "build" in parser._subparsers._group_actions[0].choices
    for argv in commands:
        if argv[0] == "build" and not has_build:
            continue  # `build` comes from helper "build"'s branch (issue 37); checked once merged
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README.md: `convtasnet-hailo {' '.join(argv)}` is not a valid command line")


def _readme_parses(argv: list[str]) -> None:
    from convtasnet_hailo.cli import build_parser

    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"README.md: `convtasnet-hailo {' '.join(argv)}` is not a valid command line")


def test_the_readme_device_path_runs_on_the_doubles(tmp_path, monkeypatch):
    """README.md's "On a Hailo device" commands, as written (relative folders included), on a tiny
    causal model and the test doubles of the DFC and HailoRT: build on "x86", BUILD/device copied
    to ./device (the Pi), then doctor, separate and stream from the bundle: every one exits 0."""
    import dataclasses
    import shutil

    import soundfile

    from convtasnet_hailo.cli import main
    from convtasnet_hailo.model.checkpoint import save_model
    from convtasnet_hailo.model.config import NormType
    from convtasnet_hailo.model.random_init import random_model
    from convtasnet_hailo.model.source import TINY
    from tests.conftest import speech_like
    from tests.doubles import runtime as runtime_double
    from tests.doubles import sdk as sdk_double

    (tmp_path / "work").mkdir()
    save_model(random_model(dataclasses.replace(TINY, causal=True, norm_type=NormType.CLN), seed=2), tmp_path / "M.pth")
    (tmp_path / "CALIB").mkdir()
    for name, seed in (("CALIB/a", 3), ("CALIB/b", 6), ("MIX", 4), ("IN", 5)):  # build holds one of CALIB out
        soundfile.write(tmp_path / f"{name}.wav", speech_like(1.0, 8000, seed), 8000, subtype="FLOAT")
    monkeypatch.chdir(tmp_path)
    commands = _readme_commands("On a Hailo device")
    assert [argv[0] for argv in commands] == ["build", "doctor", "separate", "stream"]
    sdk_double.install(monkeypatch)
    runtime_double.install(monkeypatch, arch="hailo8l")
    assert main(commands[0]) == 0, "README.md: the build line failed on the doubles"
    shutil.copytree(tmp_path / "BUILD" / "device", tmp_path / "device")  # the copy to the Pi
    runtime_double.install(monkeypatch, arch="hailo8l")
    monkeypatch.setattr("convtasnet_hailo.commands.doctor_bundle.PCI_DEVICES", tmp_path / "no-sysfs")
    for argv in commands[1:]:
        _readme_parses(argv)
        assert main(argv) == 0, f"README.md: `convtasnet-hailo {' '.join(argv)}` failed on the doubles"
