"""The denoiser: a bidirectional pre-norm transformer that maps (z_t, t) to logits over x.

LLaMA-style as in MD4's text model (md4_spec.md section 4): RMSNorm, rotary position
embeddings (or learned per-position embeddings: for tables a "position" is a column, so the
column embedding is the positional one and the set is order-free), SwiGLU MLP, no biases,
PyTorch ``scaled_dot_product_attention`` with a key-padding mask so a padded batch gives the
same result as each sequence alone. Time conditioning (adaLN-Zero) is optional; without it the
sampler can skip the network when no token changed (MDLM's cache).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass
class DenoiserConfig:
    """Size and shape of the transformer.

    Example:
        >>> DenoiserConfig(vocab_size=33, dim=64, n_layers=2, n_heads=4).head_dim
        16
    """

    vocab_size: int
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 8
    mlp_ratio: float = 8 / 3
    max_len: int = 1024
    positions: str = "rope"  # "rope" or "learned" (one embedding per position / table column)
    time_conditioning: bool = False
    causal: bool = False  # left-to-right attention: the autoregressive baseline
    dropout: float = 0.0
    rope_theta: float = 10_000.0
    # Periodic features of each visible token's exact value (tables: numeric cells), at this many
    # geometric frequencies; 0 = none. Needs learned positions (one projection per position).
    value_frequencies: int = 0
    architecture: str = "seqdiff"  # this transformer, or "esm2": fair-esm's ESM-2 (seqdiff.protein.esm)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def hidden_dim(self) -> int:
        # Rounded up to a multiple of 32 as MD4 does; keeps matmuls well shaped.
        return int(math.ceil(self.mlp_ratio * self.dim / 32) * 32)

    def to_dict(self) -> dict:
        return asdict(self)


def rope_tables(n: int, head_dim: int, theta: float, device: torch.device | None = None) -> Tensor:
    """Rotary tables [2, n, 2, head_dim/2] in float32: cos and sign-folded sin per position, laid
    out so that ``apply_rope`` is two multiplications and an add in any dtype.

    Example:
        >>> rope_tables(3, 8, 10_000.0).shape
        torch.Size([2, 3, 2, 4])
    """
    freqs = theta ** (-torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.arange(n, device=device, dtype=torch.float32)[:, None] * freqs[None]
    cos, sin = angles.cos(), angles.sin()
    return torch.stack([torch.stack([cos, cos], dim=1), torch.stack([-sin, sin], dim=1)])


def apply_rope(x: Tensor, rope: Tensor) -> Tensor:
    """Rotate the pairs (x[..., i], x[..., i + d/2]) of a [B, H, N, D] tensor by ``rope_tables``
    [2, N, 2, D/2] (in x's dtype: no float32 round trip).

    Example:
        >>> x = torch.randn(1, 1, 3, 8)
        >>> (apply_rope(x, rope_tables(3, 8, 10_000.0)).norm(dim=-1) - x.norm(dim=-1)).abs().max() < 1e-5
        tensor(True)
    """
    cos, sin = rope
    halves = x.unflatten(-1, (2, -1))
    return (halves * cos + halves.flip(-2) * sin).flatten(-2)


# Up to this many keys, CPU attention is written out as two matmuls and a softmax (a table row is one
# token per column): on short rows PyTorch's CPU flash kernel is the slower, on long ones the faster
# (BENCHMARKS.md, "Attention on CPU").
SHORT_ATTENTION = 64
# PyTorch's CPU softmax vectorises along the keys (16 floats with AVX-512): over fewer keys (a narrow
# table's row) exp / sum written out is the faster, from 16 keys on PyTorch's (BENCHMARKS.md, "Attention
# on CPU").
FEW_KEYS = 16


def written_out_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dimension as exp / sum: what CPU attention uses below ``FEW_KEYS`` keys.
    The shift by each row's maximum keeps exp finite and changes neither the result nor its gradient.

    Example:
        >>> x = torch.tensor([[1.0, 2.0, 1000.0]])
        >>> torch.allclose(written_out_softmax(x), x.softmax(-1))
        True
    """
    weights = (scores - scores.detach().amax(dim=-1, keepdim=True)).exp()
    return weights / weights.sum(dim=-1, keepdim=True)


def explicit_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout: float, causal: bool
) -> Tensor:
    """softmax(q k^T / sqrt(d)) v of [B, H, N, D] tensors, with ``scaled_dot_product_attention``'s
    arguments and results (a query with no key to attend gets zeros), as plain tensor operations.

    Example:
        >>> q = torch.randn(2, 2, 5, 4)
        >>> fused = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        >>> torch.allclose(explicit_attention(q, q, q, None, 0.0, True), fused, atol=1e-6)
        True
    """
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if causal:
        earlier = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).tril()
        mask = earlier if mask is None else mask & earlier
    if mask is not None:
        # The most negative float, not -inf: a query with no key left gets finite weights (and
        # finite gradients), then zeros, as from the fused kernels.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = written_out_softmax(scores) if scores.shape[-1] < FEW_KEYS else scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    if dropout:
        weights = F.dropout(weights, dropout)
    return weights @ v


