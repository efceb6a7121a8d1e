"""A protein family's profile HMM (HMMER3, via pyhmmer) as an independent referee of designs.

The profile is built once from the homologs' alignment and then scores any number of designs:

* ``family_bits`` / ``family_evalue``: the whole design against the profile;
* ``scaffold_bits`` / ``scaffold_evalue``: the designed positions alone (the fixed motif positions
  cut out and the rest joined), so that a motif copied from a natural protein cannot carry the
  recognition by itself;
* ``recognised`` / ``scaffold_recognised``: E-value below :data:`RECOGNISED_EVALUE`;
* ``nearest_identity`` / ``nearest_homolog``: novelty, the highest identity to any homolog.

E-values are for a fixed search space of :data:`SEARCH_SPACE_SEQUENCES` sequences (HMMER's ``Z``),
so a design's E-value does not depend on how many designs are scored together. The pipeline runs
without HMMER's heuristic filters (``--max``), so weak designs still get a bit score; a design with
no domain hit at all gets ``NaN`` bits and an infinite E-value.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from seqdiff.protein.homologs import read_homologs
    >>> path = Path(tempfile.mkdtemp()) / "family.a3m"
    >>> _ = path.write_text(">query\\nMKTAYIAKQRQISFVKSHFSRQ\\n>b\\nMKSAYIAKQRNISFVKSHFSRQ\\n>c\\nMRTAYIAKQRqqQVSFVKAHFSKQ\\n")
    >>> profile = FamilyProfile.from_homologs(read_homologs(path))
    >>> designs = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHPWLNDECGSHPWLNDEC"]
    >>> masks = [[True] * 11 + [False] * 11, [True] * 20]  # True: a designed position
    >>> profile.score(designs, designed_masks=masks)[["recognised", "scaffold_recognised"]].to_dict("list")
    {'recognised': [True, False], 'scaffold_recognised': [True, False]}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyopal
from pyhmmer import easel, plan7

from seqdiff.errors import SeqdiffError
from seqdiff.protein.alphabet import normalize
from seqdiff.protein.homolog_search import AMINO, digitize
from seqdiff.protein.homologs import Homologs, align_homologs, blosum_letters, sequence_weights

SEARCH_SPACE_SEQUENCES = 100
"""HMMER's ``Z``: E-values are as if each design were searched among this many sequences: a run of 100
designs searched at once with ``hmmsearch`` (whose default ``Z`` is the number of targets), fixed so that a
design scores the same alone or in a batch."""

RECOGNISED_EVALUE = 1e-3
"""A design whose E-value is below this is recognised as a family member."""

MAX_PROFILE_SEQUENCES = 1000
"""At most this many homologs build the HMM: the first (the query of an A3M) and a weighted sample."""

IDENTITY_CANDIDATES = 20
"""Per design, the homologs with the best local alignment scores whose identity is computed exactly."""


def recognised(evalues: np.ndarray | Sequence[float], threshold: float = RECOGNISED_EVALUE) -> np.ndarray:
    """Booleans: which E-values are below ``threshold`` (an infinite E-value, no hit, is not).

    Example:
        >>> recognised([1e-20, 0.5, float("inf")]).tolist()
        [True, False, False]
    """
    return np.asarray(evalues, dtype=float) < threshold


def _profile_rows(homologs: Homologs, max_sequences: int) -> tuple[str, ...]:
    """The aligned rows that build the HMM; above the cap, the first row plus a sample drawn
    (seeded, without replacement) with probability proportional to the redundancy weight."""
    rows = homologs.aligned
    if len(rows) <= max_sequences:
        return rows
    weights = sequence_weights(homologs)[1:]
    others = np.random.default_rng(0).choice(
        np.arange(1, len(rows)), size=max_sequences - 1, replace=False, p=weights / weights.sum()
    )
    return tuple(rows[i] for i in [0, *sorted(others.tolist())])


def _scaffolds(designs: list[str], designed_masks: Sequence[Sequence[bool]]) -> list[str]:
    if len(designed_masks) != len(designs):
        raise SeqdiffError(f"{len(designed_masks)} designed masks for {len(designs)} designs")
    scaffolds = []
    for index, (seq, mask) in enumerate(zip(designs, designed_masks, strict=True)):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(seq),):
            raise SeqdiffError(
                f"design #{index + 1}: its designed mask covers {mask.size} positions, the design has {len(seq)}"
            )
        scaffolds.append("".join(np.asarray(list(seq))[mask]))
    return scaffolds


@dataclass(frozen=True)
class FamilyProfile:
    """A family's profile HMM and the homologs designs are compared with for novelty.

    Build it with :meth:`from_homologs`; :meth:`score` can then be called any number of times.
    ``n_profile_sequences`` is how many homologs built the HMM (at most :data:`MAX_PROFILE_SEQUENCES`).
    """

    hmm: plan7.HMM
    homologs: Homologs
    n_profile_sequences: int

    @classmethod
    def from_homologs(
        cls, homologs: Homologs, max_sequences: int = MAX_PROFILE_SEQUENCES, name: str = "family"
    ) -> FamilyProfile:
        """Build the HMM from the homologs' alignment (FAMSA aligns unaligned homologs first).

        Given match columns (A3M, Stockholm RF) become the model's match states as they are
        (HMMER's ``--hand``); other alignments let HMMER choose them (columns at least half residues).

        Example:
            >>> from seqdiff.protein.homologs import Homologs
            >>> rows = ("MKTAYIAKQRQISFVKSHFSRQ", "MKSAYIAKQRNISFVKSHFSRQ", "MRTAYIAKQRQVSFVKAHFSKQ")
            >>> FamilyProfile.from_homologs(Homologs("toy", ("a", "b", "c"), rows, rows, True)).hmm.M
            22
        """
        if max_sequences < 2:
            raise SeqdiffError(f"max_sequences must be at least 2, got {max_sequences}")
        aligned = align_homologs(homologs)
        rows = _profile_rows(aligned, max_sequences)
        msa = easel.TextMSA(
            name=name.encode(),
            sequences=[easel.TextSequence(name=str(i).encode(), sequence=row) for i, row in enumerate(rows)],
        )
        if aligned.match_columns:
            msa.reference = "x" * len(rows[0])
        builder = plan7.Builder(AMINO, architecture="hand" if aligned.match_columns else "fast", seed=42)
        hmm, _, _ = builder.build_msa(msa.digitize(AMINO), plan7.Background(AMINO))
        return cls(hmm=hmm, homologs=aligned, n_profile_sequences=len(rows))

    def search(self, sequences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Bit scores and E-values (for :data:`SEARCH_SPACE_SEQUENCES`) of each sequence;
        NaN and inf where HMMER finds no domain (e.g. an empty sequence).

        Example:
            >>> from seqdiff.protein.homologs import Homologs
            >>> rows = ("MKTAYIAKQRQISFVKSHFSRQ", "MKSAYIAKQRNISFVKSHFSRQ", "MRTAYIAKQRQVSFVKAHFSKQ")
            >>> profile = FamilyProfile.from_homologs(Homologs("toy", ("a", "b", "c"), rows, rows, True))
            >>> bits, evalues = profile.search(["MKTAYIAKQRQISFVKSHFSRQ", "GGGG", ""])
            >>> bool(bits[0] > 20), np.isnan(bits[1:]).tolist(), evalues[1:].tolist()
            (True, [True, True], [inf, inf])
        """
        bits = np.full(len(sequences), np.nan)
        evalues = np.full(len(sequences), np.inf)
        present = [i for i, seq in enumerate(sequences) if seq]
        if not present:
            return bits, evalues
        pipeline = plan7.Pipeline(
            AMINO,
            Z=SEARCH_SPACE_SEQUENCES,
            domZ=SEARCH_SPACE_SEQUENCES,
            bias_filter=False,
            F1=1.0,
            F2=1.0,
            F3=1.0,
            E=math.inf,
            domE=math.inf,
        )
        for hit in pipeline.search_hmm(self.hmm, digitize([sequences[i] for i in present])):
            index = present[int(hit.name)]
            bits[index], evalues[index] = hit.score, hit.evalue
        return bits, evalues

    def nearest(self, sequences: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Each sequence's highest identity to a homolog, and that homolog's id.

        Identity = identical residue pairs in the local (Smith-Waterman, BLOSUM62, gap open 11, extend 1; pyopal)
        alignment divided by the sequence's own length, so 1.0 means the whole sequence occurs in a
        homolog. Exact for the :data:`IDENTITY_CANDIDATES` homologs with the best alignment scores.

        Example:
            >>> from seqdiff.protein.homologs import Homologs
            >>> rows = ("MKTAYIAKQRQISFVKSHFSRQ", "MKSAYIAKQRNISFVKSHFSRQ", "MRTAYIAKQRQVSFVKAHFSKQ")
            >>> profile = FamilyProfile.from_homologs(Homologs("toy", ("a", "b", "c"), rows, rows, True))
            >>> profile.nearest(["MKSAYIAKQRNISFVKSHFSRQ", "AYIAKQRNIS"])
            (array([1., 1.]), ['b', 'b'])
        """
        aligner = pyopal.Aligner("BLOSUM62", gap_open=11, gap_extend=1)
        targets = [blosum_letters(s) for s in self.homologs.sequences]
        database = pyopal.Database(targets)
        identities = np.zeros(len(sequences))
        nearest_ids = [""] * len(sequences)
        for index, seq in enumerate(sequences):
            if not seq:
                continue
            query = blosum_letters(seq)
            scores = np.array([r.score for r in aligner.align(query, database, mode="score")])
            candidates = np.argsort(-scores, kind="stable")[:IDENTITY_CANDIDATES]
            subset = pyopal.Database([targets[i] for i in candidates])
            matches = [r.alignment.count("M") for r in aligner.align(query, subset, mode="full")]
            best = int(np.argmax(matches))
            identities[index] = matches[best] / len(seq)
            nearest_ids[index] = self.homologs.ids[int(candidates[best])]
        return identities, nearest_ids

    def score(
        self, sequences: Sequence[str], designed_masks: Sequence[Sequence[bool]] | None = None
    ) -> pd.DataFrame:
        """One row per design: family_bits, family_evalue, recognised, scaffold_bits,
        scaffold_evalue, scaffold_recognised, nearest_identity, nearest_homolog.

        ``designed_masks[i][j]`` is True where design i's position j was designed (False: fixed
        motif). Without masks the scaffold columns are NaN / inf / False.

        Example:
            >>> from seqdiff.protein.homologs import Homologs
            >>> rows = ("MKTAYIAKQRQISFVKSHFSRQ", "MKSAYIAKQRNISFVKSHFSRQ", "MRTAYIAKQRQVSFVKAHFSKQ")
            >>> profile = FamilyProfile.from_homologs(Homologs("toy", ("a", "b", "c"), rows, rows, True))
            >>> table = profile.score(["MKTAYIAKQRQISFVKSHFSRQ"], designed_masks=[[True] * 11 + [False] * 11])
            >>> table[["recognised", "nearest_identity", "nearest_homolog"]].to_dict("records")
            [{'recognised': True, 'nearest_identity': 1.0, 'nearest_homolog': 'a'}]
        """
        designs = []
        for index, seq in enumerate(sequences):
            design = normalize(seq, record=f"#{index + 1}", source="designs")
            if not design or "_" in design:
                raise SeqdiffError(
                    f"designs: record '#{index + 1}' is empty or has undesigned positions ('_')"
                )
            designs.append(design)
        family_bits, family_evalue = self.search(designs)
        if designed_masks is None:
            scaffold_bits, scaffold_evalue = np.full(len(designs), np.nan), np.full(len(designs), np.inf)
        else:
            scaffold_bits, scaffold_evalue = self.search(_scaffolds(designs, designed_masks))
        identity, nearest_ids = self.nearest(designs)
        return pd.DataFrame(
            {
                "family_bits": family_bits,
                "family_evalue": family_evalue,
                "recognised": recognised(family_evalue),
                "scaffold_bits": scaffold_bits,
                "scaffold_evalue": scaffold_evalue,
                "scaffold_recognised": recognised(scaffold_evalue),
                "nearest_identity": identity,
                "nearest_homolog": nearest_ids,
            }
        )
