"""``--bundle`` and ``--export-dir`` as the source of truth on the command line: which settings the
user gave (defaults are marked, so a given value equal to the default still counts as given), and
:func:`settle`, which checks them against the folder (``runtime.settings.reconcile``) and fills in
the rest from it."""

from __future__ import annotations

import argparse
from typing import Any


class _DefaultInt(int):
    """An option's default, not a value the user typed (argparse keeps a non-string default as is)."""


class _DefaultFloat(float):
    """As _DefaultInt."""


class _DefaultStr(str):
    """As _DefaultInt (an option without ``type``: argparse passes its string default through)."""


_MARKERS = {int: _DefaultInt, float: _DefaultFloat, str: _DefaultStr}


def default(value):
    """``value`` marked as a default (:func:`was_given` is False for it); it behaves as the value."""
    return _MARKERS[type(value)](value)


def was_given(value: Any) -> bool:
    """True for a value the user passed: not None, not a store_true left off, not a marked default."""
    return value is not None and value is not False and not isinstance(value, tuple(_MARKERS.values()))


def plain(value: Any) -> Any:
    """A marked default as its plain type (records and hashes see ints, floats and strings)."""
    for kind, marker in _MARKERS.items():
        if isinstance(value, marker):
            return kind(value)
    return value


def mark_defaults(parser: argparse.ArgumentParser, *dests: str) -> None:
    """The defaults of ``dests`` (options a shared parent declares) marked as defaults, so that a
    bundle may fill them in while a value the user typed is checked against it."""
    for action in parser._actions:
        if action.dest in dests and action.default is not None:
            parser.set_defaults(**{action.dest: default(action.default)})


def add_bundle_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bundle",
        metavar="DIR",
        help="the device bundle `build` wrote (BUILD/device, or device.tar.gz unpacked): every setting comes "
        "from it (model, tile width, hop, stream plan, chip, HEFs); backend hailo_runtime where HailoRT "
        "imports, else --backend onnxruntime (its CPU stages)",
    )


#: Plan options: argparse dest -> (setting, the value a given flag stands for).
_FLAGS = {
    "no_fuse": ("fuse", False),
    "device_norms": ("device_norms", True),
    "gln_in_stages": ("gln_in_stages", True),
    "halo_edges": ("halo_edges", True),
    "skip_sums_in_stages": ("skip_sums_in_stages", True),
}
_VALUES = ("tile_w", "hop_ms", "plan", "hw_arch", "device", "link", "block_chan")


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings a folder can fix that the user passed (``runtime.settings.OPTIONS``)."""
    given = {key: getattr(args, key) for key in _VALUES if was_given(getattr(args, key, None))}
    if isinstance(given.get("tile_w"), list):  # parity's several widths: each must be the folder's
        widths = sorted(set(given["tile_w"]))
        given["tile_w"] = widths[0] if len(widths) == 1 else tuple(widths)
    given.update({key: value for dest, (key, value) in _FLAGS.items() if getattr(args, dest, False)})
    return given


def _apply(args: argparse.Namespace, values: dict[str, Any]) -> None:
    for key in _VALUES:
        if key in values and hasattr(args, key):
            many = key == "tile_w" and getattr(args, "command", "") == "parity"  # parity takes a list of widths
            setattr(args, key, [values[key]] if many else values[key])
    for dest, (key, _) in _FLAGS.items():
        if key in values and hasattr(args, dest):
            setattr(args, dest, not values[key] if dest == "no_fuse" else values[key])


def _refuse_beside_bundle(args: argparse.Namespace, keep_model: bool) -> None:
    from ..errors import UserError

    beside = (("export_dir", "--export-dir"), ("hef_dir", "--hef-dir")) + (
        () if keep_model else (("model", "--model"),)
    )
    for dest, option in beside:
        if getattr(args, dest, None):
            raise UserError(
                f"--bundle {args.bundle} carries the model, its export and its HEFs: drop {option} (or drop "
                "--bundle to run from separate folders)"
            )
    if getattr(args, "random_preset", None):
        raise UserError(f"--bundle {args.bundle} carries its model: drop --random-preset")


def settle(args: argparse.Namespace, keep_model: bool = False):
    """``--bundle`` (or an ``--export-dir`` holding one export): the user's settings checked
    against it and the rest taken from it, in ``args``; the backend chosen for a bundle. Returns
    the bundle (None without one). Marked defaults become plain values. ``keep_model``: --model
    is the float reference (parity), checked against the bundle's checkpoint hash."""
    from pathlib import Path

    from ..runtime.settings import fixed_by_bundle, fixed_by_export, reconcile

    given = given_settings(args)
    bundle = None
    if getattr(args, "bundle", None):
        from ..runtime.bundle import read_bundle
        from ..runtime.settings import bundle_backend

        _refuse_beside_bundle(args, keep_model)
        bundle = read_bundle(args.bundle)
        _apply(args, reconcile(given, fixed_by_bundle(bundle)))
        backend = getattr(args, "backend", None)
        args.backend = bundle_backend(bundle, plain(backend) if was_given(backend) else None)
        args.export_dir = str(bundle.export_dir)
        args.hef_dir = str(bundle.hef_dir) if args.backend == "hailo_runtime" else None
    elif getattr(args, "export_dir", None):
        _apply(args, reconcile(given, fixed_by_export(Path(args.export_dir))))
    for key, value in vars(args).items():
        setattr(args, key, plain(value))
    return bundle


def bundle_reference(args: argparse.Namespace):
    """The float model a bundle was made from, with its weights (parity's reference): --model,
    checked against the bundle's sha256, else what its export recorded (a seeded random model, or
    the checkpoint by its path and hash)."""
    from pathlib import Path

    from ..runtime.sources import ModelChoice, resolve

    return resolve(ModelChoice(model=args.model, export_dir=Path(args.export_dir), weights=True))
