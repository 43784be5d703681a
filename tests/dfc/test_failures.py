"""Failure normalization on error texts from public reports (docs/hailo_facts.md, "Errors seen")."""

import pytest

from convtasnet_hailo.dfc.failures import normalize

ALLOCATOR_LOG = """[info] Building HEF...
[error] Mapping Failed (allocation time: 1m 12s)
No successful assignments: concat21 errors: Agent infeasible
[error] Failed to produce compiled graph"""


def test_allocator_failure_head_is_the_agent_infeasible_line():
    failure = normalize("BackendAllocatorException", "Compilation failed: No successful assignment", ALLOCATOR_LOG)
    assert failure.exception_type == "BackendAllocatorException"
    assert "Agent infeasible" in failure.failure_head


@pytest.mark.parametrize(
    "message, expected_type, head_part",
    [
        (
            "UnsupportedShuffleLayerError in op /masker/Reshape: Failed to determine type of layer",
            "UnsupportedShuffleLayerError",
            "Reshape",
        ),
        ("UnsupportedSliceLayerError: Slice on axis 1 is not supported", "UnsupportedSliceLayerError", "axis 1"),
        ("UnsupportedConv3DError in op /encoder/Conv: Unsupported dimensions", "UnsupportedConv3DError", "Unsupported"),
        (
            "NegativeSlopeExponentNonFixable: avgpool1 has negative slope exponent",
            "NegativeSlopeExponentNonFixable",
            "avgpool",
        ),
    ],
)
def test_class_named_in_text_is_found_without_the_exception_object(message, expected_type, head_part):
    failure = normalize(None, message)
    assert failure.exception_type == expected_type and head_part in failure.failure_head


def test_signature_is_stable_across_numbers_and_layer_names():
    a = normalize("BackendAllocatorException", "", "No successful assignments: concat21 errors: Agent infeasible")
    b = normalize("BackendAllocatorException", "", "No successful assignments: concat7 errors: Agent infeasible")
    assert a.signature == b.signature and a.failure_head != b.failure_head


def test_timeout_and_unknown():
    assert normalize("Timeout", "stage x did not finish within 5 s").exception_type == "Timeout"
    assert normalize(None, "segfault").exception_type == "UnknownError"


def test_layer_names_from_onnx_nodes_to_parsed_layers():
    import pytest

    from convtasnet_hailo.dfc.driver import resolve_layer_names

    hn = {"layers": {"conv1": {"original_names": ["s/conv0", "s/prelu1"]}, "ew_add1": {"original_names": ["s/add2"]}}}
    script = (
        "allocator_param(timeout=25m)\nquantization_param(s/conv0, precision_mode=a16_w16)\n"
        "quantization_param(s/prelu1, precision_mode=a16_w16)\nquantization_param(s/add2, precision_mode=a16_w16)\n"
    )
    assert resolve_layer_names(script, hn, "s") == (
        "allocator_param(timeout=25m)\nquantization_param(s/conv1, precision_mode=a16_w16)\n"
        "quantization_param(s/ew_add1, precision_mode=a16_w16)\n"
    )
    with pytest.raises(ValueError, match="names ONNX node s/mul9, which no parsed layer of s holds"):
        resolve_layer_names("quantization_param(s/mul9, precision_mode=a16_w16)\n", hn, "s")
