"""What a command reads is never what it writes: the one guard every writing command goes through.

Before any work a command declares the files it reads (inputs, references, the model, metadata,
export and noise folders) and the files it will write; :func:`check_run_files` resolves both
(symlinks followed, hard links compared by inode) and refuses, in one line naming both, an output
that is an input, or two outputs that are one file. Inside a :func:`session` (the CLI runs every
command in one) the inputs stay protected for the rest of the run: every file written through
``files.written_atomically`` or :func:`claim` is compared with them again, so an output whose
name is only known later (a stage file, a calibration array) cannot replace an input either.

Inputs are opened only when they are regular files (:func:`regular_file`): a FIFO would block the
read forever, a device would stream without end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UserError


@dataclasses.dataclass(frozen=True)
class Given:
    """One file (or folder) a command reads, with the option that named it (for the message)."""

    role: str  # "input", "--s1", "--model", "--export-dir", ...
    path: Path


@dataclasses.dataclass(frozen=True)
class _Identity:
    """Where a path points: its resolved name and, when it exists, its inode (hard links)."""

    resolved: Path
    inode: tuple[int, int] | None

    @classmethod
    def of(cls, path: Path) -> _Identity:
        resolved = Path(os.path.realpath(os.path.expanduser(path)))
        try:
            info = os.stat(resolved)
        except OSError:
            return cls(resolved, None)
        return cls(resolved, (info.st_dev, info.st_ino))

    def same(self, other: _Identity) -> bool:
        return self.resolved == other.resolved or (self.inode is not None and self.inode == other.inode)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(path: str | os.PathLike, what: str, fix: str) -> Path:
    """``path`` when it is a regular file (symlinks followed), else one line naming what it is:
    missing, a folder, a FIFO, a device. Checked with ``stat`` before anything opens it.
    ``what``: how the message names it ("audio file", "metadata file"); ``fix``: what to pass."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist; {fix}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}; {fix}") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{what} {path} is a folder; {fix}")
    if not stat.S_ISREG(mode):
        raise UserError(f"{what} {path} is {_kind(mode)}, which is read only once or never ends; {fix}")
    return path


def _read_identities(given: Given) -> list[tuple[Given, _Identity]]:
    """A file's identity; for a folder, every regular file directly inside it (its subfolders are
    where commands write their products: an export's hailo/ and calib/)."""
    path = Path(given.path)
    if path.is_dir():
        with contextlib.suppress(OSError):
            return [
                (Given(f"a file of {given.role}", child), _Identity.of(child))
                for child in sorted(path.iterdir())
                if child.is_file()
            ]
        return []
    return [(given, _Identity.of(path))]


def _collision(output: Path, given: Given) -> UserError:
    return UserError(
        f"{output} would overwrite {given.role} {given.path}, which this command reads; pass another "
        "--out (or output name), or move that file"
    )


class _Protected:
    """The inputs of the running command (one per process: the CLI runs one command)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = False
        self.entries: list[tuple[Given, _Identity]] = []
        self.locks: list[Path] = []  # folder lock files this session holds (removed when it ends)


_PROTECTED = _Protected()


@contextlib.contextmanager
def session() -> Iterator[None]:
    """While it is open, the inputs :func:`check_run_files` was told of stay protected."""
    with _PROTECTED.lock:
        _PROTECTED.active, _PROTECTED.entries = True, []
    try:
        yield
    finally:
        with _PROTECTED.lock:
            _PROTECTED.active, _PROTECTED.entries = False, []
            held, _PROTECTED.locks = _PROTECTED.locks, []
        for lock in held:
            with contextlib.suppress(OSError):
                lock.unlink()


def _givens(reads: Iterable[Given | tuple[str, str | os.PathLike | None]]) -> list[Given]:
    out = []
    for item in reads:
        given = item if isinstance(item, Given) else Given(item[0], item[1])
        if given.path is not None and str(given.path) != "":
            out.append(Given(given.role, Path(given.path)))
    return out


def check_run_files(
    reads: Iterable[Given | tuple[str, str | os.PathLike | None]], writes: Iterable[str | os.PathLike | None]
) -> None:
    """Refuses, before any work, an output that is one of the files read (by name, symlink or hard
    link; a folder read counts every file directly inside it) and two outputs that are one file.
    ``reads``: (role, path) pairs, None paths skipped. Inside a :func:`session`, protects the reads
    for the rest of the run."""
    read_ids = [pair for given in _givens(reads) for pair in _read_identities(given)]
    seen: dict[Path, Path] = {}
    for output in (Path(w) for w in writes if w is not None and str(w) != ""):
        identity = _Identity.of(output)
        for given, read in read_ids:
            if identity.same(read):
                raise _collision(output, given)
        if identity.resolved in seen:
            raise UserError(
                f"{seen[identity.resolved]} and {output} are one file, and both are outputs of this "
                "command; give them different names"
            )
        seen[identity.resolved] = output
    with _PROTECTED.lock:
        if _PROTECTED.active:
            _PROTECTED.entries.extend(read_ids)


def claim(path: str | os.PathLike) -> None:
    """Called before every write: refuses to replace a file the running command reads."""
    with _PROTECTED.lock:
        if not _PROTECTED.active or not _PROTECTED.entries:
            return
        entries = list(_PROTECTED.entries)
    identity = _Identity.of(Path(path))
    for given, read in entries:
        if identity.same(read):
            raise _collision(Path(path), given)


#: The file that marks a folder as in use by a running command (its pid and host inside).
LOCK_NAME = ".convtasnet-hailo.lock"


def _holder(lock: Path) -> tuple[int, str] | None:
    """(pid, host) written in ``lock``, or None when it cannot be read as one (a torn write)."""
    try:
        pid, host = lock.read_text().split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def lock_folder(folder: str | os.PathLike, command: str) -> None:
    """Inside a :func:`session`, marks ``folder`` as used by this process until the session ends;
    a folder another live process holds is refused in one line. A lock left by a process that is
    gone (same host) is stale and taken over. Outside a session (the Python API) it does nothing."""
    import socket

    with _PROTECTED.lock:
        if not _PROTECTED.active:
            return
    lock, me = Path(folder) / LOCK_NAME, (os.getpid(), socket.gethostname())
    for _ in range(2):
        try:
            with open(lock, "x") as handle:
                handle.write(f"{me[0]} {me[1]} {command}\n")
        except FileExistsError:
            holder = _holder(lock)
            if holder == me:
                return  # this process holds it already (the demo runs several commands)
            if holder is not None and (holder[1] != me[1] or _alive(holder[0])):
                raise UserError(
                    f"{folder} is in use by another convtasnet-hailo run (pid {holder[0]} on {holder[1]}); "
                    f"wait for it to finish or pass another folder (a stale lock: delete {lock})"
                ) from None
            with contextlib.suppress(OSError):
                lock.unlink()  # stale (its process is gone) or torn: taken over
            continue
        with _PROTECTED.lock:
            _PROTECTED.locks.append(lock)
        return
    raise UserError(f"{folder}: could not take its lock {lock}; delete it if no run is using the folder")
