"""TEST DOUBLE of the documented ``hailo_sdk_client`` surface (docs/hailo_facts.md, "Compiler API").

Not Hailo's code and not a compiler: it checks the calls the driver makes the way the real
parser/optimizer would (node names, shapes, NHWC calibration layout, script syntax) and can be
told to fail like the real one through ``HAILO_DOUBLE_BEHAVIOR`` (JSON: stage-name substring ->
"ok" | "parser" | "allocator" | "timeout" | "crash"), or be interrupted part way
(``HAILO_DOUBLE_INTERRUPT_AFTER``). Every call is appended to ``HAILO_DOUBLE_CALLS`` (a file) when
that variable is set. Lives under tests/; only tests put it
on sys.path.

Names, order and shapes as the DFC writes them (docs/hailo_facts.md, "Streams"):
the parsed HN keys its layers ``<net>/<layer>`` (Model Zoo ``core/hn_editor/layer_splitter.py``
builds ``f"{net}/output_layer{i}"``, ``f"{net}/conv68"``), input layers ``<net>/input_layerN`` in
ONNX input order with the ONNX input name as ``original_names``, every other layer per-type
numbered (``conv1``, ``ew_add1``) with the ONNX nodes it holds as ``original_names`` (a conv
holds the activation that follows it); ``net_params.output_layers_order`` lists the layers that
feed the outputs (layer_splitter.py appends to it), which HailoRT reads back as
``sorted_outputs_order`` (hailort ``hef/hef.cpp``). Its order here is the layer names sorted: a
deterministic rule of the double (the DFC's own rule is not public) that differs from ONNX order
in every fused TCN stage (``conv`` sorts before ``ew_add``). The "HEF" keeps, per stream, its
name (inputs ``<net>/input_layerN``, outputs ``<net>/<producing layer>``), original names, NHWC
shape and format order: NHW for one-channel tensors, NC for one-frame ones (hailort
``hailort_defaults.cpp``: the host format follows the device order the compiler chose; which
tensors the DFC gives these orders is the double's assumption).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import time

import numpy as np

#: HAILO_DOUBLE_DFC: the DFC version this double stands for (default 3.33.1), reported as the real
#: package reports it, ``hailo_sdk_client.__version__`` (HailoRT's ``hailo --version`` reads it there:
#: hailort ``hailo_platform/tools/hailocli/version_action.py``). DFC 3.x targets
#: Hailo-8/8R/8L (Model Zoo v2.16 CHANGELOG: "Removed support for hailo15h ... and hailo10h");
#: DFC 5.x targets Hailo-10H/15 (Model Zoo master, v5.x).
__version__ = os.environ.get("HAILO_DOUBLE_DFC", "3.33.1") + "-test-double"
SUPPORTED_HW_ARCHS = (
    ["hailo10h", "hailo15h", "hailo15m", "hailo15l"]
    if __version__.startswith("5.")
    else ["hailo8", "hailo8r", "hailo8l"]
)
log = logging.getLogger("hailo_sdk_client")


class ParsingWithRecommendationException(Exception):
    def __init__(self, message, recommended_end_node_names=()):
        super().__init__(message)
        self.recommended_end_node_names = list(recommended_end_node_names)


class MisspellNodeError(Exception):
    pass


class BackendAllocatorException(Exception):
    pass


class BackendScriptParserException(Exception):
    pass


class BadInputsShape(Exception):
    pass


class InferenceContext(enum.Enum):
    SDK_NATIVE = "native"
    SDK_FP_OPTIMIZED = "fp_optimized"
    SDK_QUANTIZED = "quantized"
    SDK_HAILO_HW = "hw"


_NAME = r"[A-Za-z_][\w/]*"  # a layer, plain (conv1) or scoped (net/conv1)
_LIST = rf"\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\]"
_GLOB = r"\{[\w*\[\]\-/]+\}"  # {conv*}, {output_layer*}
_NUM = r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
_RANGE = rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*\]"
_KV = r"\w+\s*=\s*[\w.\-]+"
_KVS = rf"{_KV}(?:\s*,\s*{_KV})*"
#: The model-script line forms this double accepts, each with its public precedent; any other line
#: is refused as the DFC's parser refuses what its grammar lacks (``BackendScriptParserException``
#: "Parsing failed at:" with pyparsing's ``>!<`` marker: a user's DFC traceback from
#: ``hailo_sdk_client/sdk_backend/script_parser/model_script_parser.py`` ``parse_script``). The
#: DFC's grammar is wider; these are the forms with a public example.
SCRIPT_FORMS = (
    # Model Zoo cfg/multi-networks/*.alls and cfg/alls/*: allocator_param(merge_min_layer_utilization=0.1,
    # timeout=3600), performance_param(fps=50), resources_param(max_compute_utilization=...),
    # context_switch_param(mode=enabled); context_switch_param(mode=disabled) in public user scripts
    # that force one context
    rf"(?:allocator_param|resources_param|performance_param|context_switch_param)\(\s*{_KVS}\s*\)",
    # Model Zoo cfg/alls: quantization_param(conv1, precision_mode=a16_w16), ([conv27, ...], ...),
    # ({conv*}, ...); a8_w8_a16 in the DFC's 16bit_optimization notebook
    rf"quantization_param\(\s*(?:{_NAME}|{_LIST}|{_GLOB})\s*,\s*precision_mode\s*=\s*a\d+_w\d+(?:_a\d+)?\s*\)",
    # public user scripts: quantization_param([conv42, conv53], force_range_out=[0.0, 1.0]) (always a list)
    rf"quantization_param\(\s*{_LIST}\s*,\s*force_range_out\s*=\s*{_RANGE}\s*\)",
    # Model Zoo cfg/alls: activation_clipping, layers=[conv9], mode=percentile, clipping_values=[0.01, 99.7]
    # (its layers always listed: no {*} with activation_clipping in the Model Zoo)
    rf"pre_quantization_optimization\(\s*activation_clipping\s*,\s*layers\s*=\s*{_LIST}\s*,\s*mode\s*=\s*"
    rf"percentile\s*,\s*clipping_values\s*=\s*{_RANGE}\s*\)",
    # Model Zoo cfg/alls: pre_quantization_optimization(equalization, policy=enabled),
    # post_quantization_optimization(bias_correction | finetune, policy=disabled)
    r"pre_quantization_optimization\(\s*equalization\s*,\s*policy\s*=\s*(?:enabled|disabled)\s*\)",
    r"post_quantization_optimization\(\s*(?:bias_correction|finetune)\s*,\s*policy\s*=\s*(?:enabled|disabled)\s*\)",
    # Model Zoo cfg/alls: model_optimization_flavor(optimization_level=0, compression_level=0),
    # model_optimization_config(calibration, batch_size=2, calibset_size=64)
    rf"model_optimization_flavor\(\s*{_KVS}\s*\)",
    rf"model_optimization_config\(\s*calibration\s*,\s*{_KVS}\s*\)",
    # Model Zoo cfg/alls: normalization1 = normalization([123.675, ...], [58.395, ...])
    rf"{_NAME}\s*=\s*normalization\(\s*\[[^\]]*\]\s*,\s*\[[^\]]*\]\s*\)",
)
_SCRIPT_FORMS = [re.compile(form) for form in SCRIPT_FORMS]
#: context_switch_param(mode=disabled): one context or no HEF (the double's rule; the DFC's own
#: failure text for a model that does not fit one context is not public)
SINGLE_CONTEXT = re.compile(r"context_switch_param\([^)]*\bmode\s*=\s*disabled\b")


def _behavior(net_name: str) -> str:
    rules = json.loads(os.environ.get("HAILO_DOUBLE_BEHAVIOR", "{}"))
    for pattern, behavior in rules.items():
        if pattern in net_name:
            return behavior
    return "ok"


#: The double's stand-in for what fits the chip at once: every this many bytes of 8-bit weights
#: take one more context. A rule of the double, deterministic and size-driven; Hailo publishes no
#: such figure (docs/hailo_facts.md, "Hardware": on-chip SRAM size unconfirmed).
CONTEXT_WEIGHT_BYTES = 512 * 1024


def _contexts(net_name: str, weights: int) -> int:
    """Contexts of a compiled network group: ``HAILO_DOUBLE_CONTEXTS`` (JSON: net-name substring
    -> count) forces it; otherwise one per ``CONTEXT_WEIGHT_BYTES`` of (8-bit) weights."""
    for pattern, count in json.loads(os.environ.get("HAILO_DOUBLE_CONTEXTS", "{}")).items():
        if pattern in net_name:
            return int(count)
    return max(1, -(-weights // CONTEXT_WEIGHT_BYTES))


def _record(call: str, **details) -> None:
    path = os.environ.get("HAILO_DOUBLE_CALLS")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"call": call, **details}, default=str) + "\n")


def _interrupt_after_compiles() -> None:
    """``HAILO_DOUBLE_INTERRUPT_AFTER=k`` (with ``HAILO_DOUBLE_CALLS`` set): once ``k`` compiles are
    recorded, the next ``compile()`` raises KeyboardInterrupt, as a Ctrl-C (or the SIGTERM the CLI
    turns into one) does mid-compile: a test's way to kill a compile part way. Not the DFC's."""
    after, path = os.environ.get("HAILO_DOUBLE_INTERRUPT_AFTER"), os.environ.get("HAILO_DOUBLE_CALLS")
    if after is None or not path or not os.path.exists(path):
        return
    with open(path) as handle:
        done = sum(json.loads(line)["call"] == "compile" for line in handle if line.strip())
    if done >= int(after):
        raise KeyboardInterrupt


def _named_layers(line: str) -> list[str]:
    """The layers a quantization_param or activation_clipping line names (globs excepted)."""
    match = re.match(r"quantization_param\(\s*(\[[^\]]*\]|[^,{\s]+)\s*,", line) or re.search(
        r"activation_clipping\s*,\s*layers\s*=\s*(\[[^\]]*\])", line
    )
    if not match:
        return []
    return [n.strip() for n in match.group(1).strip("[]").split(",") if n.strip()]


class ClientRunner:
    def __init__(self, hw_arch: str = "hailo8", har: str | None = None):
        if hw_arch not in SUPPORTED_HW_ARCHS:
            raise ValueError(f"hw_arch {hw_arch} not in {SUPPORTED_HW_ARCHS}")
        self.hw_arch, self.net_name, self.inputs, self.script, self.onnx_path = hw_arch, None, {}, "", None
        self.weights = 0  # weight count (a HAR holds its weights; the double keeps their number)
        self.hn, self.streams = None, None  # the parsed HN; the streams a HEF will have (``_parse``)
        self.state = "UNINITIALIZED"
        self.joined: list[dict] = []  # models joined after this one (ClientRunner.join)
        if har is not None:
            with open(har) as handle:
                saved = json.load(handle)
            self.net_name, self.state, self.onnx_path = saved["net"], saved["state"], saved["onnx"]
            self.inputs, self.hw_arch = saved["inputs"], saved["hw_arch"]
            self.joined, self.weights = saved.get("joined", []), saved.get("weights", 0)
            self.hn, self.streams = saved.get("hn"), saved.get("streams")
        _record("ClientRunner", hw_arch=hw_arch, har=har)

    def join(self, runner):
        """Several networks in one HEF (docs/hailo_facts.md, "Compiler API": Model Zoo ``multi_main.py``). The double
        keeps each joined model as its own network of one network group named after the first
        (unconfirmed naming) and asks both to be in the same state and for the same target."""
        _record("join", net=self.net_name, other=runner.net_name)
        if runner.hw_arch != self.hw_arch or runner.state != self.state:
            raise ValueError(
                f"cannot join {runner.net_name} ({runner.hw_arch}, {runner.state}) into "
                f"{self.net_name} ({self.hw_arch}, {self.state})"
            )
        self.joined += [
            {
                "net": runner.net_name,
                "onnx": runner.onnx_path,
                "inputs": runner.inputs,
                "weights": runner.weights,
                "streams": runner.streams,
            }
        ] + runner.joined

    def translate_onnx_model(self, model, net_name, start_node_names=None, end_node_names=None, net_input_shapes=None):
        import onnx

        _record("translate_onnx_model", net_name=net_name, start=start_node_names, end=end_node_names)
        graph = onnx.load(model).graph
        if _behavior(net_name) == "parser":
            raise ParsingWithRecommendationException(
                "Parsing failed. The errors found in the graph are:\nUnsupportedShuffleLayerError in op "
                f"{net_name}/reshape1: Failed to determine type of layer to create in node",
                ["conv0"],
            )
        inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
        nodes = {n.name for n in graph.node}
        for name in start_node_names or []:
            if name not in inputs:
                raise MisspellNodeError(f"Unable to find start node {name}")
        for name in end_node_names or []:
            if name not in nodes:
                raise MisspellNodeError(f"Unable to find end node {name}")
        for name, shape in (net_input_shapes or {}).items():
            if inputs.get(name) != list(shape):
                raise BadInputsShape(f"net_input_shapes[{name}]={shape} but the model has {inputs.get(name)}")
        self.net_name, self.inputs, self.onnx_path = net_name, inputs, str(model)
        self.weights = sum(int(np.prod(t.dims)) for t in graph.initializer)
        self.hn, self.streams = _parse(net_name, graph)
        self.state = "HAILO_MODEL"
        return {"net": net_name}, {}

    def get_hn_dict(self):
        return self.hn or {"name": self.net_name, "net_params": {"output_layers_order": []}, "layers": {}}

    def save_har(self, path):
        _record("save_har", path=str(path), state=self.state)
        with open(path, "w") as handle:
            json.dump(
                {
                    "net": self.net_name,
                    "state": self.state,
                    "script": self.script,
                    "onnx": self.onnx_path,
                    "inputs": self.inputs,
                    "hw_arch": self.hw_arch,
                    "joined": self.joined,
                    "weights": self.weights,
                    "hn": self.hn,
                    "streams": self.streams,
                },
                handle,
            )

    def load_model_script(self, text, append=False):
        _record("load_model_script", text=text)
        layers = {name.split("/")[-1] for name in self.get_hn_dict()["layers"]}
        for line in filter(None, (x.strip() for x in text.splitlines())):
            if not any(form.fullmatch(line) for form in _SCRIPT_FORMS):
                raise BackendScriptParserException(f"Parsing failed at:\n>!<{line}")
            for layer in _named_layers(line):
                if layer.split("/")[-1] not in layers:
                    raise BackendScriptParserException(f"layer {layer} does not exist in the model: {line}")
        self.script = (self.script + text) if append else text

    def optimize(self, calib_data):
        names = [stream["name"] for stream in self.streams["inputs"]]
        arrays = calib_data if isinstance(calib_data, dict) else ({names[0]: calib_data} if len(names) == 1 else {})
        _record("optimize", keys=sorted(arrays), shapes=[list(np.shape(a)) for a in arrays.values()])
        if sorted(arrays) != sorted(names):  # paired by input-layer name, never by position
            raise BadInputsShape(f"calibration data keyed {sorted(arrays)}; the model's input layers are {names}")
        for stream in self.streams["inputs"]:
            array, (h, w, c) = arrays[stream["name"]], stream["shape"]
            if array.ndim != 4 or tuple(array.shape[1:]) != (h, w, c) or array.dtype != np.float32:
                raise BadInputsShape(
                    f"calibration for {stream['name']} must be NHWC float32 (N, {h}, {w}, {c}), "
                    f"got {array.shape} {array.dtype}"
                )
        self.state = "QUANTIZED_MODEL"

    def compile(self):
        behavior = next(
            (b for b in map(_behavior, [self.net_name] + [j["net"] for j in self.joined]) if b != "ok"), "ok"
        )
        _interrupt_after_compiles()
        _record("compile", behavior=behavior, net=self.net_name)
        if behavior == "allocator":
            log.error("Mapping Failed (allocation time: 12s)")
            log.error("No successful assignments: concat21 errors: Agent infeasible")
            raise BackendAllocatorException("Compilation failed: No successful assignment")
        if behavior == "timeout":
            time.sleep(60)
        if behavior == "crash":
            os._exit(3)
        contexts = _contexts(self.net_name, self.weights + sum(j.get("weights", 0) for j in self.joined))
        if contexts > 1 and SINGLE_CONTEXT.search(self.script):
            log.error(f"Mapping Failed: {self.net_name} needs {contexts} contexts and the model script allows one")
            raise BackendAllocatorException("Compilation failed: No successful assignment")
        self.state = "COMPILED_MODEL"
        networks = [{"name": self.net_name, "onnx": self.onnx_path, **self.streams}] + [
            {"name": j["net"], "onnx": j["onnx"], **j["streams"]} for j in self.joined
        ]
        # One network group holding every joined model (a joined HAR compiles into one group).
        weights = self.weights + sum(j.get("weights", 0) for j in self.joined)
        # hef.cpp: the group's sorted_outputs_order, which HailoRT sorts output vstreams by
        # (core_op_metadata.cpp); here each network's outputs in its HN's output_layers_order.
        order = [name for network in networks for name in network["sorted_outputs_order"]]
        group = {
            "name": self.net_name,
            "contexts": _contexts(self.net_name, weights),
            "networks": networks,
            "sorted_outputs_order": order,
        }
        # dfc_version: the DFC that made it, as a real HEF's header records it (hef.proto ProtoHEFHeader.sdk_version)
        return json.dumps(
            {
                "hef_double": self.net_name,
                "hw_arch": self.hw_arch,
                "network_groups": [group],
                "dfc_version": __version__,
            }
        ).encode()

    # Emulator (docs/hailo_facts.md, "Compiler API": infer_context / infer). The double runs the ONNX in onnxruntime;
    # SDK_QUANTIZED rounds inputs and outputs to a 2**-10 grid to stand in for quantization.
    def infer_context(self, context):
        import contextlib

        if self.state not in ("QUANTIZED_MODEL", "COMPILED_MODEL") and context is not InferenceContext.SDK_NATIVE:
            raise RuntimeError(f"{context} needs an optimized HAR (state {self.state})")
        return contextlib.nullcontext(context)

    def infer(self, context, data):
        """``data``: one NHWC array (one input) or a dict keyed by input-layer name; the outputs come
        back in ``net_params.output_layers_order`` (one array alone)."""
        import onnxruntime as ort

        streams = self.streams["inputs"]
        arrays = data if isinstance(data, dict) else {streams[0]["name"]: data}
        if sorted(arrays) != sorted(s["name"] for s in streams):
            raise ValueError(f"infer data keyed {sorted(arrays)}; the input layers are {[s['name'] for s in streams]}")
        step = 2.0**-10 if context is InferenceContext.SDK_QUANTIZED else None
        session = ort.InferenceSession(self.onnx_path)
        wanted = [o.name for o in session.get_outputs()]
        outputs = []
        for index in range(len(next(iter(arrays.values())))):
            feeds = {}
            for stream in streams:
                tile = arrays[stream["name"]][index : index + 1].transpose(0, 3, 1, 2).astype(np.float32)
                feeds[stream["onnx"]] = np.round(tile / step) * step if step else tile
            outputs.append(dict(zip(wanted, session.run(None, feeds), strict=False)))
        order = [_tensor_of(self.streams, layer) for layer in self.hn["net_params"]["output_layers_order"]]
        stacked = [np.concatenate([o[t] for o in outputs]).transpose(0, 2, 3, 1) for t in order]
        if step:
            stacked = [np.round(o / step) * step for o in stacked]
        _record("infer", context=str(context), batch=len(next(iter(arrays.values()))))
        return stacked[0] if len(stacked) == 1 else stacked


def _tensor_of(streams: dict, layer: str) -> str:
    """The ONNX output tensor the output stream of ``layer`` carries (the double's own record)."""
    return next(s["onnx"] for s in streams["outputs"] if s["name"] == layer)


def _format_order(h: int, w: int, c: int) -> str:
    """The format order the double's compiler gives a tensor: NC for one frame, NHW for one channel,
    else NHWC (hailort ``hailort_defaults.cpp`` keeps NHW and NC as the host's default order)."""
    if h == 1 and w == 1:
        return "NC"
    return "NHW" if c == 1 else "NHWC"


def _layer_kind(op_type: str) -> str:
    return {"Conv": "conv", "Add": "ew_add", "Mul": "ew_mult"}.get(op_type, op_type.lower())


def _parse(net: str, graph) -> tuple[dict, dict]:
    """The HN of an ONNX graph and the streams its HEF will have (see the module docstring)."""
    shape = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    outputs = [o.name for o in graph.output]
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    layers, writer, counts = {}, {}, {}
    for index, value in enumerate(graph.input, 1):
        layers[f"{net}/input_layer{index}"] = {"type": "input_layer", "original_names": [value.name], "input": []}
        writer[value.name] = f"{net}/input_layer{index}"
    for node in graph.node:
        source = writer.get(node.input[0]) if node.input else None
        if (
            node.op_type in ("LeakyRelu", "PRelu", "Relu")
            and source
            and layers[source]["type"] == "conv"
            and readers.get(node.input[0]) == 1
            and node.input[0] not in outputs
        ):
            layers[source]["original_names"].append(node.name)  # the parser folds it into the conv
            writer[node.output[0]] = source
            continue
        kind = _layer_kind(node.op_type)
        counts[kind] = counts.get(kind, 0) + 1
        name = f"{net}/{kind}{counts[kind]}"
        layers[name] = {
            "type": kind,
            "original_names": [node.name],
            "input": sorted({writer[i] for i in node.input if i in writer}),
        }
        writer.update({o: name for o in node.output})
    for index, tensor in enumerate(outputs, 1):
        layers[f"{net}/output_layer{index}"] = {"type": "output_layer", "input": [writer[tensor]], "original_names": []}
    order = sorted(writer[t] for t in outputs)
    hn = {"name": net, "net_params": {"output_layers_order": order}, "layers": layers}

    def stream(name, tensor, value, index):
        _, c, h, w = shape(value)
        return {
            "name": name,
            "original_names": list(layers[name]["original_names"]),
            "shape": [h, w, c],
            "order": _format_order(h, w, c),
            "onnx": tensor,
            "onnx_index": index,
        }

    inputs = [stream(f"{net}/input_layer{i}", v.name, v, i - 1) for i, v in enumerate(graph.input, 1)]
    outs = [stream(writer[v.name], v.name, v, i) for i, v in enumerate(graph.output)]
    return hn, {"inputs": inputs, "outputs": outs, "sorted_outputs_order": order}
