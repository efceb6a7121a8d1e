"""Token sequences as one flat array and offsets: built once, memory-mapped by training.

A prepared split is a folder of ``tokens.npy`` (every sequence's token ids end to end, in the
smallest unsigned integer type that holds the vocabulary), ``offsets.npy`` (int64, sequence i is
``tokens[offsets[i]:offsets[i + 1]]``) and ``meta.json`` (the modality that tokenised it and the
counts). Training reads batches from it by vectorised indexing, so a step costs no Python per
sequence and no tokenising.

Example:
    >>> shard = TokenShard.from_sequences([np.array([3, 4, 5]), np.array([6])])
    >>> shard.lengths.tolist(), shard[1].tolist()
    ([3, 1], [6])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqdiff.atomic import atomic_path
from seqdiff.errors import SeqdiffError

TOKENS, OFFSETS, META = "tokens.npy", "offsets.npy", "meta.json"


class TokenShard(Sequence):
    """Sequences of token ids stored as ``tokens`` (flat) and ``offsets`` ([n + 1], int64).

    Indexing gives one sequence as an array view (so a shard serves wherever a list of token
    arrays does); ``take`` gives a new shard of some of the sequences.
    """

    def __init__(self, tokens: np.ndarray, offsets: np.ndarray, meta: dict | None = None):
        self.tokens, self.offsets = tokens, np.asarray(offsets, dtype=np.int64)
        self.lengths = np.diff(self.offsets)
        self.meta = meta or {}

    @classmethod
    def from_sequences(cls, sequences: Sequence[np.ndarray], meta: dict | None = None) -> TokenShard:
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        flat = np.concatenate([np.asarray(s) for s in sequences]) if len(sequences) else np.zeros(0)
        if flat.size and flat.min() < 0:
            raise ValueError("token ids must be non-negative")
        dtype = np.min_scalar_type(int(flat.max()) if flat.size else 0)
        return cls(flat.astype(dtype), np.concatenate([[0], np.cumsum(lengths)]), meta)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:  # type: ignore[override]
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    def take(self, indices: np.ndarray) -> TokenShard:
        """The sequences at ``indices``, in that order, as a new (in-memory) shard."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        # Position j of the new flat array comes from its sequence's start plus j's place in it.
        source = np.repeat(self.offsets[indices] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return TokenShard(np.asarray(self.tokens[source]), offsets, self.meta)

    def save(self, folder: str | Path) -> Path:
        """Write ``tokens.npy``, ``offsets.npy`` and ``meta.json`` (with the counts) to ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "sequences": len(self), "tokens": int(self.offsets[-1])}
        for name, array in ((TOKENS, self.tokens), (OFFSETS, self.offsets)):
            with atomic_path(folder / name) as tmp, open(tmp, "wb") as f:
                np.save(f, np.asarray(array))
        with atomic_path(folder / META) as tmp:  # last: its presence marks a complete shard
            tmp.write_text(json.dumps(meta, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TokenShard:
        """A saved shard, its tokens memory-mapped (read on demand, shared between processes)."""
        folder = Path(folder)
        if not is_shard(folder):
            raise SeqdiffError(f"{folder}: not a prepared shard (no {META}); see `seqdiff prepare`")
        meta = json.loads((folder / META).read_text())
        tokens = np.load(folder / TOKENS, mmap_mode="r")
        offsets = np.load(folder / OFFSETS)
        if len(offsets) != meta["sequences"] + 1 or offsets[-1] != len(tokens):
            raise SeqdiffError(f"{folder}: tokens and offsets do not match meta.json (a partial copy?)")
        return cls(tokens, offsets, meta)


def is_shard(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``TokenShard.save``."""
    return (Path(path) / META).is_file()