def _fused_attention(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout: float, causal: bool
) -> Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout: float, causal: bool) -> Tensor:
    """``scaled_dot_product_attention`` of [B, H, N, D] tensors; on CPU in float32 whatever the
    autocast, and as ``explicit_attention`` up to ``SHORT_ATTENTION`` keys.

    PyTorch's CPU attention kernels are slower in bfloat16 than in float32, while bfloat16 matmuls are
    faster (BENCHMARKS.md, "bf16 on CPU"): so CPU autocast keeps the linear layers in bfloat16 and
    attention in float32.

    Example:
        >>> q = torch.randn(1, 2, 3, 4, dtype=torch.bfloat16)
        >>> attention(q, q, q, None, 0.0, False).dtype
        torch.bfloat16
    """
    if q.device.type != "cpu":
        return _fused_attention(q, k, v, mask, dropout, causal)
    kernel = explicit_attention if k.shape[-2] <= SHORT_ATTENTION else _fused_attention
    if q.dtype == torch.float32:
        return kernel(q, k, v, mask, dropout, causal)
    with torch.autocast("cpu", enabled=False):
        return kernel(q.float(), k.float(), v.float(), mask, dropout, causal).to(q.dtype)


def compute_dtype(h: Tensor) -> torch.dtype:
    """The dtype the linear layers produce from ``h``: autocast's, when it is on."""
    if torch.is_autocast_enabled(h.device.type):
        return torch.get_autocast_dtype(h.device.type)
    return h.dtype


PACKED_SIZES = 32  # the packed row counts one batch shape can take (see padded_rows)


