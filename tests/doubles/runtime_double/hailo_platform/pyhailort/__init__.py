"""TEST DOUBLE: ``hailo_platform.pyhailort``, the package that holds HailoRT's Python module."""
