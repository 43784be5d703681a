import warnings

import pytest

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.config import ConvTasNetConfig, EncoderActivation, MaskAct, NormType


def test_old_model_args_get_asteroid_defaults():
    # 2020-era files lack sample_rate, causal and encoder_activation.
    args = {
        "fb_name": "free",
        "n_filters": 512,
        "kernel_size": 16,
        "stride": 8,
        "in_chan": 512,
        "out_chan": None,
        "bn_chan": 128,
        "hid_chan": 512,
        "skip_chan": 128,
        "conv_kernel_size": 3,
        "n_blocks": 8,
        "n_repeats": 3,
        "n_src": 2,
        "norm_type": "gLN",
        "mask_act": "relu",
    }
    config = ConvTasNetConfig.from_model_args(args)
    assert config.sample_rate == 8000 and config.causal is False
    assert config.encoder_activation is EncoderActivation.LINEAR
    assert config.norm_type is NormType.GLN and config.mask_act is MaskAct.RELU


def test_model_args_round_trip():
    config = ConvTasNetConfig(
        n_src=3,
        norm_type=NormType.CGLN,
        causal=True,
        mask_act=MaskAct.SOFTMAX,
        encoder_activation=EncoderActivation.RELU,
        sample_rate=16000,
    )
    assert ConvTasNetConfig.from_model_args(config.to_model_args()) == config


def test_filterbank_class_name_is_accepted_and_stride_defaults_to_half_kernel():
    config = ConvTasNetConfig.from_model_args({"fb_name": "FreeFB", "kernel_size": 32, "stride": None, "n_src": 1})
    assert config.stride == 16


def test_causal_gln_becomes_cln_as_in_asteroid():
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        config = ConvTasNetConfig.from_model_args({"causal": True, "norm_type": "gLN", "n_src": 2})
    assert config.norm_type is NormType.CLN


@pytest.mark.parametrize(
    "args, message",
    [
        ({"fb_name": "stft"}, "fb_name='stft'"),
        ({"norm_type": "bN"}, "norm_type='bN'"),
        ({"mask_act": "tanh"}, "mask_act='tanh'"),
        ({"encoder_activation": "gelu"}, "encoder_activation='gelu'"),
        ({"n_srcs": 2}, "n_srcs"),
        ({"out_chan": 64}, "out_chan=64"),
        ({"conv_kernel_size": 4}, "conv_kernel_size=4"),
        ({"n_blocks": 0}, "n_blocks=0"),
    ],
)
def test_bad_model_args_name_the_option(args, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        ConvTasNetConfig.from_model_args({"n_src": 2, **args})
