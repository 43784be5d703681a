"""Separating waveforms through the stitched path: whole files, or long files in segments."""
