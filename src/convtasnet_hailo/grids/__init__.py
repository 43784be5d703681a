"""The grid side of compiling: cases (profiles), calibration from real stitched tiles, running
the cases through the compile driver (in-process or workers), resume, reports, and the
`compile` / `grid` commands. The driver side, torch-free and SDK-facing, is ``compile/``."""
