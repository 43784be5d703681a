"""Load and save Asteroid checkpoint files (``{model_name, model_args, state_dict, infos}``).

Sources: a local .pth/.bin file, or a Hugging Face model id (``owner/name``, file
``pytorch_model.bin``) when huggingface_hub is installed and the hub is reachable.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from ..errors import UserError
from ..files import written_atomically
from ..guard import regular_file
from .config import ConvTasNetConfig
from .convtasnet import ConvTasNet

HUB_FILENAME = "pytorch_model.bin"
_MODEL_NAMES = ("ConvTasNet",)


def _read_package(path: Path) -> dict[str, Any]:
    try:
        # Asteroid's serialize() stores torch.__version__, a TorchVersion object, in infos.
        with torch.serialization.safe_globals([TorchVersion]):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise UserError(f"cannot read checkpoint {path}: permission denied; make it readable") from None
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise _unreadable(path, exc) from None
        raise UserError(  # torch's weights_only unpickler refused a global: it is never run
            f"cannot read checkpoint {path}: it holds Python objects besides tensors (a pickle that could run "
            "code), which are never loaded; pass an Asteroid .pth/.bin saved with serialize()"
        ) from None
    except Exception as exc:  # torch.load on a truncated or foreign file raises many types (OSError, IndexError...)
        raise _unreadable(path, exc) from None
    if not isinstance(package, dict) or "state_dict" not in package or "model_args" not in package:
        if isinstance(package, dict):
            keys = sorted(map(str, package))
            found = f"{len(keys)} key(s): {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
        else:
            found = f"a {type(package).__name__}"
        raise UserError(
            f"{path} is not an Asteroid model file: expected keys model_name, model_args, state_dict; found "
            f"{found} (a bare state_dict? save the model with Asteroid's serialize())"
        )
    return package


def _unreadable(path: Path, exc: BaseException) -> UserError:
    lines = str(exc).strip().splitlines()
    first_line = lines[0][:120] if lines else type(exc).__name__
    return UserError(
        f"cannot read checkpoint {path}: {first_line} (truncated, or not a torch.save file? "
        "pass the complete Asteroid .pth/.bin)"
    )


def _check_tensor(key: str, value: Any, source: str) -> None:
    """A weight is a floating-point tensor with finite values; anything else is refused by name."""
    if not isinstance(value, torch.Tensor):
        raise UserError(
            f"checkpoint {source}: state_dict[{key!r}] is a {type(value).__name__}, not a tensor; "
            "re-save the model with Asteroid's serialize()"
        )
    if not value.is_floating_point():
        raise UserError(
            f"checkpoint {source}: {key} holds {str(value.dtype).replace('torch.', '')} values, not "
            "floating point; re-save the model with Asteroid's serialize()"
        )
    finite = torch.isfinite(value)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise UserError(
            f"checkpoint {source}: {key} holds {bad} NaN/Inf value(s) of {value.numel()}; the training "
            "diverged or the file was damaged: use an earlier checkpoint"
        )


def _check_state_dict(model: ConvTasNet, state_dict: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    if missing:
        raise UserError(f"checkpoint {source} lacks key {missing[0]} ({len(missing)} missing) for its model_args")
    if extra:
        raise UserError(f"checkpoint {source} has unexpected key {extra[0]} ({len(extra)} extra) for its model_args")
    for key, tensor in expected.items():
        _check_tensor(key, state_dict[key], source)
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise UserError(
                f"checkpoint {source}: key {key} has shape {tuple(state_dict[key].shape)}, "
                f"model_args imply {tuple(tensor.shape)}: the weights and model_args are of different models; "
                "re-save the model with Asteroid's serialize()"
            )


def model_from_package(package: dict[str, Any], source: str) -> ConvTasNet:
    """Builds the baseline model from an Asteroid package dict (strict key and shape check)."""
    name = package.get("model_name", "ConvTasNet")
    if name not in _MODEL_NAMES:
        raise UserError(f"checkpoint {source} holds model_name={name!r}; only ConvTasNet is supported")
    for key in ("model_args", "state_dict"):
        if not isinstance(package[key], Mapping):
            raise UserError(
                f"checkpoint {source}: {key} is a {type(package[key]).__name__}, not a mapping of "
                f"names to {'options' if key == 'model_args' else 'tensors'}; re-save the model with "
                "Asteroid's serialize()"
            )
    config = ConvTasNetConfig.from_model_args(package["model_args"])
    with torch.device("meta"):  # shapes without memory: model_args asking for a huge model allocate nothing
        shell = ConvTasNet(config)
    state_dict = {str(k): v for k, v in package["state_dict"].items()}
    _check_state_dict(shell, state_dict, source)
    model = ConvTasNet(config)  # the size of the weights the file holds
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/"))


def _download_from_hub(model_id: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise UserError(
            f"{model_id!r} is not a local file and huggingface_hub is not installed: "
            f"download {HUB_FILENAME} from https://huggingface.co/{model_id} and pass its path"
        ) from None
    try:
        return Path(hf_hub_download(repo_id=model_id, filename=HUB_FILENAME))
    except Exception as exc:  # the hub raises many network/auth error types
        raise UserError(
            f"cannot fetch {model_id!r} from the Hugging Face hub ({type(exc).__name__}); offline, "
            f"download {HUB_FILENAME} from https://huggingface.co/{model_id} on a connected "
            "machine and pass the file's path"
        ) from None


def resolve_checkpoint(path_or_id: str) -> Path:
    """Local path if it exists, else a hub download for ``owner/name`` ids."""
    path = Path(os.path.expanduser(path_or_id))
    if path.is_file():
        return path
    if path.is_dir():
        raise UserError(f"model path {path} is a directory; pass the checkpoint file inside it")
    if path.exists():  # a FIFO or a device: torch.load would wait on it forever
        regular_file(path, "model path", "pass the checkpoint file (.pth/.bin)")
    if _looks_like_hub_id(path_or_id):
        return _download_from_hub(path_or_id)
    raise UserError(f"model file {path_or_id} does not exist (pass a .pth/.bin path or a hub id owner/name)")


def load_model(path_or_id: str) -> tuple[ConvTasNet, Path]:
    """Loads an Asteroid ConvTasNet checkpoint; returns the model (eval mode) and its file."""
    path = resolve_checkpoint(path_or_id)
    return model_from_package(_read_package(path), str(path)), path


def model_package(model: ConvTasNet) -> dict[str, Any]:
    """The dict Asteroid's ``serialize()`` writes (``infos`` names this toolkit)."""
    from .._version import __version__

    return {
        "model_name": "ConvTasNet",
        "model_args": model.config.to_model_args(),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "infos": {
            "software_versions": {"torch_version": str(torch.__version__), "convtasnet_hailo_version": __version__}
        },
    }


def save_model(model: ConvTasNet, path: Path) -> None:
    """Writes ``model`` as an Asteroid checkpoint file (atomically: an interrupt leaves none)."""
    with written_atomically(path) as temporary:
        torch.save(model_package(model), temporary)
