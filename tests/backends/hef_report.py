"""Every HEF query the project makes, answered by whichever ``hailo_platform`` is first on the path.

    python tests/backends/hef_report.py HEF   ->   JSON on stdout

Run twice by tests/backends/test_hailort_library.py on the same file: once with HailoRT's own
library (scripts/build_hailort.sh) on PYTHONPATH, once with the runtime test double; the two
reports must agree on every key. The queries are the ones backends/hailo_runtime.py and
dfc/driver.py make (group infos, networks, vstream infos with their shapes, formats and
quantization) plus the name mapping HailoRT offers (sorted output names, original names).
"""

from __future__ import annotations

import json
import sys


def _error(call) -> str | None:
    """The exception a call raises, as ``Class`` or ``Class: text`` for the raw status exception
    whose text is the status number; None when it returns."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the class is the answer being compared
        name = type(exc).__name__
        return f"{name}: {exc}" if name == "HailoRTStatusException" else name
    return None


def _vstream(info) -> dict:
    q = info.quant_info
    return {
        "name": info.name,
        "network_name": info.network_name,
        "direction": info.direction.name,
        "shape": list(info.shape),
        "format_type": info.format.type.name,
        "format_order": info.format.order.name,
        "format_flags": info.format.flags.name,
        "quant_info": [q.qp_zp, q.qp_scale, q.limvals_min, q.limvals_max],
    }


def _names(hef, group: str, infos: list) -> dict:
    originals = {i.name: hef.get_original_names_from_vstream_name(i.name, group) for i in infos}
    back = {o: hef.get_vstream_name_from_original_name(o, group) for names in originals.values() for o in names}
    return {"original_names": originals, "vstream_from_original": back}


def _group(hef, name: str) -> dict:
    networks = hef.get_networks_names(name)
    per_network = {
        n: {
            "inputs": [_vstream(i) for i in hef.get_input_vstream_infos(n)],
            "outputs": [_vstream(o) for o in hef.get_output_vstream_infos(n)],
        }
        for n in networks
    }
    infos = hef.get_input_vstream_infos(name) + hef.get_output_vstream_infos(name)
    return {
        "networks": networks,
        "sorted_output_names": hef.get_sorted_output_names(name),
        "group_inputs": [i.name for i in hef.get_input_vstream_infos(name)],
        "group_outputs": [o.name for o in hef.get_output_vstream_infos(name)],
        "all_vstreams": [i.name for i in hef.get_all_vstream_infos(name)],
        "per_network": per_network,
        **_names(hef, name, infos),
    }


def report(path: str) -> dict:
    import hailo_platform

    from convtasnet_hailo.dfc.driver import hef_multi_context

    hef = hailo_platform.HEF(path)
    groups = hef.get_network_group_names()
    first = groups[0]
    return {
        "library": {"file": hailo_platform.__file__, "version": getattr(hailo_platform, "__version__", None)},
        "network_group_names": groups,
        "network_groups_infos": [[i.name, bool(i.is_multi_context)] for i in hef.get_network_groups_infos()],
        "project_hef_multi_context": hef_multi_context(path),
        "default_network_inputs": [i.name for i in hef.get_input_vstream_infos()],
        "groups": {g: _group(hef, g) for g in groups},
        "errors": {
            "get_networks_names(unknown)": _error(lambda: hef.get_networks_names("no_such_group")),
            "get_input_vstream_infos(unknown)": _error(lambda: hef.get_input_vstream_infos("no_such/network")),
            "get_original_names_from_vstream_name(unknown)": _error(
                lambda: hef.get_original_names_from_vstream_name("no_such/vstream", first)
            ),
            "get_vstream_name_from_original_name(unknown)": _error(
                lambda: hef.get_vstream_name_from_original_name("no_such_layer", first)
            ),
            "get_sorted_output_names(unknown)": _error(lambda: hef.get_sorted_output_names("no_such_group")),
        },
    }


if __name__ == "__main__":
    json.dump(report(sys.argv[1]), sys.stdout, indent=1)
