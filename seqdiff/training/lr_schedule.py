"""The learning-rate schedule of every training run: linear warmup, cosine decay, and warm restarts
in rounds past the schedule's end. Plain arithmetic, no torch: the command line's table settings count
their rounds without loading it.
"""

from __future__ import annotations

import math


def extension_round(total: int) -> int:
    """Steps in one round of training past the end of a ``total``-step schedule: half of it, at least
    100.

    Example:
        >>> extension_round(2000), extension_round(40)
        (1000, 100)
    """
    return max(100, total // 2)


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float, restart_ratio: float = 0.0) -> float:
    """LR multiplier: linear warmup to 1, then cosine decay to ``min_ratio`` at ``total``.

    Past ``total`` it stays at ``min_ratio``; with a ``restart_ratio`` above it, it runs in rounds of
    `extension_round` (total) steps instead, each a cosine decay from ``restart_ratio`` to ``min_ratio``
    (warm restarts, Loshchilov & Hutter, ICLR 2017).

    Example:
        >>> warmup_cosine(0, 10, 100, 0.1), warmup_cosine(100, 10, 100, 0.1)
        (0.1, 0.1)
        >>> warmup_cosine(100, 10, 100, 0.1, restart_ratio=0.5), warmup_cosine(199, 10, 100, 0.1, 0.5) < 0.11
        (0.5, True)
    """
    if step < warmup:
        return (step + 1) / warmup
    if step >= total and restart_ratio > min_ratio:
        round_steps = extension_round(total)
        peak, progress = restart_ratio, (step - total) % round_steps / round_steps
    else:
        peak, progress = 1.0, min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (peak - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
