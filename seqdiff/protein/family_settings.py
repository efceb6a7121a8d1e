"""The settings of designing with a family: how the model is adapted to the homologs (`AdaptRecipe`,
used by `seqdiff.protein.adapt`) and how strongly their profile steers the design (`DEFAULT_WEIGHT`, of
`seqdiff.protein.profile_guide`).

They live apart from the code that uses them because the command line declares its flags from them while
it builds its parser, which must not load torch or pyhmmer.

Example:
    >>> AdaptRecipe(minutes=0).check()
    Traceback (most recent call last):
    ...
    seqdiff.errors.SeqdiffError: --adapt-minutes must be > 0
"""

from __future__ import annotations

from dataclasses import dataclass

from seqdiff.errors import SeqdiffError

DEFAULT_WEIGHT = 3.0
"""The profile's weight when designing with homologs, chosen by ``pipelines/bench_motif.py``."""


@dataclass(frozen=True)
class AdaptRecipe:
    """How a model is fine-tuned on homologs. Every field is part of the cache key.

    ``steps`` optimiser steps of ``max_tokens`` tokens each at peak learning rate ``lr`` (warmup, then
    cosine decay), stopped early at ``minutes``; ``held_out`` of the homologs (at least 8) score the
    model every ``check_every`` steps and the best-scoring weights are kept. ``max_homologs`` caps
    the homologs used (the first ones in the file: search tools list the closest first).
    """

    steps: int = 400
    minutes: float = 5.0
    lr: float = 1e-3
    max_tokens: int = 2048
    held_out: float = 0.05
    check_every: int = 50
    max_homologs: int = 5000
    seed: int = 0

    def check(self) -> None:
        if self.steps < 1:
            raise SeqdiffError("adaptation: steps must be at least 1")
        if self.minutes <= 0:
            raise SeqdiffError("--adapt-minutes must be > 0")
        if not 0 < self.held_out < 0.5:
            raise SeqdiffError("adaptation: held_out must be in (0, 0.5)")
