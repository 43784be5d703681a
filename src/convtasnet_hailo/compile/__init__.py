"""The grid side of compiling: cases (profiles), running the cases through the compile driver
(in-process or workers), resume, reports, and the `compile` / `grid` commands. Calibration tiles
come from :mod:`convtasnet_hailo.quantization.calibration`; the driver side, torch-free and
SDK-facing, is ``compile/``."""
