"""The command line: ``options`` (arguments to values, the shared option groups), one module per
group of commands (``build``, ``run``, ``verify``: each command's parser and its ``cmd_*``, which
builds the command's request and calls it), and ``main`` (the parser, dispatch, and the one error
handler). Nothing here computes; ``--help`` imports no torch."""

from .main import build_parser, main
from .options import RANDOM_PRESET_NAMES

__all__ = ["RANDOM_PRESET_NAMES", "build_parser", "main"]
