"""Numeric tolerances of the exactness contract, named once (docs/exactness.md, "The exactness contract").

Contract v2, normwise per tensor: a stitched tensor is ``all_close`` to its reference iff
``max|stitched - reference| <= TOL * max(1, peak)`` where ``peak = max|reference|``. For tensors
with peak <= 1 that is the runbook's absolute 1e-5; larger tensors (the 24-block residual stream
peaks near 15) get a bound in proportion to their scale, because float32 rounding grows with it.
An elementwise ``atol + rtol*|ref|`` test fails wherever the reference crosses zero, on one
machine's kernels and not another's; a normwise bound does not.
"""

#: The runbook's ``tol``.
TOL = 1e-5
#: The contract's text, written into every parity JSON beside the bound of each tensor.
CONTRACT = "max_abs <= tol * max(1, peak), peak = max|reference| of the tensor"
#: What a healthy float32 stitched run reaches relative to each stage's peak magnitude.
TARGET_MAX_REL = 1e-6
#: The margin the default parity cases keep on every backend (issue 11): max_abs <= bound / 3.
REQUIRED_MARGIN = 3.0

#: Quantized backends (hailo_emulator quantized, hailo_runtime) are judged per stage by SQNR:
#: 10*log10(sum(ref^2) / sum((out - ref)^2)). Hailo's analyze-noise flags layers under about
#: 10 dB (docs/hailo_facts.md, "Accuracy tooling"); a whole stage at 20 dB keeps the final SI-SNR
#: within a few dB of float.
QUANTIZED_MIN_SQNR_DB = 20.0
#: A quantized backend compared with the device-arithmetic emulation (`parity --noise-dir`): each
#: stage within 30 dB SQNR of it, i.e. the two differ by about 3% of the signal's RMS at most.
#: A judgement, not a sourced fact: the emulation's assumptions (quant_scheme.py) are unconfirmed
#: on hardware, and this is where a device run would show them wrong.
EMULATION_MIN_SQNR_DB = 30.0


def contract_bound(peak: float, tol: float = TOL) -> float:
    """The largest max-abs error a tensor whose reference peaks at ``peak`` may have."""
    return tol * max(1.0, float(peak))


def within_contract(max_abs: float, peak: float, tol: float = TOL) -> bool:
    return max_abs <= contract_bound(peak, tol)
