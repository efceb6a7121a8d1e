"""The autoregressive baseline: the same transformer, causal, trained by next-token likelihood.

MD4's comparison (md4_spec.md section 6) is against a left-to-right model of the same size
trained on the same data for the same compute. ``AutoregressiveLM`` has the interface of
``MaskedDiffusion`` that training and evaluation use (``losses`` -> ``Losses`` with an exact
NLL in place of the NELBO), so the same Lightning module, pipeline and ``evaluate_nelbo`` serve
both. ``generate`` samples left to right with a key/value cache.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqdiff.core.denoiser import Denoiser
from seqdiff.core.diffusion import Losses
from seqdiff.core.noise import GeneratorNoise
from seqdiff.core.sampling import draw_categorical, shape_probs


class AutoregressiveLM(nn.Module):
    """p(x) = prod_n p(x_n | x_<n), with a begin-of-sequence token ``bos_id`` before x_1.

    Tokens equal to ``missing_id`` are missing data: they are fed as input but not scored.

    Example:
        >>> from seqdiff.core.denoiser import DenoiserConfig
        >>> net = Denoiser(DenoiserConfig(vocab_size=6, dim=32, n_layers=1, n_heads=2, causal=True))
        >>> lm = AutoregressiveLM(net, bos_id=4, missing_id=5, allowed=torch.tensor([1, 1, 1, 1, 0, 0]).bool())
        >>> lm.losses(torch.randint(0, 4, (2, 7))).nelbo.shape
        torch.Size([2])
        >>> lm.generate(2, 5).shape
        torch.Size([2, 5])
    """

    genmd4 = False
    exact_likelihood = True  # `losses` is the exact negative log-likelihood, not a Monte-Carlo bound

    def __init__(self, denoiser: Denoiser, bos_id: int, missing_id: int, allowed: Tensor):
        super().__init__()
        if not denoiser.cfg.causal:
            raise ValueError("the autoregressive baseline needs a causal denoiser")
        self.denoiser = denoiser
        self.bos_id = bos_id
        self.mask_id = missing_id
        self.register_buffer("allowed", allowed.bool().clone(), persistent=False)

    @property
    def vocab_size(self) -> int:
        return self.denoiser.cfg.vocab_size

    def _log_probs(self, logits: Tensor) -> Tensor:
        return torch.log_softmax(logits.float().masked_fill(~self.allowed, float("-inf")), dim=-1)

    def losses(
        self,
        x: Tensor,
        valid: Tensor | None = None,
        t: Tensor | None = None,
        generator: torch.Generator | None = None,
        within: Tensor | None = None,
    ) -> Losses:
        """Exact negative log-likelihood per sequence (nats). Same signature as
        ``MaskedDiffusion.losses``, so one training loop serves both; ``t`` and ``generator`` are
        unused, and ordered positions (``within``, for table rows) are a masked-diffusion feature."""
        if within is not None:
            raise ValueError("the autoregressive baseline does not take ordered positions (within)")
        bos = torch.full_like(x[:, :1], self.bos_id)
        logp = self._log_probs(self.denoiser(torch.cat([bos, x[:, :-1]], dim=1), valid))
        observed = x != self.mask_id
        if valid is not None:
            observed &= valid
        nll = -logp.gather(-1, x.clamp(max=self.vocab_size - 1)[..., None])[..., 0]
        nll = torch.where(observed, nll, torch.zeros_like(nll)).sum(-1)
        return Losses(nll.detach(), observed.sum(-1).float(), nll.sum())

    @torch.no_grad()
    def generate(
        self,
        batch: int,
        length: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Sample [batch, length] token ids left to right, one network call per token (KV cache).

        The class example calls it.
        """
        self.eval()
        device = next(self.parameters()).device
        noise = GeneratorNoise(generator)
        caches: list[dict] = [{} for _ in self.denoiser.blocks]
        token = torch.full((batch, 1), self.bos_id, dtype=torch.long, device=device)
        out = []
        for i in range(length):
            logits = self.denoiser(token, caches=caches, offset=i)[:, -1]
            probs = shape_probs(self._log_probs(logits), temperature, top_p)
            token = draw_categorical(probs, noise(i, (batch,), device))[:, None]
            out.append(token)
        return torch.cat(out, dim=1)