def padded_rows(rows: Tensor, total: int) -> Tensor:
    """``rows`` (of ``total`` positions) padded with position 0 to the next multiple of
    total / PACKED_SIZES; the caller drops the padding's outputs. The packed matmuls then take a few
    shapes, not a new one each batch: oneDNN (bf16 on a CPU) builds and caches a kernel per shape,
    and a new row count every step grew that cache by gigabytes over a wide table's fit.

    Example:
        >>> padded_rows(torch.tensor([3, 5, 9]), 64).tolist()
        [3, 5, 9, 0]
    """
    granule = max(1, -(-total // PACKED_SIZES))
    size = min(total, -(-max(rows.numel(), 1) // granule) * granule)
    return torch.cat([rows, rows.new_zeros(size - rows.numel())])


class Block(nn.Module):
    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        self.attn_norm = nn.RMSNorm(cfg.dim, elementwise_affine=not cfg.time_conditioning)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.attn_out = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.mlp_norm = nn.RMSNorm(cfg.dim, elementwise_affine=not cfg.time_conditioning)
        self.gate_up = nn.Linear(cfg.dim, 2 * cfg.hidden_dim, bias=False)
        self.down = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.time_conditioning:
            # adaLN-Zero: shift, scale, gate for both sub-blocks, zero-initialised.
            self.ada = nn.Linear(cfg.dim, 6 * cfg.dim)
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(
        self,
        h: Tensor,
        attn_mask: Tensor | None,
        rope: Tensor | None,
        cond: Tensor | None,
        cache: dict | None = None,
        rows: Tensor | None = None,
    ) -> Tensor:
        """[B, N, dim] -> [B, N, dim]; with ``rows`` (indices into the B * N flattened positions)
        only those positions go on after attention (every position still serves as a key), packed:
        [len(rows), dim]."""
        b, n, _ = h.shape
        if cond is not None:
            shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond)[:, None].chunk(6, dim=-1)
        x = self.attn_norm(h)
        if cond is not None:
            x = x * (1 + scale1) + shift1
        # unbind, then transpose each: the backward stacks the three gradients straight into qkv's
        # layout, where a permute of all three would copy them back.
        qkv = self.qkv(x).view(b, n, 3, self.cfg.n_heads, self.cfg.head_dim)
        q, k, v = (y.transpose(1, 2) for y in qkv.unbind(2))
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        if cache is not None:  # incremental decoding: attend to every earlier position
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        p = self.cfg.dropout if self.training else 0.0
        causal = self.cfg.causal and cache is None
        a = attention(q, k, v, attn_mask, dropout=p, causal=causal)
        a = a.transpose(1, 2).reshape(b, n, self.cfg.dim)
        if rows is not None:
            # index_select: its backward (index_add) is cheaper than indexing's (index_put, accumulating)
            a, h = a.reshape(b * n, -1).index_select(0, rows), h.reshape(b * n, -1).index_select(0, rows)
            if cond is not None:  # [B, 1, dim] -> the packed rows' sequences
                gate1, shift2, scale2, gate2 = (c[rows // n, 0] for c in (gate1, shift2, scale2, gate2))
        a = self.dropout(self.attn_out(a))
        h = h + (a * (1 + gate1) if cond is not None else a)
        x = self.mlp_norm(h)
        if cond is not None:
            x = x * (1 + scale2) + shift2
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        m = self.dropout(self.down(F.silu(gate) * up))
        return h + (m * (1 + gate2) if cond is not None else m)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of 1000 t -> MLP, as MD4's ``time_features='t'``."""

    def __init__(self, dim: int, n_freq: int = 128):
        super().__init__()
        self.n_freq = n_freq
        self.mlp = nn.Sequential(nn.Linear(2 * n_freq, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        freqs = torch.exp(-math.log(10_000) * torch.arange(self.n_freq, device=t.device) / self.n_freq)
        angles = 1000 * t.float()[:, None] * freqs[None]
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=-1))


class ValueEmbedding(nn.Module):
    """Periodic features of exact values, projected per position: for v in [0, 1],
    sin and cos of pi 2^k v for k < ``frequencies``, times a learned [2 frequencies, dim] matrix
    of the position. NaN values (masked or unknown) contribute nothing.

    A token says which bin a number falls in; these features say where in the bin, at every scale
    down to 2^-frequencies (the periodic embeddings of Gorishniy et al., NeurIPS 2022, with fixed
    frequencies). Zero-initialised: a new model starts as if it had none.

    Example:
        >>> emb = ValueEmbedding(frequencies=4, positions=3, dim=8)
        >>> emb(torch.tensor([[0.5, float("nan"), 0.1]])).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, frequencies: int, positions: int, dim: int):
        super().__init__()
        # sin at phase 0 and pi/2 (cos) of each frequency, as one sin: no concatenation per call.
        freqs = math.pi * 2.0 ** torch.arange(frequencies)
        self.register_buffer("freqs", torch.cat([freqs, freqs]), persistent=False)
        phases = torch.cat([torch.zeros(frequencies), torch.full((frequencies,), math.pi / 2)])
        self.register_buffer("phases", phases, persistent=False)
        self.proj = nn.Parameter(torch.zeros(positions, 2 * frequencies, dim))

    def forward(self, values: Tensor) -> Tensor:
        known = ~torch.isnan(values)
        angles = torch.where(known, values, 0.0)[..., None].float() * self.freqs + self.phases
        features = angles.sin() * known[..., None]
        return torch.einsum("bnf,nfd->bnd", features, self.proj[: values.shape[1]])


class Denoiser(nn.Module):
    """Bidirectional transformer over token ids -> logits over the vocabulary.

    ``valid`` [B, N] marks real (non-padding) positions; padding never attends or is attended.

    Example:
        >>> net = Denoiser(DenoiserConfig(vocab_size=10, dim=32, n_layers=1, n_heads=2))
        >>> net(torch.zeros(2, 5, dtype=torch.long)).shape
        torch.Size([2, 5, 10])
    """

    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        if cfg.positions == "learned":
            self.pos = nn.Parameter(torch.zeros(cfg.max_len, cfg.dim))
            nn.init.normal_(self.pos, std=0.02)
        elif cfg.positions == "rope":
            # Built once; each forward takes its positions' rows in the compute dtype.
            rope = rope_tables(cfg.max_len, cfg.head_dim, cfg.rope_theta)
            self.register_buffer("rope", rope, persistent=False)
        else:
            raise ValueError(f"positions must be 'rope' or 'learned', not {cfg.positions!r}")
        self.time = TimeEmbedding(cfg.dim) if cfg.time_conditioning else None
        self.values = None
        if cfg.value_frequencies:
            if cfg.positions != "learned":
                raise ValueError("value_frequencies needs learned positions (one projection per position)")
            self.values = ValueEmbedding(cfg.value_frequencies, cfg.max_len, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() == 2 and "ada" not in name and name != "pos":
                nn.init.normal_(p, std=0.02)
        # Residual-branch outputs scaled by depth (GPT-2 / MD4 depth-scaled init).
        for block in self.blocks:
            nn.init.normal_(block.attn_out.weight, std=0.02 / math.sqrt(2 * self.cfg.n_layers))
            nn.init.normal_(block.down.weight, std=0.02 / math.sqrt(2 * self.cfg.n_layers))

    def forward(
        self,
        tokens: Tensor,
        valid: Tensor | None = None,
        t: Tensor | None = None,
        caches: list[dict] | None = None,
        offset: int = 0,
        logits: bool = True,
        values: Tensor | None = None,
        needed: Tensor | None = None,
    ) -> Tensor:
        """Logits [B, N, V]; with ``logits=False`` the normalised final hidden states [B, N, dim] that
        ``head`` maps to logits, so a caller that needs only some tokens' logits multiplies by those
        rows of ``head.weight`` alone. Both go through ``__call__``, so a compiled denoiser
        (``nn.Module.compile``) compiles either. ``caches`` (one dict per layer) and ``offset`` (the
        position of ``tokens[:, 0]``) serve incremental decoding in a causal model. ``values``
        [B, N] (in [0, 1], NaN where none) feed the ``ValueEmbedding`` of a model that has one; the
        caller hides them at masked tokens (``MaskedDiffusion`` does). ``needed`` (bool [B, N]) marks
        the positions whose outputs the caller uses (training: the tokens the loss scores); the last
        block's output projection and MLP then run at those alone, and the outputs elsewhere are
        zeros. With half the tokens scored that skips about a fifth of a 2-layer model's matmuls."""
        b, n = tokens.shape
        h = self.embed(tokens)
        if self.values is not None and values is not None:
            h = h + self.values(values)
        rope = None
        if self.cfg.positions == "learned":
            h = h + self.pos[offset : offset + n]
        else:
            rope = self.rope
            if offset + n > rope.shape[1]:  # beyond max_len (sampling longer sequences)
                rope = rope_tables(offset + n, self.cfg.head_dim, self.cfg.rope_theta, tokens.device)
            rope = rope[:, offset : offset + n].to(compute_dtype(h))
        # Always the mask when there is padding to hide: asking whether a batch has any would be a
        # host synchronisation. A causal model needs none: right padding comes after every real token.
        attn_mask = valid[:, None, None, :] if valid is not None and not self.cfg.causal else None
        cond = self.time(t) if self.time is not None and t is not None else None
        # One nonzero() for the packing and the unpacking (each is a host sync on a GPU).
        rows, used = None, 0
        if needed is not None:
            rows = needed.flatten().nonzero()[:, 0]
            used, rows = rows.numel(), padded_rows(rows, b * n)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            cache = caches[i] if caches is not None else None
            h = block(h, attn_mask, rope, cond, cache, rows if i == last else None)
        h = self.norm(h)
        if rows is not None:
            h = h.new_zeros(b * n, h.shape[-1]).index_copy(0, rows[:used], h[:used]).view(b, n, -1)
        return self.head(h) if logits else h

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
