"""The baseline ConvTasNet: Asteroid's module layout, state_dict keys and forward.

Never changed for Hailo's sake: every Hailo rewrite lives in ``convtasnet_hailo.hailo``.
Shapes use B batch, T samples, N filters, F latent frames, n_src sources.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import NORM_EPS, ConvTasNetConfig, EncoderActivation, MaskAct, NormType


class FreeFilterbank(nn.Module):
    """Learned filters ``_filters`` of shape (N, 1, L) (Asteroid's FreeFB)."""

    def __init__(self, n_filters: int, kernel_size: int, stride: int):
        super().__init__()
        self.stride = stride
        self._filters = nn.Parameter(torch.empty(n_filters, 1, kernel_size))
        nn.init.xavier_normal_(self._filters)


class Encoder(nn.Module):
    """Strided conv of the waveform with the filterbank, no padding, no bias.

    Shape: (B, 1, T) -> (B, N, F) with F = (T - L) // S + 1.
    """

    def __init__(self, n_filters: int, kernel_size: int, stride: int):
        super().__init__()
        self.filterbank = FreeFilterbank(n_filters, kernel_size, stride)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return F.conv1d(wav, self.filterbank._filters, stride=self.filterbank.stride)


class Decoder(nn.Module):
    """Transposed conv with the filterbank (overlap-add of filter-weighted frames), no bias.

    Shape: (B, n_src, N, F) -> (B, n_src, (F - 1) * S + L).
    """

    def __init__(self, n_filters: int, kernel_size: int, stride: int):
        super().__init__()
        self.filterbank = FreeFilterbank(n_filters, kernel_size, stride)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        lead, (n_filters, n_frames) = spec.shape[:-2], spec.shape[-2:]
        wav = F.conv_transpose1d(
            spec.reshape(-1, n_filters, n_frames),
            self.filterbank._filters,
            stride=self.filterbank.stride,
        )
        return wav.view(*lead, wav.shape[-1])


class _AffineNorm(nn.Module):
    """Base of the layer norms: per-channel ``gamma``/``beta`` applied after normalizing."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def apply_gain_and_bias(self, normed: torch.Tensor) -> torch.Tensor:
        """gamma * normed + beta per channel (dim 1); the same products as Asteroid's
        transpose-multiply-transpose, without the two transposed copies."""
        shape = (-1,) + (1,) * (normed.dim() - 2)
        return self.gamma.view(shape) * normed + self.beta.view(shape)


class GlobalLayerNorm(_AffineNorm):
    """gLN: mean and biased variance over channels and all frames. Shape (B, C, F) kept."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = list(range(1, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        var = torch.var(x, dim=dims, keepdim=True, unbiased=False)
        return self.apply_gain_and_bias((x - mean) / torch.sqrt(var + NORM_EPS))


class ChannelLayerNorm(_AffineNorm):
    """cLN: per-frame mean and biased variance over channels. Shape (B, C, F) kept."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.mean(x, dim=1, keepdim=True)
        var = torch.var(x, dim=1, keepdim=True, unbiased=False)
        return self.apply_gain_and_bias((x - mean) / (var + NORM_EPS).sqrt())


class CumulativeLayerNorm(_AffineNorm):
    """cgLN: statistics over channels and frames 0..t (Asteroid >= 0.5 formula). Shape kept."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, chan, n_frames = x.size()
        cum_sum = torch.cumsum(x.sum(1, keepdim=True), dim=-1)
        cum_pow_sum = torch.cumsum(x.pow(2).sum(1, keepdim=True), dim=-1)
        count = torch.arange(chan, chan * (n_frames + 1), chan, dtype=x.dtype).view(1, 1, -1)
        cum_mean = cum_sum / count
        cum_var = cum_pow_sum / count - cum_mean.pow(2)
        return self.apply_gain_and_bias((x - cum_mean) / (cum_var + NORM_EPS).sqrt())


NORM_CLASSES: dict[NormType, type[_AffineNorm]] = {
    NormType.GLN: GlobalLayerNorm,
    NormType.CLN: ChannelLayerNorm,
    NormType.CGLN: CumulativeLayerNorm,
}


class Chop(nn.Module):
    """Drops the last ``size`` frames (turns a symmetric-padded conv into a causal one)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : -self.size] if self.size else x


class TemporalBlock(nn.Module):
    """One TCN block (Asteroid's Conv1DBlock): 1x1 conv, PReLU, norm, depthwise dilated conv,
    PReLU, norm, then residual and (optional) skip 1x1 convs.

    Shape: (B, bn_chan, F) -> residual (B, bn_chan, F), skip (B, skip_chan, F).
    """

    def __init__(self, config: ConvTasNetConfig, block_index: int):
        super().__init__()
        hid = config.hid_chan
        padding = config.depthwise_padding(block_index)
        norm = NORM_CLASSES[config.norm_type]
        depth_conv: nn.Module = nn.Conv1d(
            hid,
            hid,
            config.conv_kernel_size,
            padding=padding,
            dilation=config.dilation(block_index),
            groups=hid,
        )
        if config.causal:
            depth_conv = nn.Sequential(depth_conv, Chop(padding))
        self.shared_block = nn.Sequential(
            nn.Conv1d(config.bn_chan, hid, 1),
            nn.PReLU(),
            norm(hid),
            depth_conv,
            nn.PReLU(),
            norm(hid),
        )
        self.res_conv = nn.Conv1d(hid, config.bn_chan, 1)
        self.skip_chan = config.skip_chan
        if config.skip_chan:
            self.skip_conv = nn.Conv1d(hid, config.skip_chan, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        shared = self.shared_block(x)
        skip = self.skip_conv(shared) if self.skip_chan else None
        return self.res_conv(shared), skip


def mask_activation(score: torch.Tensor, mask_act: MaskAct) -> torch.Tensor:
    """Applies the mask nonlinearity; ``score`` is (B, n_src, N, F), softmax over n_src."""
    if mask_act is MaskAct.RELU:
        return torch.relu(score)
    if mask_act is MaskAct.SIGMOID:
        return torch.sigmoid(score)
    if mask_act is MaskAct.SOFTMAX:
        return torch.softmax(score, dim=1)
    return score


class TDConvNet(nn.Module):
    """The masker: bottleneck (norm + 1x1 conv), n_blocks*n_repeats TCN blocks, mask head.

    Shape: (B, N, F) -> masks (B, n_src, N, F).
    """

    def __init__(self, config: ConvTasNetConfig):
        super().__init__()
        self.config = config
        norm = NORM_CLASSES[config.norm_type]
        self.bottleneck = nn.Sequential(norm(config.n_filters), nn.Conv1d(config.n_filters, config.bn_chan, 1))
        self.TCN = nn.ModuleList(TemporalBlock(config, i) for i in range(config.n_tcn_blocks))
        self.mask_net = nn.Sequential(nn.PReLU(), nn.Conv1d(config.mask_in_chan, config.n_src * config.n_filters, 1))

    def forward(self, tf_rep: torch.Tensor) -> torch.Tensor:
        batch, _, n_frames = tf_rep.shape
        output = self.bottleneck(tf_rep)
        skip_sum = torch.tensor([0.0], device=output.device)
        for block in self.TCN:
            residual, skip = block(output)
            if skip is not None:
                skip_sum = skip_sum + skip
            output = output + residual
        score = self.mask_net(skip_sum if self.config.skip_chan else output)
        score = score.view(batch, self.config.n_src, self.config.n_filters, n_frames)
        return mask_activation(score, self.config.mask_act)


def fit_length(wav: torch.Tensor, length: int) -> torch.Tensor:
    """Right-pads with zeros or right-trims the last axis to ``length`` (Asteroid pad_x_to_y)."""
    return F.pad(wav, [0, length - wav.shape[-1]])


class ConvTasNet(nn.Module):
    """Asteroid's ConvTasNet with a free filterbank (state_dict compatible).

    Shape: (T,), (B, T) or (B, 1, T) -> (n_src, T), (B, n_src, T), (B, n_src, T).
    """

    def __init__(self, config: ConvTasNetConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.n_filters, config.kernel_size, config.stride)
        self.masker = TDConvNet(config)
        self.decoder = Decoder(config.n_filters, config.kernel_size, config.stride)

    def forward_encoder(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) -> (B, N, F)."""
        tf_rep = self.encoder(wav)
        if self.config.encoder_activation is EncoderActivation.RELU:
            tf_rep = torch.relu(tf_rep)
        return tf_rep

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        in_dim = wav.dim()
        wav3 = wav.reshape(1, 1, -1) if in_dim == 1 else (wav.unsqueeze(1) if in_dim == 2 else wav)
        tf_rep = self.forward_encoder(wav3)
        masks = self.masker(tf_rep)
        decoded = self.decoder(masks * tf_rep.unsqueeze(1))
        out = fit_length(decoded, wav3.shape[-1])
        return out[0] if in_dim == 1 else out
