"""Running one command module from the CLI (the one place that prints a command's summary)."""

from __future__ import annotations


def dispatch(command, request) -> int:
    """Runs a ``commands/`` module on ``request``: its result written, its summary printed, its
    exit status returned."""
    result = command.run(request)
    command.write(result)
    for line in result.lines():
        print(line)
    return result.exit_status
