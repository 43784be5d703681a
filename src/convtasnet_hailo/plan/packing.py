"""Packing: the plan's stages grouped into HEFs and network groups that HailoRT can configure.

HailoRT 4.23 (Hailo-8 / Hailo-8L) holds at most 32 configured network groups per device, a HEF
carries at most 8 network groups and a network group at most 8 networks (HAILO_FACTS.md,
"Runtime limits": ``CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS``, ``HAILO_MAX_NETWORK_GROUPS``,
``HAILO_MAX_NETWORKS_IN_NETWORK_GROUP``). One HEF per stage fails at the 33rd stage.

Stages are packed as *networks* of a network group: consecutive stages' HARs are joined with the
DFC (``ClientRunner.join``, Model Zoo ``multi_main.py``) and compiled into one HEF holding one
network group of up to 8 networks. HailoRT runs one network of such a group on its own through
the vstream API: ``InputVStreamParams.make(ng, ..., network_name=...)`` ("Network name of the
requested virtual stream params") and ``InferVStreams``, whose input params decide which networks
take part ("Only members of this dict will take part in the inference"; ``pyhailort.py``, branch
``hailo8``). The InferModel API cannot: ``create_infer_model(hef, name)`` takes network-group
names only, otherwise ``HAILO_NOT_IMPLEMENTED`` "Passing network name is not supported yet!"
(``infer_model.cpp``). Unconfirmed: that a joined HAR compiles into one network group (not one per
joined model) and that a network of a multi-context group runs while its siblings idle.
``networks_per_group=1`` keeps one network group per stage (8 per HEF would need a multi-group
HEF the DFC makes from one model, so such HEFs hold one group each, too).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from ..errors import UserError


@dataclasses.dataclass(frozen=True)
class RuntimeLimits:
    """HailoRT's limits, in one place; override for other runtimes (e.g. HailoRT 5.x: 26)."""

    network_groups_per_device: int = 32
    network_groups_per_hef: int = 8
    networks_per_network_group: int = 8

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) < 1:
                raise UserError(f"runtime limit {field.name} must be >= 1, got {getattr(self, field.name)}")


HAILORT_4_23 = RuntimeLimits()


@dataclasses.dataclass(frozen=True)
class NetworkGroup:
    name: str
    networks: tuple[str, ...]  # stage names, one network each


@dataclasses.dataclass(frozen=True)
class HefPack:
    name: str
    network_groups: tuple[NetworkGroup, ...]


@dataclasses.dataclass(frozen=True)
class Packing:
    """Which HEF and network group holds each stage."""

    hefs: tuple[HefPack, ...]
    limits: RuntimeLimits

    @property
    def network_groups(self) -> tuple[NetworkGroup, ...]:
        return tuple(group for hef in self.hefs for group in hef.network_groups)

    def location(self, stage: str) -> tuple[str, str]:
        """(HEF name, network group name) of ``stage``."""
        for hef in self.hefs:
            for group in hef.network_groups:
                if stage in group.networks:
                    return hef.name, group.name
        raise KeyError(stage)

    @property
    def windows(self) -> int:
        """How many times the device must be (re)configured to run the plan once: 1 when every
        network group fits at once, else the runtime configures in windows."""
        return -(-len(self.network_groups) // self.limits.network_groups_per_device)

    def violations(self) -> list[str]:
        """Limits this packing breaks, each with what to change (empty when it configures at once)."""
        note = self.window_note()
        return self.hard_violations() + ([note] if note else [])

    def window_note(self) -> str | None:
        """When there are more network groups than a device configures at once: the cost and the
        alternatives (hailo_runtime still runs it, in windows)."""
        groups = len(self.network_groups)
        limits = self.limits
        if groups <= limits.network_groups_per_device:
            return None
        stages = sum(len(g.networks) for g in self.network_groups)
        fixes = ["a wider or no --block-chan (channel-block stages are not fused)", "fusion on (no --no-fuse)"]
        if max(len(g.networks) for g in self.network_groups) < limits.networks_per_network_group:
            fixes.insert(0, f"--networks-per-group {limits.networks_per_network_group} (the default)")
        return (f"{stages} stages need {groups} network groups; a device configures at most "
                f"{limits.network_groups_per_device} at once (\"maximum allowed core-ops: "
                f"{limits.network_groups_per_device}\"): hailo_runtime would reconfigure {self.windows} windows per "
                f"utterance. Fewer network groups avoid it: {', '.join(fixes)}")

    def hard_violations(self) -> list[str]:
        """Limits no runtime strategy gets around: network groups per HEF, networks per group."""
        problems = []
        limits = self.limits
        for hef in self.hefs:
            if len(hef.network_groups) > limits.network_groups_per_hef:
                problems.append(f"HEF {hef.name} holds {len(hef.network_groups)} network groups; HailoRT takes at "
                                f"most {limits.network_groups_per_hef} per HEF (\"Too many network_groups on a given "
                                "HEF\")")
            for group in hef.network_groups:
                if len(group.networks) > limits.networks_per_network_group:
                    problems.append(f"network group {group.name} holds {len(group.networks)} networks; at most "
                                    f"{limits.networks_per_network_group}")
        return problems

    def to_json(self) -> dict:
        return {"limits": dataclasses.asdict(self.limits),
                "hefs": [{"name": h.name, "network_groups": [{"name": g.name, "networks": list(g.networks)}
                                                              for g in h.network_groups]} for h in self.hefs]}

    @classmethod
    def from_json(cls, data: dict) -> "Packing":
        return cls(tuple(HefPack(h["name"], tuple(NetworkGroup(g["name"], tuple(g["networks"]))
                                                  for g in h["network_groups"])) for h in data["hefs"]),
                   RuntimeLimits(**data["limits"]))


def pack_stages(stages: Sequence[str], limits: RuntimeLimits = HAILORT_4_23,
                networks_per_group: int | None = None) -> Packing:
    """Consecutive stages fill network groups of ``networks_per_group`` networks (default: as
    many as HailoRT allows, 8); each group is one joined HEF. Names: ``pack<j>`` for both."""
    per_group = networks_per_group or limits.networks_per_network_group
    if not 1 <= per_group <= limits.networks_per_network_group:
        raise UserError(f"--networks-per-group {per_group}: choose 1..{limits.networks_per_network_group}")
    return Packing(tuple(HefPack(f"pack{j}", (NetworkGroup(f"pack{j}", tuple(stages[i:i + per_group])),))
                         for j, i in enumerate(range(0, len(stages), per_group))), limits)


def one_hef_per_stage(stages: Sequence[str], limits: RuntimeLimits = HAILORT_4_23) -> Packing:
    """The layout before packing: every stage its own HEF and network group."""
    return Packing(tuple(HefPack(name, (NetworkGroup(name, (name,)),)) for name in stages), limits)
