"""Output files are never half-written: each is written under a temporary name in its own folder
and renamed into place (``os.replace`` is atomic on POSIX), so an interrupted or failed write
leaves either the old file or nothing under the final name, never a partial one; and never
written over a file the command reads (``guard``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .guard import claim

PARTIAL_SUFFIX = ".partial"


def partial_name(path: Path) -> Path:
    """Where ``path`` is written before the rename: hidden, same folder, same filesystem."""
    return path.with_name(f".{path.name}.{os.getpid()}{PARTIAL_SUFFIX}")


@contextlib.contextmanager
def written_atomically(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write; on success it becomes ``path``, on any exception
    (KeyboardInterrupt included) it is removed and ``path`` is untouched. A file the running
    command reads is never replaced (``guard.claim``)."""
    path = Path(path)
    claim(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create folder {path.parent}: {exc.strerror}; pass a writable location") from None
    if path.is_dir():
        raise UserError(f"{path} is a folder, where a file is to be written; move it or choose another name")
    temporary = partial_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    with written_atomically(path) as temporary:
        temporary.write_bytes(data)


def write_text_atomically(path: str | Path, text: str) -> None:
    with written_atomically(path) as temporary:
        temporary.write_text(text)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (checkpoints and HEFs can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
