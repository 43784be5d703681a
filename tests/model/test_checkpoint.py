import pytest
import torch

from convtasnet_hailo.errors import UserError
from convtasnet_hailo.model.checkpoint import load_model, save_model
from convtasnet_hailo.model.config import ConvTasNetConfig
from convtasnet_hailo.model.random_init import random_model
from tests.conftest import TINY


def asteroid_package(model, old_format=False):
    """A dict exactly as Asteroid's ``serialize()`` writes it (FreeFB class name, float rate)."""
    c = model.config
    model_args = {
        "fb_name": "FreeFB",
        "n_filters": c.n_filters,
        "kernel_size": c.kernel_size,
        "stride": c.stride,
        "sample_rate": float(c.sample_rate),
        "in_chan": c.n_filters,
        "out_chan": c.n_filters,
        "bn_chan": c.bn_chan,
        "hid_chan": c.hid_chan,
        "skip_chan": c.skip_chan,
        "conv_kernel_size": c.conv_kernel_size,
        "n_blocks": c.n_blocks,
        "n_repeats": c.n_repeats,
        "n_src": c.n_src,
        "norm_type": c.norm_type.value,
        "mask_act": c.mask_act.value,
        "causal": c.causal,
        "encoder_activation": None,
    }
    if old_format:
        for key in ("sample_rate", "causal", "encoder_activation"):
            del model_args[key]
    return {
        "model_name": "ConvTasNet",
        "state_dict": model.state_dict(),
        "model_args": model_args,
        "infos": {
            "software_versions": {
                "torch_version": torch.__version__,
                "pytorch_lightning_version": "1.2.0",
                "asteroid_version": "0.5.0",
            }
        },
    }


@pytest.mark.parametrize("old_format", [False, True])
def test_asteroid_format_file_loads_with_equal_output(tmp_path, old_format):
    model = random_model(TINY, seed=3)
    path = tmp_path / "pytorch_model.bin"
    torch.save(asteroid_package(model, old_format), path)
    loaded, resolved = load_model(str(path))
    assert resolved == path and loaded.config == TINY
    wav = torch.randn(400)
    with torch.no_grad():
        assert torch.equal(loaded(wav), model(wav))


def test_save_load_round_trip(tmp_path):
    config = ConvTasNetConfig(
        n_src=1,
        kernel_size=32,
        stride=16,
        sample_rate=16000,
        n_filters=16,
        bn_chan=8,
        hid_chan=12,
        skip_chan=6,
        n_blocks=2,
        n_repeats=1,
    )
    model = random_model(config, seed=1)
    save_model(model, tmp_path / "m.pth")
    loaded, _ = load_model(str(tmp_path / "m.pth"))
    assert loaded.config == config
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def _edit(package, **changes):
    package = dict(package)
    package["state_dict"] = dict(package["state_dict"])
    package.update(changes)
    return package


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p["state_dict"].pop("masker.mask_net.0.weight"), "lacks key masker.mask_net.0.weight"),
        (
            lambda p: p["state_dict"].__setitem__("masker.extra.weight", torch.zeros(1)),
            "unexpected key masker.extra.weight",
        ),
        (
            lambda p: p["state_dict"].__setitem__("masker.bottleneck.1.bias", torch.zeros(3)),
            "masker.bottleneck.1.bias has shape",
        ),
        (lambda p: p["model_args"].__setitem__("norm_type", "bN"), "norm_type='bN'"),
        (lambda p: p.__setitem__("model_name", "DPRNNTasNet"), "model_name='DPRNNTasNet'"),
    ],
)
def test_bad_checkpoints_name_the_problem(tmp_path, mutate, message):
    package = _edit(asteroid_package(random_model(TINY)))
    package["model_args"] = dict(package["model_args"])
    mutate(package)
    torch.save(package, tmp_path / "bad.pth")
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_model(str(tmp_path / "bad.pth"))


def test_corrupt_and_foreign_files_are_rejected(tmp_path):
    (tmp_path / "corrupt.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="cannot read checkpoint"):
        load_model(str(tmp_path / "corrupt.pth"))
    torch.save({"weights": 1}, tmp_path / "foreign.pth")
    with pytest.raises(UserError, match="not an Asteroid model file"):
        load_model(str(tmp_path / "foreign.pth"))


def test_missing_file_and_offline_hub_id(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="does not exist"):
        load_model(str(tmp_path / "nope.pth"))
    with pytest.raises(UserError, match="is a directory"):
        load_model(str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "huggingface_hub", None)  # not installed
    with pytest.raises(UserError, match="download pytorch_model.bin from https://huggingface.co/owner/model"):
        load_model("owner/model")
