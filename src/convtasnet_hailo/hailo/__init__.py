"""What is true of the chip, without the SDK: the quantization scheme and its integer emulation,
and the folder `noise` writes (its report and calibration tiles)."""
