"""Packing: the plan's stages grouped into HEFs and network groups that HailoRT can configure
and run, and the execution mode that runs them.

Limits (docs/hailo_facts.md, "Runtime limits"; hailo-ai/hailort): a device holds at most 32 configured
network groups (core-ops) on HailoRT 4.23 (Hailo-8/8L, branch ``hailo8``) and 26 on HailoRT 5.x
(Hailo-10H, branch ``master``): ``common/include/control_protocol.h``
``CONTROL_PROTOCOL__MAX_CONTEXT_SWITCH_APPLICATIONS``. A HEF carries at most 8 network groups and
a network group at most 8 networks (``hailort.h``).

How HailoRT runs a stage that is invoked on its own decides the packing. There are two ways,
the execution modes:

- ``scheduled_groups``: every stage its own network group (its own HEF), all configured on one
  VDevice under the model scheduler (ROUND_ROBIN, set explicitly: the default of C++ and of the
  5.x binding, ``hailort_defaults.cpp``, but the 4.23 Python binding's ``VDeviceParams.default()``
  sets NONE, ``pyhailort.cpp``), each called in turn; more groups than a device holds run in
  configuration windows, each on a VDevice of its own (a configured slot is freed only with its
  device: ``vdma/vdma_device.cpp``). The
  scheduler dispatches a frame only when *every* stream of the core-op has a transfer
  (``vdevice/scheduler/infer_request_accumulator.cpp``), so a group of several networks fed one
  network at a time never runs: that is why a group here holds one stage. The only mode on
  HailoRT 5 (Hailo-10H), whose InferModel takes network-group names only
  (``net_flow/pipeline/infer_model.cpp``: "Passing network name is not supported yet!").
  Several network groups in one HEF (up to 8) would save files, not calls; the DFC's public API
  joins models into one group (``ClientRunner.join``; community.hailo.ai/t/91), and no public
  material shows it emitting a HEF of several groups, so a group is a HEF.
- ``activated_packs``: up to 8 consecutive stages joined as networks of one single-context
  network group, on a VDevice with scheduling NONE: one pack activated at a time
  (``core_op/core_op.cpp``: "Cant activate network because a network is already activated"), its
  networks run one by one through vstream pipelines over that network alone. HailoRT allows such
  partial pipelines only for single-context groups (``net_flow/pipeline/inference_pipeline.cpp``:
  "For multi-context network groups, the pipeline must be created for all available networks");
  whether a pack is single-context is known only once compiled (the HEF says), so the backend
  checks it and refuses a multi-context pack.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence

from ..errors import UserError


class ExecutionMode(str, enum.Enum):
    SCHEDULED_GROUPS = "scheduled_groups"
    ACTIVATED_PACKS = "activated_packs"


EXECUTION_MODES = tuple(m.value for m in ExecutionMode)


@dataclasses.dataclass(frozen=True)
class RuntimeLimits:
    """HailoRT's limits, in one place (HailoRT 4.23: 32 network groups per device; 5.x: 26)."""

    network_groups_per_device: int = 32
    network_groups_per_hef: int = 8
    networks_per_network_group: int = 8

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) < 1:
                raise UserError(f"runtime limit {field.name} must be >= 1, got {getattr(self, field.name)}")


HAILORT_4_23 = RuntimeLimits()
HAILORT_5 = RuntimeLimits(network_groups_per_device=26)
#: Architectures HailoRT 5.x runs (InferModel only); everything else is HailoRT 4.x.
HAILORT_5_ARCHS = ("hailo10h",)


def limits_for(hw_arch: str) -> RuntimeLimits:
    return HAILORT_5 if hw_arch in HAILORT_5_ARCHS else HAILORT_4_23


