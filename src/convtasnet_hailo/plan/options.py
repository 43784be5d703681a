"""How a model is cut into a plan, as one typed record: :class:`PlanOptions`, and what an export
recorded about the plan it wrote, :class:`PlanRecord`.

Standard library only (the export manifest, the compile driver and the device side read these
without torch). Every command, the plan builder and both manifests use these records; none reads
a plan option out of a dict.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

from ..errors import UserError
from ..records import RecordError, field
from . import names

#: The widest conv output that compiled in the seed's runs (hailo_rules.CheckLimits): the default
#: cap on a receptive-field window (``plan.rf_windows``).
DEFAULT_MAX_WIDTH = 512
#: The tile width the commands run and export at unless told otherwise.
DEFAULT_TILE_W = 256


class PlanPath(str, enum.Enum):
    """Which part of the model a plan covers (the runbook's three parity paths)."""

    DECODER = "decoder"  # (tf, masks) -> waveforms
    MASKER = "masker"  # tf -> masks
    FULL_CHAIN = "full-chain"  # waveform -> waveforms

    @property
    def inputs(self) -> tuple[str, ...]:
        return {
            PlanPath.DECODER: (names.ENCODER, names.MASK_OUTPUT, names.WAV),
            PlanPath.MASKER: (names.ENCODER,),
            PlanPath.FULL_CHAIN: (names.WAV,),
        }[self]

    @property
    def outputs(self) -> tuple[str, ...]:
        """What the path delivers (kept by every plan, fused or not)."""
        return (names.MASKER_OUTPUT,) if self is PlanPath.MASKER else (names.FINAL_OUTPUT,)


#: The options only the float backends serve, with their flags (``refuse_float_only``).
FLOAT_ONLY = {
    "gln_in_stages": "--gln-in-stages",
    "halo_edges": "--halo-edges",
    "skip_sums_in_stages": "--skip-sums-in-stages",
}


def _optional_positive(value: int | None, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"PlanOptions.{name} is {value!r}: a positive integer or None")


@dataclasses.dataclass(frozen=True)
class PlanOptions:
    """How the model is cut: ``block_chan`` splits wider 1x1 convs into channel blocks; ``fuse``
    merges runs of stages no host step separates (the default; ``--no-fuse`` keeps one stage per
    conv group); ``device_norms`` and ``gln_in_stages`` move norms into the stages."""

    block_chan: int | None = None
    fuse: bool = True
    device_norms: bool = False  # cLN norms as device ops inside the stages (``ChannelNorm``)
    gln_in_stages: bool = False  # gLN moments and affine inside the stages (``plan.gln_in_stages``)
    halo_edges: bool = False  # halo stages read tile + edges, joined in-stage (``plan.halo_edges``)
    skip_sums_in_stages: bool = False  # skip sums added by the stages (``plan.skip_sums_in_stages``)
    #: receptive-field windows for hops of this many frames (``plan.rf_windows``), at most
    #: ``rf_max_width`` frames wide
    rf_hop_frames: int | None = None
    rf_max_width: int = DEFAULT_MAX_WIDTH

    def __post_init__(self) -> None:
        # block_chan 0 and the like are refused by the builder with a user-facing line
        _optional_positive(self.rf_hop_frames, "rf_hop_frames")
        _optional_positive(self.rf_max_width, "rf_max_width")

    @property
    def float_only(self) -> tuple[str, ...]:
        """The flags of the float-only options set here (``builder.refuse_float_only``)."""
        return tuple(flag for name, flag in FLOAT_ONLY.items() if getattr(self, name))

    def to_json(self) -> dict[str, Any]:
        return {
            "block_chan": self.block_chan,
            "fused": self.fuse,
            "device_norms": self.device_norms,
            "gln_in_stages": self.gln_in_stages,
            "halo_edges": self.halo_edges,
            "skip_sums_in_stages": self.skip_sums_in_stages,
            "rf_hop_frames": self.rf_hop_frames,
            "rf_max_width": self.rf_max_width,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "plan") -> PlanOptions:
        """Reads :meth:`to_json`'s record as untrusted input. Absent keys take the value an export
        made before that option existed had: unfused, host norms, no windows."""
        flags = {
            name: field(data, key, bool, where, False)
            for name, key in (
                ("fuse", "fused"),
                ("device_norms", "device_norms"),
                ("gln_in_stages", "gln_in_stages"),
                ("halo_edges", "halo_edges"),
                ("skip_sums_in_stages", "skip_sums_in_stages"),
            )
        }
        try:
            return cls(
                block_chan=field(data, "block_chan", (int, type(None)), where, None),
                rf_hop_frames=field(data, "rf_hop_frames", (int, type(None)), where, None),
                rf_max_width=field(data, "rf_max_width", (int, type(None)), where, None) or DEFAULT_MAX_WIDTH,
                **flags,
            )
        except ValueError as exc:
            raise RecordError(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class PlanRecord:
    """What an export wrote about its plan: the path, the tile width the stages run at, the
    options, and what the builder made of them (stage count, window width)."""

    path: PlanPath
    tile_w: int | None
    options: PlanOptions = PlanOptions(fuse=False)
    expose_internal: bool = False
    opset: int | None = None
    monolithic: bool = False
    n_stages: int | None = None
    rf_window: int | None = None
    length: int | None = None  # a monolithic export's fixed input length, in samples

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path.value,
            "tile_w": self.tile_w,
            **self.options.to_json(),
            "expose_internal": self.expose_internal,
            "opset": self.opset,
            "monolithic": self.monolithic,
            "n_stages": self.n_stages,
            "rf_window": self.rf_window,
            **({"length": self.length} if self.length is not None else {}),
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "plan") -> PlanRecord:
        path = field(data, "path", str, where)
        if path not in {p.value for p in PlanPath}:
            raise RecordError(f"{where}.path {path!r} is not one of {', '.join(p.value for p in PlanPath)}")
        return cls(
            PlanPath(path),
            field(data, "tile_w", (int, type(None)), where),
            PlanOptions.from_json(data, where),
            field(data, "expose_internal", bool, where, False),
            field(data, "opset", (int, type(None)), where, None),
            field(data, "monolithic", bool, where, False),
            field(data, "n_stages", (int, type(None)), where, None),
            field(data, "rf_window", (int, type(None)), where, None),
            field(data, "length", (int, type(None)), where, None),
        )


#: The float-only options' flags (``refuse_float_only``).
FLOAT_ONLY_FLAGS = tuple(FLOAT_ONLY.values())


def refuse_float_only(options: Sequence[str], what: str) -> None:
    """The one-line refusal for a plan (or export) built with float-only options (``float_only_options``):
    whether the Dataflow Compiler maps them is unconfirmed (docs/hailo_facts.md, "Ops and shapes"),
    and the last two only move host work onto the device at the link's expense."""
    if options:
        raise UserError(
            f"{what}: this plan was built with {' and '.join(options)}, for the float backends "
            "(onnxruntime, torch_proxy); whether the Dataflow Compiler maps a global average pool in a "
            "norm path, per-tile inputs or a Concat on the time axis is unconfirmed (docs/hailo_facts.md): "
            f"build the plan without {', '.join(FLOAT_ONLY_FLAGS)} for compile and the Hailo backends"
        )
