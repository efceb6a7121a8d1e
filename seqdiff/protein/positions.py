"""Residue selections: ``10-25,40-45,7`` (1-based, inclusive) and total lengths ``60-105``.

Example:
    >>> parse_ranges("2-4,7"), format_ranges([(2, 4), (7, 7)])
    ([(2, 4), (7, 7)], '2-4,7')
"""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np

from seqdiff.errors import SeqdiffError

# Nine digits keep int() far from Python's limit on digits and cover any real residue number.
_SPAN = re.compile(r"(-?[0-9]{1,9})(?:\s*-\s*(-?[0-9]{1,9}))?")


def parse_span(piece: str, prefix: str) -> tuple[int, int]:
    """``N`` or ``N-M`` as ``(N, N)`` or ``(N, M)``, with N <= M; errors start with ``prefix``."""
    match = _SPAN.fullmatch(piece.strip())
    if match is None:
        raise SeqdiffError(f"{prefix}{piece.strip()!r} is not a number N or a range N-M")
    start = int(match[1])
    end = int(match[2]) if match[2] is not None else start
    if start > end:
        raise SeqdiffError(f"{prefix}{piece.strip()!r} is reversed (start after end)")
    return start, end


def parse_ranges(text: str, length: int | None = None) -> list[tuple[int, int]]:
    """Parse 1-based inclusive residue ranges, sorted; ``length`` bounds them when given.

    Example:
        >>> parse_ranges("40-45, 10-25,7", length=50)
        [(7, 7), (10, 25), (40, 45)]
    """
    context = f"residue selection {text!r}"
    if not text.strip():
        raise SeqdiffError(f"{context}: empty; expected ranges like '10-25,40-45,7'")
    spans = []
    for piece in text.split(","):
        start, end = parse_span(piece, f"{context}: ")
        if start < 1:
            raise SeqdiffError(f"{context}: {piece.strip()!r}: residue numbers start at 1")
        if length is not None and end > length:
            raise SeqdiffError(
                f"{context}: {piece.strip()!r} is beyond the end of the sequence (length {length})"
            )
        spans.append((start, end, piece.strip()))
    spans.sort()
    for (_, end, piece), (start, _, next_piece) in pairwise(spans):
        if start <= end:
            raise SeqdiffError(f"{context}: {piece!r} and {next_piece!r} overlap")
    return [(start, end) for start, end, _ in spans]


def format_ranges(ranges: list[tuple[int, int]]) -> str:
    """The compact form of ranges, the inverse of :func:`parse_ranges`.

    Example:
        >>> format_ranges([(7, 7), (10, 25)])
        '7,10-25'
    """
    return ",".join(str(start) if start == end else f"{start}-{end}" for start, end in ranges)


def ranges_to_mask(ranges: list[tuple[int, int]], length: int) -> np.ndarray:
    """A boolean array of ``length``, True inside the 1-based inclusive ranges (the fixed residues).

    Example:
        >>> ranges_to_mask([(2, 3)], 4).tolist()
        [False, True, True, False]
    """
    mask = np.zeros(length, dtype=bool)
    for start, end in ranges:
        if start < 1 or end > length:
            raise SeqdiffError(
                f"range {format_ranges([(start, end)])} is outside a sequence of length {length}"
            )
        mask[start - 1 : end] = True
    return mask


def parse_length_range(text: str) -> tuple[int, int]:
    """A total length ``N`` or range ``N-M`` (both at least 1).

    Example:
        >>> parse_length_range("50-75"), parse_length_range("60")
        ((50, 75), (60, 60))
    """
    start, end = parse_span(text, "length ")
    if start < 1:
        raise SeqdiffError(f"length {text.strip()!r}: lengths must be at least 1")
    return start, end