def resolve_mode(mode: str | None, networks_per_group: int | None, hw_arch: str = "hailo8") -> ExecutionMode:
    """The execution mode an export is made for: the one asked, else ``activated_packs`` when
    stages are joined several to a group, else ``scheduled_groups``. Impossible pairs are refused."""
    if mode is not None and mode not in EXECUTION_MODES:
        raise UserError(f"--execution-mode {mode!r}: choose {' or '.join(EXECUTION_MODES)}")
    chosen = (
        ExecutionMode(mode)
        if mode
        else (ExecutionMode.ACTIVATED_PACKS if (networks_per_group or 1) > 1 else ExecutionMode.SCHEDULED_GROUPS)
    )
    if chosen is ExecutionMode.SCHEDULED_GROUPS and (networks_per_group or 1) > 1:
        raise UserError(
            f"--networks-per-group {networks_per_group} with --execution-mode scheduled_groups: the "
            "scheduler dispatches a frame only when every stream of a network group has one "
            "(HailoRT infer_request_accumulator.cpp), so stages joined in one group cannot run one at a "
            "time; use --execution-mode activated_packs or --networks-per-group 1"
        )
    if chosen is ExecutionMode.ACTIVATED_PACKS and hw_arch in HAILORT_5_ARCHS:
        raise UserError(
            f"--execution-mode activated_packs on {hw_arch}: HailoRT 5 runs only InferModel, which takes "
            'whole network groups ("Passing network name is not supported yet!"); use '
            "--execution-mode scheduled_groups"
        )
    return chosen


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
    mode: ExecutionMode = ExecutionMode.SCHEDULED_GROUPS

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
            fixes.insert(
                0,
                f"--execution-mode activated_packs --networks-per-group "
                f"{limits.networks_per_network_group} (if every pack compiles single-context)",
            )
        return (
            f"{stages} stages need {groups} network groups; a device configures at most "
            f'{limits.network_groups_per_device} at once ("maximum allowed core-ops: '
            f'{limits.network_groups_per_device}"): hailo_runtime reconfigures {self.windows} windows per '
            f"utterance. Fewer network groups avoid it: {', '.join(fixes)}"
        )

    def hard_violations(self) -> list[str]:
        """Limits no runtime strategy gets around (network groups per HEF, networks per group),
        and packs the recorded execution mode cannot run."""
        problems = []
        limits = self.limits
        if self.mode is ExecutionMode.SCHEDULED_GROUPS:
            joined = [g for g in self.network_groups if len(g.networks) > 1]
            if joined:
                problems.append(
                    f"network group {joined[0].name} joins {len(joined[0].networks)} stages, which "
                    "execution mode scheduled_groups cannot run one at a time (the scheduler waits for "
                    "every stream of a group: infer_request_accumulator.cpp); re-export with "
                    "--networks-per-group 1, or --execution-mode activated_packs"
                )
        for hef in self.hefs:
            if len(hef.network_groups) > limits.network_groups_per_hef:
                problems.append(
                    f"HEF {hef.name} holds {len(hef.network_groups)} network groups; HailoRT takes at "
                    f'most {limits.network_groups_per_hef} per HEF ("Too many network_groups on a given '
                    'HEF")'
                )
            for group in hef.network_groups:
                if len(group.networks) > limits.networks_per_network_group:
                    problems.append(
                        f"network group {group.name} holds {len(group.networks)} networks; at most "
                        f"{limits.networks_per_network_group}"
                    )
        return problems

    def to_json(self) -> dict:
        return {
            "limits": dataclasses.asdict(self.limits),
            "mode": self.mode.value,
            "hefs": [
                {
                    "name": h.name,
                    "network_groups": [{"name": g.name, "networks": list(g.networks)} for g in h.network_groups],
                }
                for h in self.hefs
            ],
        }

    @classmethod
    def from_json(cls, data: dict) -> Packing:
        hefs = tuple(
            HefPack(h["name"], tuple(NetworkGroup(g["name"], tuple(g["networks"])) for g in h["network_groups"]))
            for h in data["hefs"]
        )
        # exports from before the modes: packs of several stages can only run as activated packs
        joined = any(len(g.networks) > 1 for h in hefs for g in h.network_groups)
        mode = data.get("mode") or (ExecutionMode.ACTIVATED_PACKS if joined else ExecutionMode.SCHEDULED_GROUPS)
        if mode not in EXECUTION_MODES:
            raise ValueError(f"packing mode {mode!r} is not one of {', '.join(EXECUTION_MODES)}")
        return cls(hefs, RuntimeLimits(**data["limits"]), ExecutionMode(mode))

    def execution(self, invocations: Sequence[str]) -> dict:
        """What running ``invocations`` (stage names, in call order: one utterance of the
        stitched executor, or one hop) costs in this mode: network groups entered (scheduler
        switches in ``scheduled_groups``, explicit activations in ``activated_packs``) and
        network groups (re)configured when the plan needs more than one window."""
        group_of = {stage: i for i, g in enumerate(self.network_groups) for stage in g.networks}
        per_window = self.limits.network_groups_per_device
        sequence = [group_of[s] for s in invocations]
        # the sequence repeats (utterance after utterance, hop after hop): a group is entered
        # whenever the call before it, cyclically, was another group's; one group stays entered
        entered = sum(1 for k, g in enumerate(sequence) if g != sequence[k - 1])
        windows = [g // per_window for g in sequence]
        window_changes = sum(1 for k, w in enumerate(windows) if k and w != windows[k - 1])
        # With one window everything stays configured; with several, each utterance (re)configures
        # every window it enters, including the first one again after the last.
        configured = (
            0
            if self.windows == 1
            else sum(
                len(self.network_groups[w * per_window : (w + 1) * per_window])
                for w in [windows[0]] + [w for k, w in enumerate(windows) if k and w != windows[k - 1]]
            )
        )
        scheduled = self.mode is ExecutionMode.SCHEDULED_GROUPS
        return {
            "mode": self.mode.value,
            "network_groups": len(self.network_groups),
            "hefs": len(self.hefs),
            "network_groups_per_device": per_window,
            "configure_windows": self.windows,
            "calls_in_order": len(sequence),
            "switches": entered if scheduled and len(self.network_groups) > 1 else 0,
            "activations": 0 if scheduled else entered,
            "reconfigurations": window_changes + (1 if self.windows > 1 else 0),
            "network_groups_configured": configured,
        }


def pack_stages(
    stages: Sequence[str],
    limits: RuntimeLimits = HAILORT_4_23,
    networks_per_group: int | None = None,
    mode: ExecutionMode | None = None,
) -> Packing:
    """The packing for ``mode`` (default: as ``resolve_mode`` picks from ``networks_per_group``).
    ``scheduled_groups``: one stage per network group and HEF, named after the stage.
    ``activated_packs``: consecutive stages fill groups of ``networks_per_group`` networks
    (default 8, as many as HailoRT allows), one joined HEF each, named ``pack<j>``."""
    mode = mode or resolve_mode(None, networks_per_group)
    if mode is ExecutionMode.SCHEDULED_GROUPS:
        resolve_mode(mode.value, networks_per_group)  # refuses joined groups
        return dataclasses.replace(one_hef_per_stage(stages, limits), mode=mode)
    per_group = networks_per_group or limits.networks_per_network_group
    if not 1 <= per_group <= limits.networks_per_network_group:
        raise UserError(f"--networks-per-group {per_group}: choose 1..{limits.networks_per_network_group}")
    return Packing(
        tuple(
            HefPack(f"pack{j}", (NetworkGroup(f"pack{j}", tuple(stages[i : i + per_group])),))
            for j, i in enumerate(range(0, len(stages), per_group))
        ),
        limits,
        mode,
    )


def one_hef_per_stage(stages: Sequence[str], limits: RuntimeLimits = HAILORT_4_23) -> Packing:
    """The layout before packing: every stage its own HEF and network group."""
    return Packing(tuple(HefPack(name, (NetworkGroup(name, (name,)),)) for name in stages), limits)


@dataclasses.dataclass(frozen=True)
class PackingRequest:
    """What an export is packed for: ``--execution-mode``, ``--networks-per-group``, ``--hw-arch``."""

    mode: str | None = None
    networks_per_group: int | None = None
    hw_arch: str = "hailo8"

    def __post_init__(self) -> None:
        resolve_mode(self.mode, self.networks_per_group, self.hw_arch)

    def packing(self, stages: Sequence[str]) -> Packing:
        """The packing with ``hw_arch``'s runtime limits and the resolved execution mode."""
        return pack_stages(
            stages,
            limits_for(self.hw_arch),
            self.networks_per_group,
            resolve_mode(self.mode, self.networks_per_group, self.hw_arch),
        )
