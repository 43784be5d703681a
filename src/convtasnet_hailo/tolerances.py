"""Numeric tolerances of the exactness contract, named once (DESIGN.md, "The exactness contract").

``all_close`` means ``|stitched - reference| <= ATOL + RTOL * |reference|`` elementwise.
"""

ATOL = 1e-5
RTOL = 1e-5
#: What a healthy float32 stitched run reaches relative to each stage's peak magnitude.
TARGET_MAX_REL = 1e-6
