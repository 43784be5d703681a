"""Reading the files earlier runs wrote (manifests, run and report JSON) as untrusted input.

Whoever hands over an export or run folder may have edited it, so every field is checked against
the typed record it fills before use (:func:`field`), and every path a file names is resolved
inside the folder holding it (:func:`inside`): absolute names, ``..`` and symlinks that lead out
are refused, so reading an export never reads a file outside it.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import UserError
from .guard import regular_file

#: A sha256 digest as records write it: 64 lower-case hex digits.
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class RecordError(ValueError):
    """A field of a JSON record that is missing or of the wrong type (its message names it)."""


_MISSING = object()
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _describe(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def _is(value: Any, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not the integer 1 here
    if isinstance(value, float) and float in kinds and not math.isfinite(value):
        return False
    if isinstance(value, int) and not isinstance(value, bool) and float in kinds:
        return True
    return isinstance(value, kinds)


def field(data: Any, key: str, kind, where: str, default: Any = _MISSING) -> Any:
    """``data[key]`` when ``data`` is an object and the value has type ``kind`` (a type or a
    tuple of them; floats must be finite); ``default`` when the key is absent and one is given.
    Anything else raises :class:`RecordError` naming ``where.key``."""
    if not isinstance(data, Mapping):
        raise RecordError(f"{where} is {_describe(type(data))}, not an object")
    if key not in data:
        if default is not _MISSING:
            return default
        raise RecordError(f"{where} lacks {key!r}")
    value = data[key]
    if not _is(value, kind):
        raise RecordError(f"{where}.{key} is {value!r:.40}, not {_describe(kind)}")
    return value


def items(data: Any, kind, where: str) -> list:
    """Every element of the list ``data``, each of type ``kind``."""
    if not isinstance(data, list):
        raise RecordError(f"{where} is {_describe(type(data))}, not a list")
    for index, value in enumerate(data):
        if not _is(value, kind):
            raise RecordError(f"{where}[{index}] is {value!r:.40}, not {_describe(kind)}")
    return data


def read_json(path: Path, what: str, fix: str) -> Any:
    """The decoded JSON of ``path`` (a regular file); unreadable or malformed text is one line,
    "<path> is not a readable <what> (why); <fix>"."""
    regular_file(path, what, fix)
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not a readable {what} (not UTF-8 text at byte {exc.start}); {fix}") from None
    except ValueError as exc:
        raise UserError(f"{path} is not a readable {what} ({exc}); {fix}") from None


def inside(folder: Path, name: Any, what: str) -> Path:
    """``folder / name`` when ``name`` is a relative path that stays in ``folder`` after every
    symlink is followed; refused (:class:`RecordError`) when absolute, with ``..``, or leading out."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise RecordError(f"{what} {name!r:.60} is not a file name")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise RecordError(
            f"{what} {name!r} points outside its folder (absolute, or with ..); only names inside {folder} are read"
        )
    root = Path(os.path.realpath(folder))
    resolved = Path(os.path.realpath(root / relative))
    if resolved != root and root not in resolved.parents:
        raise RecordError(
            f"{what} {name!r} is a symlink out of {folder} (to {resolved}); only files inside it are read"
        )
    return Path(folder) / relative


def load_array(path: Path, what: str, fix: str, mmap: bool = False):
    """The numpy array in ``path`` (a regular ``.npy`` file), never unpickled: an object array
    (a pickle inside, which could run code) or a damaged file is one line naming ``what``.
    ``mmap``: mapped read-only, so only the parts indexed are read."""
    import numpy as np

    regular_file(path, what, fix)
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        pickled = "allow_pickle" in str(exc) or "Python objects" in str(exc)
        why = "it holds Python objects (a pickle), never loaded" if pickled else str(exc)
        raise UserError(f"{path} is not a readable {what} ({why}); {fix}") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{path} is not a readable {what} ({type(exc).__name__}: {exc}); {fix}") from None
