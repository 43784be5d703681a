"""Separation metrics with Asteroid's definitions (zero-mean SI-SNR, best permutation)."""
