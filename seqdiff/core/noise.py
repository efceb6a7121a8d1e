"""Sources of uniform noise for the sampler.

``GeneratorNoise`` draws from a ``torch.Generator``: fast, but a row's numbers depend on the rows
drawn before it. ``KeyedNoise`` is counter-based: the uniform for (row key, step, position) is a
hash of those numbers and the seed, so a row gets the same randomness whatever batch it is in
and in whatever order batches run. That makes designs independent of ``--batch-size`` and a
streamed imputation identical to an in-memory one.
"""

from __future__ import annotations

import torch
from torch import Tensor

_MASK64 = (1 << 64) - 1


def _to_signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _to_signed(0x9E3779B97F4A7C15)
_MIX1 = _to_signed(0xBF58476D1CE4E5B9)
_MIX2 = _to_signed(0x94D049BB133111EB)


def _shr(x: Tensor, k: int) -> Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def splitmix64(x: Tensor) -> Tensor:
    """The splitmix64 finaliser on int64 tensors (wrapping arithmetic), a well-mixed hash.

    Example:
        >>> splitmix64(torch.tensor([0, 1])).tolist() != [0, 1]
        True
    """
    x = x + _GOLDEN
    x = (x ^ _shr(x, 30)) * _MIX1
    x = (x ^ _shr(x, 27)) * _MIX2
    return x ^ _shr(x, 31)


class GeneratorNoise:
    """Uniforms from a torch.Generator (or the global RNG when None)."""

    def __init__(self, generator: torch.Generator | None = None):
        self.generator = generator

    def __call__(self, step: int, shape: tuple[int, ...], device: torch.device) -> Tensor:
        return torch.rand(shape, generator=self.generator, device=device, dtype=torch.float64)


class KeyedNoise:
    """Uniforms in [0, 1) keyed by (seed, row key, step, position); shape [B, N].

    Example:
        >>> a = KeyedNoise(seed=7, row_keys=torch.tensor([3, 4]))(0, (2, 5), torch.device("cpu"))
        >>> b = KeyedNoise(seed=7, row_keys=torch.tensor([4]))(0, (1, 5), torch.device("cpu"))
        >>> bool((a[1] == b[0]).all())
        True
    """

    def __init__(self, seed: int, row_keys: Tensor):
        self.seed = int(seed)
        self.row_keys = row_keys.long()

    def __call__(self, step: int, shape: tuple[int, ...], device: torch.device) -> Tensor:
        rows, positions = shape
        h = splitmix64(torch.full((rows,), self.seed, dtype=torch.long, device=device))
        h = splitmix64(h ^ self.row_keys.to(device))
        h = splitmix64(h ^ step)[:, None]
        h = splitmix64(h ^ torch.arange(positions, device=device)[None, :])
        return _shr(h, 11).double() / float(1 << 53)


def keyed_seed(seed: int, key: int) -> int:
    """A torch.Generator seed for one (seed, key) pair, e.g. one design: hashed like ``KeyedNoise``'s row
    keys, so draws seeded this way do not depend on which other keys are drawn or in what order.

    Example:
        >>> keyed_seed(0, 1) == keyed_seed(0, 1) != keyed_seed(0, 2)
        True
    """
    h = splitmix64(torch.tensor(int(seed), dtype=torch.long))
    return int(splitmix64(h ^ int(key)))
