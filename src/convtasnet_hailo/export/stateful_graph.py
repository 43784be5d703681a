"""The stateful graph's computation (``export/stateful.py`` names its inputs, caches and record):
one hop of a causal ConvTasNet as a torch module that the ONNX exporter traces.

Frames are rows, (W, C): the 1x1 convs are matrix products (Gemm), cLN normalizes the last axis
(the pattern onnxruntime fuses into one LayerNormalization kernel), and each dilated depthwise
conv gathers its taps' rows from its cache and the hop at once. At a hop's few frames the graph's
node count is what costs, so every piece is written to the fewest nodes that keep the reference's
arithmetic (within the float contract).
"""

from __future__ import annotations

from ..model.config import ConvTasNetConfig, EncoderActivation, NormType


def stateful_module(model, hop: int, layout, rings, delay: int, steady: bool = False):
    """A torch module running ``model`` (a causal :class:`ConvTasNet`) one hop at a time, its
    encoder keeping ``delay`` past samples (``export.stateful``'s ``cache_layout``, ``ring_layout``
    and ``stream_delay`` give the caches, the depthwise convs' rings and the delay). ``steady``:
    the graph for a whole hop whose frames all lie inside the stream (every hop after the first
    but a partial last one): nothing to mask, so no mask is computed (``valid_samples`` is taken
    and unused).

    ``forward(samples (hop,) float32, valid_samples (1,) int64, *caches, *ring lags)`` ->
    ``(sources (n_src, hop), *next caches, *ring outputs)``, in the layout's and rings' order.
    """
    import torch

    cache_names = tuple(c.name for c in layout)
    lag_names = tuple((r.name, j) for r in rings for j in r.lags)

    class StatefulStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model.eval()
            self.delay = delay
            _add_constants(self, model, hop)

        def forward(self, samples, valid_samples, *inputs):
            state = dict(zip(cache_names + lag_names, inputs, strict=True))
            step = _HopStep(self, state, None if steady else valid_samples >= self.needed)
            sources = step.run(samples)
            return (sources, *(step.next[name] for name in cache_names), *(step.next[r.name] for r in rings))

    return StatefulStep()


def _add_constants(module, model, hop: int) -> None:
    """The graph's constants, laid out for products on frames as rows: the encoder's framing and
    filters, each depthwise conv's tap rows and weights, the 1x1 convs' biases with the residual
    convs' folded in, the skip convs side by side."""
    import torch

    config, frames = model.config, hop // model.config.stride
    module.register_buffer("offsets", torch.arange(frames, dtype=torch.float64), persistent=False)
    # frame j of the hop is complete in the real input when j*S + L - delay <= valid_samples
    needed = torch.arange(frames, dtype=torch.int64) * config.stride + config.kernel_size - module.delay
    module.register_buffer("needed", needed, persistent=False)
    # the encoder as one product: frame j is samples j*S .. j*S + L - 1 of the overlap and the hop
    starts = torch.arange(frames, dtype=torch.int64).view(-1, 1) * config.stride
    module.register_buffer("framing", starts + torch.arange(config.kernel_size), persistent=False)
    module.register_buffer("encoder_weight", model.encoder.filterbank._filters[:, 0, :].t().detach())
    # the residual stream runs without the residual convs' biases (each residual product adds onto
    # it, Gemm's C); the biases summed so far enter each block's input conv through its bias instead
    shift = torch.zeros(config.bn_chan, dtype=torch.float64)
    module.ring_lags = {}  # by block: the earlier hops its depthwise conv reads, oldest first
    for index, block in enumerate(model.masker.TCN):
        layers = block.shared_block
        conv_in, conv = layers[0], layers[3][0]
        weight_in = conv_in.weight[:, :, 0].detach()
        bias_in = conv_in.bias.detach().double() + weight_in.double() @ shift
        module.register_buffer(f"in_bias{index}", bias_in.float())
        module.register_buffer(f"res_weight{index}", block.res_conv.weight[:, :, 0].t().detach().contiguous())
        shift = shift + block.res_conv.bias.detach().double()
        _add_depthwise(module, config, index, frames, conv)
    module.register_buffer("residual_bias", shift.float())
    if config.skip_chan:  # the skip convs side by side: (skip, blocks * hid), and their biases summed
        skips = [block.skip_conv for block in model.masker.TCN]
        module.register_buffer("skip_weight", torch.cat([c.weight[:, :, 0] for c in skips], dim=1).detach())
        module.register_buffer("skip_bias", sum(c.bias for c in skips).detach())


