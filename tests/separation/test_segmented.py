import numpy as np

from convtasnet_hailo.backends.registry import load_backend
from convtasnet_hailo.metrics.separation import si_snr
from convtasnet_hailo.model.config import ConvTasNetConfig, NormType
from convtasnet_hailo.model.random_init import random_model
from convtasnet_hailo.runtime.separator import (
    StitchedSeparator,
    reference_separation,
    segment_starts,
    separate_segmented,
)
from tests.conftest import TINY, assert_within_contract, speech_like

CLN = ConvTasNetConfig(
    n_filters=16, bn_chan=8, hid_chan=12, skip_chan=6, n_blocks=3, n_repeats=2, norm_type=NormType.CLN
)


def test_segment_starts_cover_the_input():
    assert segment_starts(100, 40, 10) == [0, 30, 60]
    assert segment_starts(30, 40, 10) == [0]


def test_segmented_equals_whole_file_away_from_joins():
    """cLN has no whole-utterance statistics: beyond the receptive field from each join the
    segmented result is the whole-file result."""
    separator = StitchedSeparator(random_model(CLN, seed=2), load_backend("torch_proxy"), 16)
    wav = speech_like(3.0, 8000, 5)
    whole = separator(wav)
    segment, overlap = 8000, 2000
    segmented = separate_segmented(separator, wav, segment, overlap)
    receptive = (1 + 2 * 2 * (1 + 2 + 4)) * CLN.stride + CLN.kernel_size  # samples
    far = np.ones(len(wav), bool)
    starts = segment_starts(len(wav), segment, overlap)
    for previous, start in zip(starts, starts[1:], strict=False):  # each shared region, widened by the receptive field
        far[max(0, start - receptive) : previous + segment + receptive] = False
    assert far.sum() > len(wav) // 3
    assert_within_contract(segmented[:, far], whole[:, far], "segmented")


def test_segments_with_swapped_sources_are_realigned():
    separator = StitchedSeparator(random_model(CLN, seed=2), load_backend("torch_proxy"), 16)
    calls = []

    def swapping(segment):
        calls.append(1)
        out = separator(segment)
        return out[::-1] if len(calls) % 2 == 0 else out

    wav = speech_like(3.0, 8000, 6)
    aligned = separate_segmented(swapping, wav, 8000, 2000)
    plain = separate_segmented(separator, wav, 8000, 2000)
    np.testing.assert_allclose(aligned, plain, atol=1e-6)


def test_gln_segmented_stays_close_to_whole_file():
    model = random_model(TINY, seed=3)
    separator = StitchedSeparator(model, load_backend("torch_proxy"), 32)
    wav = speech_like(4.0, 8000, 7)
    whole = reference_separation(model, wav)
    segmented = separate_segmented(separator, wav, 12000, 3000)
    assert min(si_snr(segmented[i], whole[i]) for i in range(2)) > 15
