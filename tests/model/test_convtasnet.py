import numpy as np
import pytest
import torch

from convtasnet_hailo.model.config import FULL_SIZE_8K, FULL_SIZE_16K, ConvTasNetConfig, NormType
from convtasnet_hailo.model.convtasnet import ConvTasNet, CumulativeLayerNorm, GlobalLayerNorm
from tests.conftest import TINY


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_full_size_state_dict_matches_asteroid():
    model = ConvTasNet(FULL_SIZE_8K)
    keys = list(model.state_dict())
    assert len(keys) == 345
    assert _n_params(model) == 5_050_545
    assert _n_params(ConvTasNet(FULL_SIZE_16K)) == 5_066_929
    for key in (
        "encoder.filterbank._filters",
        "decoder.filterbank._filters",
        "masker.bottleneck.0.gamma",
        "masker.bottleneck.1.weight",
        "masker.TCN.23.shared_block.3.weight",
        "masker.TCN.23.shared_block.5.beta",
        "masker.TCN.0.res_conv.bias",
        "masker.TCN.0.skip_conv.weight",
        "masker.mask_net.0.weight",
        "masker.mask_net.1.bias",
    ):
        assert key in keys


def test_causal_depthwise_key_is_nested_as_in_asteroid():
    keys = ConvTasNet(ConvTasNetConfig(causal=True, norm_type=NormType.CLN, n_blocks=2, n_repeats=1)).state_dict()
    assert "masker.TCN.1.shared_block.3.0.weight" in keys


def test_no_skip_model_has_no_skip_convs():
    model = ConvTasNet(ConvTasNetConfig(skip_chan=0, n_filters=16, bn_chan=8, hid_chan=12, n_blocks=2, n_repeats=1))
    assert not any("skip_conv" in k for k in model.state_dict())
    assert model.state_dict()["masker.mask_net.1.weight"].shape == (32, 8, 1)


@pytest.mark.parametrize("length", [16, 17, 100, 257])
def test_forward_shapes_follow_asteroid(length):
    model = ConvTasNet(TINY).eval()
    wav = torch.randn(length)
    with torch.no_grad():
        assert model(wav).shape == (2, length)
        assert model(wav[None]).shape == (1, 2, length)
        assert model(wav[None, None]).shape == (1, 2, length)


def test_gln_equals_groupnorm_with_one_group():
    x = torch.randn(1, 12, 50)
    norm = GlobalLayerNorm(12)
    with torch.no_grad():
        norm.gamma.uniform_(0.5, 1.5)
        norm.beta.uniform_(-0.5, 0.5)
        reference = torch.nn.functional.group_norm(x, 1, norm.gamma, norm.beta, eps=1e-8)
        assert torch.allclose(norm(x), reference, atol=1e-5)


def test_cumulative_norm_matches_its_definition():
    x = torch.randn(1, 5, 20, dtype=torch.float64)
    out = CumulativeLayerNorm(5).double()(x).detach().numpy()[0]
    xs = x.numpy()[0]
    for t in range(20):
        seen = xs[:, : t + 1]
        expected = (xs[:, t] - seen.mean()) / np.sqrt(seen.var() + 1e-8)
        np.testing.assert_allclose(out[:, t], expected, atol=1e-10)
