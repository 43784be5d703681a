"""Files that travel with a task (Ray's object store): paths relative to a run folder -> bytes."""

from __future__ import annotations

from pathlib import Path

FileBundle = dict  # relative path (str, '/'-separated) -> bytes, or a Ray object reference to them


def collect_folder(root: Path, relative_dir: str, since: float | None = None) -> FileBundle:
    """Every file under ``root/relative_dir`` (modified after ``since``, when given)."""
    folder = root / relative_dir
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and (since is None or p.stat().st_mtime >= since)
    }


def unpack(bundle: FileBundle, root: Path) -> None:
    """Writes every file of ``bundle`` under ``root`` (atomically: a crash leaves no half file)."""
    from ..files import write_bytes_atomically

    for relative, data in bundle.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(target, data if isinstance(data, bytes) else _fetched(data))


def _fetched(reference) -> bytes:
    import ray  # only a Ray task holds references

    return ray.get(reference)
