"""Tile planning, halo gather/scatter, host steps and the stitched executor."""
