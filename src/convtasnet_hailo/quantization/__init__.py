"""Quantization, one module per step: the audio sets (datasets), calibration tiles from real
stitched runs (calibration), the noise analysis and its report (noise), the cheapest 16-bit set by
cost (precision_advice), the ONNX Runtime cross-check (ort_crosscheck) and quantization-aware
fine-tuning (finetune). The arithmetic they emulate lives in :mod:`convtasnet_hailo.hailo`."""