def _add_depthwise(module, config: ConvTasNetConfig, index: int, frames: int, conv) -> None:
    """Block ``index``'s depthwise conv on [its ring's hops, oldest first; the hop; a row of ones]:
    where every tap reads whole hops of its own (dilations in whole hops), each row's weight
    (``depthwise<i>``, (rows, C)) and a 0/1 matrix summing each output frame's rows
    (``tapsum<i>``, (W, rows)); otherwise each output frame's tap rows (``taps<i>``, (W, P + 1))
    and the taps' weights with the bias last (``depthwise<i>``, (P + 1, C))."""
    import torch

    taps = conv.weight[:, 0, :].t().detach()  # (P, C)
    bias = conv.bias.detach().view(1, -1)
    lags, rows, whole = depthwise_rows(config, index, frames)
    module.ring_lags[index] = lags[:-1]  # the ring's hops read, oldest first (the last, 0, is the hop)
    ones_row = len(lags) * frames
    if whole:
        weights = torch.cat([taps.repeat_interleave(frames, dim=0), bias])  # row p*W + t: tap p
        tapsum = torch.zeros(frames, ones_row + 1)
        for t in range(frames):
            tapsum[t, [p * frames + t for p in range(config.conv_kernel_size)] + [ones_row]] = 1.0
        module.register_buffer(f"tapsum{index}", tapsum, persistent=False)
    else:
        weights = torch.cat([taps, bias])
        module.register_buffer(
            f"taps{index}", torch.tensor([[*r, ones_row] for r in rows], dtype=torch.int64), persistent=False
        )
    module.register_buffer(f"depthwise{index}", weights.contiguous())


def depthwise_rows(config: ConvTasNetConfig, block: int, frames: int) -> tuple[tuple[int, ...], list, bool]:
    """Block ``block``'s hops read, oldest first (lags, 0 the hop itself); for each output frame
    the rows its taps read in those hops joined; and whether each tap reads one whole hop of its
    own (row p*W + t for tap p), so that a 0/1 product sums the taps."""
    reads = depthwise_lags(config, block, frames)
    lags = tuple(sorted({j for j, _ in reads}, reverse=True))
    taps = config.conv_kernel_size
    rows = [[lags.index(j) * frames + r for j, r in reads[t * taps : (t + 1) * taps]] for t in range(frames)]
    whole = all(row == [p * frames + t for p in range(taps)] for t, row in enumerate(rows))
    return lags, rows, whole


