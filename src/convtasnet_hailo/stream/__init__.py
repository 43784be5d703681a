"""Streaming: causal models hop by hop, equal to the offline model."""
