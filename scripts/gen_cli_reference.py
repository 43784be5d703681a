#!/usr/bin/env python3
"""Write docs/cli.md, the CLI reference, from the argparse parser itself.

Walks ``convtasnet_hailo.cli.build_parser()``: one section per subcommand with its usage and a
table of its arguments (values, default, help). The page is rendered from the parser's actions,
not from ``format_help()``, so it reads the same on Python 3.10-3.13 and at any terminal width.
tests/test_docs.py renders it in memory and fails when docs/cli.md differs.

    PYTHONPATH=src python scripts/gen_cli_reference.py            # writes docs/cli.md
    PYTHONPATH=src python scripts/gen_cli_reference.py --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "cli.md"
PROG = "convtasnet-hailo"

HEADER = f"""# CLI reference

Generated from `convtasnet_hailo.cli.build_parser()` by `scripts/gen_cli_reference.py`; do not
edit by hand. `tests/test_docs.py` fails when this page and the parser disagree: run
`PYTHONPATH=src python scripts/gen_cli_reference.py` after changing an option.

Exit status of every command: 0 done; 1 a check failed (parity outside its contract, a stage
that did not compile, an export that breaks a rule); 2 bad input or environment, one line on
stderr naming the problem and the fix; 3 a bug (its traceback under a line saying so); 130
interrupted (files already finished are kept).

Which command does what in the device path: [pipeline.md](pipeline.md). `{PROG} COMMAND --help`
prints the same options.
"""


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text.replace("<", "&lt;").replace(">", "&gt;")  # <stem> would read as an HTML tag


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%" in text:  # argparse's own expansion, e.g. %(default)s
        text = text % {**vars(action), "prog": PROG}
    return _cell(text)


def _values(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "flag"
    if action.choices is not None:
        values = ", ".join(f"`{choice}`" for choice in action.choices)
    else:
        values = f"`{action.metavar or action.dest.upper()}`"
    if action.nargs in ("+", "*"):
        values += " ..."
    elif action.nargs == "?":
        values += " (optional)"
    return values


def _default(action: argparse.Action) -> str:
    default = action.default
    if action.nargs == 0 or default is None or default is argparse.SUPPRESS:
        return ""
    if isinstance(default, (list, tuple)):
        default = " ".join(str(value) for value in default)
    return f"`{_cell(default)}`"


def _name(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.dest}`"
    required = " (required)" if action.required else ""
    return ", ".join(f"`{option}`" for option in action.option_strings) + required


def _usage(name: str, parser: argparse.ArgumentParser) -> str:
    words = [PROG, name]
    for action in _arguments(parser):
        if action.option_strings and action.required:
            words.append(f"{action.option_strings[0]} {action.metavar or action.dest.upper()}")
    if any(action.option_strings and not action.required for action in _arguments(parser)):
        words.append("[options]")
    for action in _arguments(parser):
        if not action.option_strings:
            shown = action.metavar or action.dest.upper()
            if action.choices is not None:
                shown = "{" + ",".join(action.choices) + "}"
            words.append(
                {"+": f"{shown} [{shown} ...]", "?": f"[{shown}]", "*": f"[{shown} ...]"}.get(action.nargs, shown)
            )
    return " ".join(words)


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Positionals first, then options, each in the order the parser declares them; no --help."""
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    return [a for a in actions if not a.option_strings] + [a for a in actions if a.option_strings]


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every subcommand, in declaration order."""
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    aliases = {
        name: [a for a, c in sub.choices.items() if c is child and a not in helps]
        for name, child in sub.choices.items()
        if name in helps
    }
    return [
        (name, helps[name] + "".join(f" (old name: `{a}`)" for a in aliases[name]), child)
        for name, child in sub.choices.items()
        if name in helps
    ]  # an alias gets no section of its own


def _section(name: str, summary: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [
        f"## `{PROG} {name}`",
        "",
        _cell(summary) + ".",
        "",
        "```",
        _usage(name, parser),
        "```",
        "",
        "| argument | values | default | what it does |",
        "|---|---|---|---|",
    ]
    for action in _arguments(parser):
        lines.append(f"| {_name(action)} | {_values(action)} | {_default(action)} | {_help(action)} |")
    return lines + [""]


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole page, as docs/cli.md must hold it."""
    if parser is None:
        from convtasnet_hailo.cli import build_parser

        parser = build_parser()
    commands = _subcommands(parser)
    lines = HEADER.splitlines() + ["", "| command | what it does |", "|---|---|"]
    lines += [f"| [`{name}`](#{PROG}-{name}) | {_cell(summary)} |" for name, summary, _ in commands]
    lines.append("")
    for name, summary, child in commands:
        lines += _section(name, summary, child)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is not current; write nothing")
    parser.add_argument("--out", default=str(OUT), help="where to write (default docs/cli.md)")
    args = parser.parse_args(argv)
    text = render()
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is stale: run scripts/gen_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