class _HopStep:
    """One hop through the model: reads ``state`` (the caches by name), fills ``next``.

    Frames are rows here, (W, C): the 1x1 convs are matrix products and cLN normalizes the last
    axis, the pattern onnxruntime fuses into one LayerNormalization kernel; the graph then has a
    few nodes per block, which is what costs at a hop's few frames. Each norm keeps the reference's
    formula; the skip convs run as one product over the blocks' joined hidden frames (their sum
    accumulated inside it rather than block by block, a float32 rounding difference).
    """

    def __init__(self, module, state: dict, complete) -> None:
        import torch

        self.module, offsets = module, module.offsets
        self.model, self.config, self.state, self.next = module.model, module.model.config, state, {}
        index = state["frame_index"]
        self.next["frame_index"] = index + offsets.shape[0]
        self.positions = index + offsets  # (W,) float64, absolute frame indices
        # (W, 1): the frames that exist (None in the steady graph: all of them)
        self.valid = None if complete is None else ((self.positions >= 0) & complete).to(torch.float32).view(-1, 1)
        self.ones = torch.ones(1, self.config.hid_chan)  # the depthwise convs' bias row

    def _masked(self, frames):
        """(W, C) with the frames that do not exist zeroed (the steady graph's are all real)."""
        return frames if self.valid is None else frames * self.valid

    def _history(self, name: str, new, size: int, dim: int = -1):
        """``new`` after the cache ``name``'s last ``size`` entries along ``dim``; the cache moves on."""
        import torch

        if not size:
            return new
        joined = torch.cat([self.state[name], new], dim=dim)  # the cache has the shape it joins with
        self.next[name] = joined.narrow(dim, joined.shape[dim] - size, size)
        return joined

    def _norm(self, norm, x, name: str):
        """(W, C) -> (W, C): cLN per frame; cgLN with the running sums of ``name``."""
        import torch

        from ..model.config import NORM_EPS

        if self.config.norm_type is NormType.CLN:
            centred = x - x.mean(dim=-1, keepdim=True)
            normed = centred / torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + NORM_EPS)
            return normed * norm.gamma + norm.beta
        chan = x.shape[-1]
        masked = x if self.valid is None else x * self.valid
        sums = torch.stack([masked.sum(-1), masked.pow(2).sum(-1)]).to(torch.float64)  # (2, W)
        running = self.state[name] + torch.cumsum(sums, dim=-1)
        self.next[name] = running[:, -1:]
        count = (chan * torch.clamp(self.positions + 1, min=1)).to(torch.float32)
        mean = (running[0].to(torch.float32) / count).view(-1, 1)
        var = (running[1].to(torch.float32) / count).view(-1, 1) - mean.pow(2)
        return (x - mean) / (var + NORM_EPS).sqrt() * norm.gamma + norm.beta

    def _block(self, index: int, block, output):
        """(W, bn) residual stream (less the residual biases so far) -> the block's hidden frames
        (W, hid), the input of its residual and skip convs."""
        import torch.nn.functional as F

        layers, module = block.shared_block, self.module
        hidden = F.linear(output, layers[0].weight[:, :, 0], getattr(module, f"in_bias{index}"))
        hidden = self._norm(layers[2], _prelu(layers[1], hidden), f"block{index}_cgln1")
        hidden = self._depthwise(index, layers[3][0], self._masked(hidden))  # its Chop is the cache's job here
        return self._norm(layers[5], _prelu(layers[4], hidden), f"block{index}_cgln2")

    def _depthwise(self, index: int, conv, hidden):
        """The dilated causal depthwise conv on frames as rows, (W, C) -> (W, C): the ring's earlier
        hops (``block<i>_frames_lag<j>``), the hop's frames and a row of ones joined; then either
        every row weighted and each output frame's rows summed by one 0/1 product (taps on whole
        hops), or each output frame's tap rows gathered (W, P + 1, C; the ones row for the bias),
        weighted and summed over the taps. The hop's frames are the ring's next entry."""
        import torch

        module, lags = self.module, self.module.ring_lags[index]
        name = f"block{index}_frames"
        if lags:
            self.next[name] = hidden
        joined = torch.cat([*(self.state[(name, j)] for j in lags), hidden, self.ones])
        weights = getattr(module, f"depthwise{index}")
        if hasattr(module, f"tapsum{index}"):
            return torch.matmul(getattr(module, f"tapsum{index}"), joined * weights)
        return (joined[getattr(module, f"taps{index}")] * weights).sum(1)

    def run(self, samples):
        """(hop,) -> (n_src, hop): the hop's output samples, final (the overlap-add tail kept)."""
        import torch
        import torch.nn.functional as F

        from ..model.convtasnet import mask_activation

        config, model = self.config, self.model
        wav = self._history("encoder_overlap", samples.view(1, 1, -1), self.module.delay).view(-1)
        tf_rep = torch.matmul(wav[self.module.framing], self.module.encoder_weight)  # (W, L) @ (L, N)
        if config.encoder_activation is EncoderActivation.RELU:
            tf_rep = torch.relu(tf_rep)
        tf_rep = self._masked(tf_rep)  # (W, N); masked frames do not exist
        masker = model.masker
        output = _pointwise(masker.bottleneck[1], self._norm(masker.bottleneck[0], tf_rep, "bottleneck_cgln"))
        hiddens, module = [], self.module
        for index, block in enumerate(masker.TCN):
            hiddens.append(self._block(index, block, output))
            if index + 1 < len(masker.TCN) or not config.skip_chan:  # with skips the last residual is unused
                output = torch.addmm(output, hiddens[-1], getattr(module, f"res_weight{index}"))
        if config.skip_chan:  # every block's skip conv at once: one product over the joined hidden frames
            output = F.linear(torch.cat(hiddens, dim=-1), module.skip_weight, module.skip_bias)
        else:
            output = output + module.residual_bias
        score = _pointwise(masker.mask_net[1], _prelu(masker.mask_net[0], output))
        masks = mask_activation(score.view(-1, config.n_src, config.n_filters), config.mask_act)  # (W, n_src, N)
        return self._decode((masks * tf_rep.unsqueeze(1)).permute(1, 2, 0))

    def _decode(self, spec):
        """(n_src, N, W) masked frames -> (n_src, hop) final samples; the tail goes to the cache."""
        import torch
        import torch.nn.functional as F

        decoder = self.model.decoder.filterbank
        wav = F.conv_transpose1d(spec, decoder._filters, stride=decoder.stride)[:, 0]  # (n_src, hop + L - S)
        tail = self.config.kernel_size - self.config.stride
        hop = wav.shape[-1] - tail
        if tail:
            wav = torch.cat([wav[:, :tail] + self.state["decoder_tail"], wav[:, tail:]], dim=-1)
            self.next["decoder_tail"] = wav[:, hop:]
        return wav[:, :hop]


def _prelu(prelu, x):
    """Asteroid's PReLU has one slope: LeakyRelu with it (the same values; one kernel without the
    broadcast PRelu takes); a per-channel PReLU stays itself."""
    import torch.nn.functional as F

    if prelu.weight.numel() == 1:
        return F.leaky_relu(x, float(prelu.weight.detach()[0]))
    return prelu(x)


def _pointwise(conv, x):
    """A 1x1 Conv1d on frames as rows: (W, C_in) -> (W, C_out), one matrix product plus bias."""
    import torch.nn.functional as F

    return F.linear(x, conv.weight[:, :, 0], conv.bias)


def depthwise_lags(config: ConvTasNetConfig, block: int, frames: int) -> tuple[tuple[int, int], ...]:
    """For each output frame t (row-major, then tap p) of a hop of ``frames`` frames: the hop
    (0: this one, j: j hops before) and the row in it that block ``block``'s tap p reads (frame
    t - (P - 1 - p) * dilation)."""
    taps = config.conv_kernel_size
    reads = []
    for t in range(frames):
        for p in range(taps):
            back = t - (taps - 1 - p) * config.dilation(block)
            reads.append((-(back // frames), back % frames))
    return tuple(reads)
