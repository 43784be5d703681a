"""Named intermediate tensors of the baseline model, computed with its own modules.

The trace walks the baseline's submodules in the order of its forward, so its values are the
reference the stitched executor is held to. Every tensor is returned as float32 numpy shaped
(G, C, length) like the executor's store: G = 1, or n_src for per-source tensors.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ..model.convtasnet import ConvTasNet, fit_length, mask_activation
from . import names


def _np(tensor: torch.Tensor) -> np.ndarray:
    """(1, C, L) or (n_src, C, L) tensor -> numpy of the same shape and dtype."""
    return tensor.detach().cpu().numpy()


@torch.no_grad()
def trace_reference(model: ConvTasNet, wav: np.ndarray, float64: bool = False) -> dict[str, np.ndarray]:
    """Runs the baseline on one mono waveform (T,) and returns every named intermediate.

    Names come from ``plan.names``, as the plan's do; ``final_output`` is
    ``model(wav)`` itself, so the trace is checked against the baseline's own forward.
    With ``float64`` the same model runs in double precision: exact math to about 1e-16, the
    judge that separates a path's own error from the float32 reference's rounding.
    """
    if float64:
        model = copy.deepcopy(model).double()
    config = model.config
    out: dict[str, np.ndarray] = {}
    dtype = next(model.parameters()).dtype
    wav_t = torch.as_tensor(np.asarray(wav), dtype=dtype).reshape(1, 1, -1)
    out[names.WAV] = _np(wav_t)
    tf_rep = model.forward_encoder(wav_t)  # (1, N, F)
    out[names.ENCODER] = _np(tf_rep)
    masker = model.masker
    out[names.BOTTLENECK_NORM] = _np(masker.bottleneck[0](tf_rep))
    x = masker.bottleneck(tf_rep)
    out[names.BOTTLENECK] = _np(x)
    skip_sum = torch.tensor([0.0])
    for index, block in enumerate(masker.TCN):
        shared = block.shared_block
        hidden = shared[1](shared[0](x))
        out[names.tcn(index, "in")] = _np(hidden)
        hidden = shared[2](hidden)
        out[names.tcn(index, "in_norm")] = _np(hidden)
        hidden = shared[4](shared[3](hidden))
        out[names.tcn(index, "depth")] = _np(hidden)
        hidden = shared[5](hidden)
        out[names.tcn(index, "depth_norm")] = _np(hidden)
        residual, skip = block.res_conv(hidden), None
        if config.skip_chan:
            skip = block.skip_conv(hidden)
            out[names.tcn(index, "skip")] = _np(skip)
            skip_sum = skip_sum + skip
            out[names.tcn(index, "skip_sum")] = _np(skip_sum)
        x = x + residual
        out[names.tcn(index, "residual")] = _np(x)
    score = masker.mask_net(skip_sum if config.skip_chan else x)
    out[names.MASK_NET] = _np(score)
    score = score.view(config.n_src, config.n_filters, -1)
    out[names.MASK_SCORE] = _np(score)
    masks = mask_activation(score.unsqueeze(0), config.mask_act)[0]
    out[names.MASK_OUTPUT] = out[names.MASKER_OUTPUT] = _np(masks)
    masked = masks * tf_rep  # (n_src, N, F)
    out[names.SOURCE_PROJECTOR] = out[names.MASKED_REP] = _np(masked)
    filters = model.decoder.filterbank._filters  # (N, 1, L)
    out[names.DECODER_PRE] = _np(torch.einsum("snf,nl->slf", masked, filters[:, 0, :]))
    decoded = model.decoder(masked.unsqueeze(0))[0]  # (n_src, (F-1)S+L)
    out[names.DECODER_HEAD] = _np(decoded[:, None, :])
    out[names.DECODER_OUTPUT] = _np(fit_length(decoded, wav_t.shape[-1])[:, None, :])
    out[names.FINAL_OUTPUT] = _np(model(wav_t)[0][:, None, :])
    return out
