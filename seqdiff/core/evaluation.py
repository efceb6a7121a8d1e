"""A dataset's NELBO: Monte-Carlo passes of a model's loss, with their standard error.

Any model with ``losses(x, valid, generator=...)`` and ``exact_likelihood`` serves: a
``MaskedDiffusion`` (an upper bound on the negative log-likelihood, which varies between passes)
or the autoregressive baseline (exact: one pass).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from seqdiff.core.diffusion import MaskedDiffusion


@dataclass
class NelboReport:
    """A dataset's NELBO with its Monte-Carlo standard error (over K independent passes)."""

    nats_per_token: float
    stderr_nats: float
    tokens: int
    sequences: int
    passes: int

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / math.log(2)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nats_per_token)

    def to_dict(self) -> dict:
        """The report as JSON-safe values (an unknown standard error, from one pass, is None)."""
        known = not math.isnan(self.stderr_nats)
        return {
            "nats_per_token": self.nats_per_token,
            "bits_per_token": self.bits_per_token,
            "perplexity": self.perplexity,
            "stderr_nats": self.stderr_nats if known else None,
            "perplexity_ci95": [
                math.exp(self.nats_per_token - 1.96 * self.stderr_nats),
                math.exp(self.nats_per_token + 1.96 * self.stderr_nats),
            ]
            if known
            else None,
            "tokens": self.tokens,
            "sequences": self.sequences,
            "passes": self.passes,
        }


@torch.no_grad()
def evaluate_nelbo(
    model: MaskedDiffusion,
    batches: Iterable[tuple[Tensor, Tensor | None]],
    passes: int = 4,
    seed: int = 0,
) -> NelboReport:
    """NELBO per token over a dataset, an upper bound on its negative log-likelihood.

    Each of ``passes`` passes draws fresh (stratified) t and masks for every sequence; the
    estimate is their mean and the standard error their spread / sqrt(K). ``batches`` yields
    (x, valid) on the model's device and may be a list (it is iterated ``passes`` times).

    Example:
        >>> from seqdiff.core.denoiser import Denoiser, DenoiserConfig
        >>> from seqdiff.core.schedules import LinearSchedule
        >>> net = Denoiser(DenoiserConfig(vocab_size=5, dim=32, n_layers=1, n_heads=2))
        >>> model = MaskedDiffusion(net, LinearSchedule(), mask_id=4, allowed=torch.tensor([1, 1, 1, 1, 0]))
        >>> report = evaluate_nelbo(model, [(torch.randint(0, 4, (3, 7)), None)], passes=2)
        >>> report.tokens, report.sequences, report.passes, report.perplexity > 1
        (21, 3, 2, True)
    """
    batches = list(batches)
    if model.exact_likelihood:  # every pass would give the same number
        passes = 1
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    per_pass, tokens, sequences = [], 0, 0
    for _ in range(passes):
        total_nats, total_tokens, sequences = 0.0, 0.0, 0
        for x, valid in batches:
            out = model.losses(x, valid, generator=generator)
            total_nats += float(out.nelbo.sum())
            total_tokens += float(out.tokens.sum())
            sequences += x.shape[0]
        per_pass.append(total_nats / total_tokens)
        tokens = int(total_tokens)
    model.train(was_training)
    mean = sum(per_pass) / passes
    if model.exact_likelihood:
        stderr = 0.0
    elif passes > 1:
        stderr = math.sqrt(sum((p - mean) ** 2 for p in per_pass) / (passes - 1) / passes)
    else:
        stderr = float("nan")
    return NelboReport(mean, stderr, tokens, sequences, passes)
