"""ONNX export of the stage plan, the manifest, and checks against the Hailo parser rules.

``manifest`` needs only the standard library; the rest needs ``onnx``.
"""
