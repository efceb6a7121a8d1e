"""Identity (numba vs numpy reference), k-mer novelty search on real CATH sequences, frequencies."""

import random
from itertools import islice

import numpy as np
import pytest

from pipelines.protein_metrics import (
    STANDARD,
    best_diagonal_identity_numpy,
    identity_of_pairs,
    max_identity_to,
    mean_pairwise_identity,
    pairwise_identity,
    residue_frequencies,
)
from seqdiff.protein.io import iter_sequences


def mutate(seq: str, fraction: float, rng: random.Random) -> str:
    chars = list(seq)
    for i in rng.sample(range(len(chars)), int(fraction * len(chars))):
        chars[i] = rng.choice([a for a in STANDARD if a != chars[i]])
    return "".join(chars)


def random_protein(length: int, rng: random.Random) -> str:
    return "".join(rng.choice(STANDARD) for _ in range(length))


def test_numba_identity_equals_numpy_reference():
    rng = random.Random(0)
    a = [random_protein(rng.randint(20, 60), rng) for _ in range(40)]
    b = [mutate(s, 0.3, rng) if i % 2 else random_protein(rng.randint(1, 60), rng) for i, s in enumerate(a)]
    b = [("W" * rng.randint(0, 5)) + s for s in b]  # shifted copies: found on another diagonal
    got = identity_of_pairs(a, b, np.stack([np.arange(40), np.arange(40)], axis=1))
    want = [best_diagonal_identity_numpy(x, y) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, want)
    # A shifted copy with 30% of residues changed keeps ~70% identity.
    assert all(0.6 <= v <= 0.8 for v in got[1::2])
    assert (
        best_diagonal_identity_numpy("A", "W") == 0.0
        and identity_of_pairs(["A"], ["A"], np.array([[0, 0]]))[0] == 1
    )


def test_pairwise_identity_and_diversity():
    seqs = ["MKTAYIAKQR", "MKTAYIAKQR", "WWWWWWWWWW"]
    m = pairwise_identity(seqs)
    assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1)
    assert m[0, 1] == 1.0 and m[0, 2] == 0.0
    assert mean_pairwise_identity(seqs) == pytest.approx(1 / 3)
    assert np.isnan(mean_pairwise_identity(["A"]))


def test_novelty_finds_a_planted_homolog_among_real_domains(shared):
    rng = random.Random(1)
    path = shared / "protein/general/cath_v4_1_0_S40.train.fasta"
    train = [r.sequence for r in islice(iter_sequences(path), 3000)]
    planted = [mutate(train[i], 0.25, rng) for i in (5, 1234, 2999)]
    fresh = [random_protein(120, rng)]
    best, where = max_identity_to(planted + fresh, train, candidates=20)
    assert list(where[:3]) == [5, 1234, 2999]
    assert np.all((best[:3] > 0.7) & (best[:3] <= 0.76))
    # A random sequence's best ungapped match is low, and the prefilter agrees with the exhaustive search.
    exhaustive, _ = max_identity_to(fresh, train[:500], candidates=None)
    filtered, _ = max_identity_to(fresh, train[:500], candidates=499)
    assert best[3] < 0.25 and exhaustive[0] == filtered[0]


def test_residue_frequencies_ignore_non_standard_letters():
    freqs = residue_frequencies(["AAXC", "C"])
    assert freqs["A"] == pytest.approx(0.5) and freqs["C"] == pytest.approx(0.5)
    assert sum(freqs.values()) == pytest.approx(1)
