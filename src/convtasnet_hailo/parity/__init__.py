"""Parity of the stitched path against the reference: comparison, cases, reports."""
