"""Numeric tolerances of the exactness contract, named once (DESIGN.md, "The exactness contract").

``all_close`` means ``|stitched - reference| <= ATOL + RTOL * |reference|`` elementwise.
"""

ATOL = 1e-5
RTOL = 1e-5
#: What a healthy float32 stitched run reaches relative to each stage's peak magnitude.
TARGET_MAX_REL = 1e-6

#: Quantized backends (hailo_emulator quantized, hailo_runtime) are judged per stage by SQNR:
#: 10*log10(sum(ref^2) / sum((out - ref)^2)). Hailo's analyze-noise flags layers under about
#: 10 dB (HAILO_FACTS.md); a whole stage at 20 dB keeps the final SI-SNR within a few dB of float.
QUANTIZED_MIN_SQNR_DB = 20.0
