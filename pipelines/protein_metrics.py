"""Sequence metrics for designed proteins: identity (diversity, novelty) and background frequencies.

Identity here is alignment-free and ungapped: the best number of matching residues over every
diagonal (every relative shift of the two sequences), divided by the length of the shorter one.
It needs no substitution matrix or gap penalties, it is exact for designs that share a layout, and
it is a lower bound of a gapped alignment's identity. The inner loop (length x length per pair)
is not vectorisable without materialising every shift, so it is compiled with numba;
`best_diagonal_identity_numpy` is the vectorised numpy version it is tested and benchmarked against.

Novelty against a large database (e.g. 19k CATH domains) first keeps, per query, the database
sequences sharing the most 3-mers (a sparse matrix product), then computes the exact identity on
those candidates only.

Example:
    >>> round(float(pairwise_identity(["MKTAYIAK", "MKTAYLAK", "GGGG"])[0, 1]), 3)
    0.875
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numba
import numpy as np
import scipy.sparse as sp

STANDARD = "ACDEFGHIKLMNPQRSTVWY"


def _pack(sequences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All sequences as one uint8 array and their start offsets (numba takes flat arrays)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    codes = np.frombuffer("".join(sequences).encode("ascii"), dtype=np.uint8)
    return codes, offsets


@numba.njit(cache=True, nogil=True)
def _best_diagonal(codes_a, start_a, len_a, codes_b, start_b, len_b):  # pragma: no cover - compiled
    best = 0
    for shift in range(-(len_a - 1), len_b):  # b[i + shift] against a[i]
        lo = max(0, -shift)
        hi = min(len_a, len_b - shift)
        matches = 0
        for i in range(lo, hi):
            if codes_a[start_a + i] == codes_b[start_b + i + shift]:
                matches += 1
        if matches > best:
            best = matches
    return best / max(1, min(len_a, len_b))


@numba.njit(cache=True, parallel=True)
def _pairs(codes_a, offsets_a, codes_b, offsets_b, pairs):  # pragma: no cover - compiled
    out = np.empty(len(pairs))
    for k in numba.prange(len(pairs)):
        i, j = pairs[k, 0], pairs[k, 1]
        out[k] = _best_diagonal(
            codes_a,
            offsets_a[i],
            offsets_a[i + 1] - offsets_a[i],
            codes_b,
            offsets_b[j],
            offsets_b[j + 1] - offsets_b[j],
        )
    return out


def identity_of_pairs(a: Sequence[str], b: Sequence[str], pairs: np.ndarray) -> np.ndarray:
    """Identity of ``a[i]`` and ``b[j]`` for every row ``(i, j)`` of ``pairs`` (numba, all cores).

    Example:
        >>> identity_of_pairs(["MKTA"], ["XMKTA", "WWWW"], np.array([[0, 0], [0, 1]]))
        array([1., 0.])
    """
    codes_a, offsets_a = _pack(a)
    codes_b, offsets_b = _pack(b)
    pairs = np.ascontiguousarray(pairs, dtype=np.int64).reshape(-1, 2)
    return _pairs(codes_a, offsets_a, codes_b, offsets_b, pairs)


def pairwise_identity(sequences: Sequence[str]) -> np.ndarray:
    """The symmetric matrix of identities among ``sequences`` (1 on the diagonal).

    Example:
        >>> pairwise_identity(["AAAA", "AAAC"]).tolist()
        [[1.0, 0.75], [0.75, 1.0]]
    """
    n = len(sequences)
    i, j = np.triu_indices(n, k=1)
    values = identity_of_pairs(sequences, sequences, np.stack([i, j], axis=1))
    out = np.eye(n)
    out[i, j] = out[j, i] = values
    return out


def mean_pairwise_identity(sequences: Sequence[str]) -> float:
    """Mean identity over all pairs of distinct sequences: the diversity of a set (lower = more diverse).

    Example:
        >>> mean_pairwise_identity(["AAAA", "AAAC", "AACC"])
        0.6666666666666666
    """
    n = len(sequences)
    if n < 2:
        return float("nan")
    return float(pairwise_identity(sequences)[np.triu_indices(n, k=1)].mean())


def best_diagonal_identity_numpy(a: str, b: str) -> float:
    """The same identity as `identity_of_pairs` for one pair, in vectorised numpy (the reference).

    Example:
        >>> best_diagonal_identity_numpy("MKTA", "XMKTA")
        1.0
    """
    x = np.frombuffer(a.encode("ascii"), dtype=np.uint8)
    y = np.frombuffer(b.encode("ascii"), dtype=np.uint8)
    # Row r of the equality matrix against column c lies on diagonal c - r: sum each diagonal.
    equal = (x[:, None] == y[None, :]).astype(np.int64)
    sums = [np.trace(equal, offset=k) for k in range(-(len(x) - 1), len(y))]
    return float(max(sums)) / max(1, min(len(x), len(y)))


def kmer_profile(sequences: Sequence[str], k: int = 3) -> sp.csr_matrix:
    """Counts of every standard-residue k-mer per sequence (rows), as a sparse matrix of 20^k columns."""
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[np.frombuffer(STANDARD.encode(), dtype=np.uint8)] = np.arange(20)
    rows, cols = [], []
    for n, seq in enumerate(sequences):
        idx = lookup[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
        if len(idx) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(idx, k)
        windows = windows[(windows >= 0).all(axis=1)]
        cols.append(windows @ (20 ** np.arange(k - 1, -1, -1)))
        rows.append(np.full(len(windows), n))
    if not rows:
        return sp.csr_matrix((len(sequences), 20**k))
    data = np.ones(sum(len(r) for r in rows))
    return sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(len(sequences), 20**k))


def max_identity_to(
    queries: Sequence[str],
    database: Sequence[str],
    candidates: int | None = 50,
    k: int = 3,
    chunk: int = 256,
    database_profile: sp.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query, its highest identity to any database sequence and that sequence's index.

    ``candidates``: how many database sequences per query (those sharing the most k-mers) get the
    exact identity; ``None`` compares every pair (exact, slow on large databases). Pass
    ``database_profile`` (`kmer_profile(database, k)`) to reuse it across calls.

    Example:
        >>> max_identity_to(["MKTAYIAK"], ["GGGGGG", "AMKTAYIAKW"], candidates=1)
        (array([1.]), array([1]))
    """
    n_query, n_db = len(queries), len(database)
    if n_db == 0 or n_query == 0:
        return np.zeros(n_query), np.full(n_query, -1)
    if candidates is None or candidates >= n_db:
        chosen = np.broadcast_to(np.arange(n_db), (n_query, n_db))
    else:
        profile = kmer_profile(database, k) if database_profile is None else database_profile
        queries_profile = kmer_profile(queries, k)
        chosen = np.empty((n_query, candidates), dtype=np.int64)
        for start in range(0, n_query, chunk):
            shared = (queries_profile[start : start + chunk] @ profile.T).toarray()
            chosen[start : start + chunk] = np.argpartition(-shared, candidates - 1, axis=1)[:, :candidates]
    pairs = np.stack([np.repeat(np.arange(n_query), chosen.shape[1]), chosen.reshape(-1)], axis=1)
    values = identity_of_pairs(queries, database, pairs).reshape(n_query, -1)
    best = values.argmax(axis=1)
    return values[np.arange(n_query), best], chosen[np.arange(n_query), best]


def residue_frequencies(sequences: Iterable[str]) -> dict[str, float]:
    """Frequencies of the 20 standard amino acids in ``sequences`` (non-standard letters are not
    counted, as in the model's NELBO).

    Example:
        >>> residue_frequencies(["AAC"])["A"]
        0.6666666666666666
        >>> freqs = residue_frequencies(r.sequence for r in iter_sequences("train.fasta"))  # doctest: +SKIP
    """
    counts = Counter()
    for seq in sequences:
        counts.update(seq)
    total = sum(counts[a] for a in STANDARD)
    return {a: counts[a] / total for a in STANDARD}
