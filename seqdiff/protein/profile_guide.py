"""Profile guidance: the family's profile HMM as a prior on each designed position.

A model adapted for a few CPU-minutes learns a family's composition faster than its position-specific
pattern. The family's profile HMM has that pattern, column by column, so the sampler can multiply each
prediction by the profile's odds at the matching column (a product of experts, as ProteinMPNN's PSSM
bias does): p(a) ∝ p_model(a) · (e_k(a) / background(a)) ** weight.

Which column k a designed position matches is found in two steps. The family's reference protein (the
input, or the chain a contig's motifs come from) is aligned to the HMM (hmmalign), which places each of
its residues on a match state or an insert. A design template is then placed on the reference
(`place_template`): a template of the reference's own layout position by position; one with nothing
fixed spread evenly over the reference; a contig's layout by its motifs, each designed segment taking
the reference residues next to the motif it touches, from both ends inwards, so a segment longer than
the reference's leaves its middle without a prior (an insertion) and a shorter one skips the
reference's middle (a deletion). Unplaced positions keep the model's prediction as it is.

Example:
    >>> place_template("MK__YIA__R", "MKTAYIAKQR").tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> place_template("___YIA___", "MKTAYIAKQR").tolist()  # YIA sits at 4-6 of the reference
    [1, 2, 3, 4, 5, 6, 7, 8, 9]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pyhmmer import easel, plan7

from seqdiff.protein import alphabet
from seqdiff.protein.contig import parse_contig
from seqdiff.protein.homolog_search import AMINO

if TYPE_CHECKING:
    from seqdiff.protein.design import DesignJob

UNPLACED = -1

# HMMER's amino-acid order, the order of an HMM's emission rows.
_HMMER_IDS = [alphabet.TOKEN_ID[aa] for aa in AMINO.symbols[: AMINO.K]]


def reference_states(hmm: plan7.HMM, reference: str) -> np.ndarray:
    """For each residue of ``reference``, its match state (1..M) in hmmalign's alignment; 0 for an insert.

    ``_`` (a position to design) is aligned as ``X``, any residue.
    """
    seq = easel.TextSequence(name=b"reference", sequence=reference.replace("_", "X")).digitize(AMINO)
    block = easel.DigitalSequenceBlock(AMINO, [seq])
    aligner = plan7.TraceAligner()
    row = aligner.align_traces(hmm, block, aligner.compute_traces(hmm, block)).alignment[0]
    states, state = [], 0
    for column in row:
        if column.isupper() or column == "-":  # a match column ("-": the reference deletes it)
            state += 1
        if column.isupper():
            states.append(state)
        elif column.islower():
            states.append(0)
    return np.asarray(states, dtype=np.int64)


def _motif_runs(template: str) -> list[tuple[int, int]]:
    """0-based half-open runs of fixed letters."""
    return [m.span() for m in re.finditer(r"[^_]+", template)]


def _locate(run: str, reference: str, near: int) -> int | None:
    """Where ``run`` occurs in ``reference``: the occurrence starting nearest ``near``; None if absent."""
    starts = [m.start() for m in re.finditer(f"(?={re.escape(run)})", reference)]
    return min(starts, key=lambda s: abs(s - near)) if starts else None


def place_template(template: str, reference: str, motif_starts: tuple[int, ...] = ()) -> np.ndarray:
    """For each template position, the reference position it corresponds to (``UNPLACED``: none).

    ``motif_starts`` are the 1-based reference numbers of the template's motifs in order, as a contig
    names them (``A16-35`` starts at 16): where a motif occurs more than once in the reference, the
    occurrence nearest its number is taken.

    Example:
        >>> place_template("__KT___", "MKTAYIAKQR").tolist()  # 2 before KT, 3 after it
        [-1, 0, 1, 2, 3, 4, 5]
        >>> place_template("MK__AK", "MKTAYIAKQR").tolist()  # 2 designed for the reference's 5
        [0, 1, 2, 5, 6, 7]
    """
    placed = np.full(len(template), UNPLACED, dtype=np.int64)
    same_layout = len(template) == len(reference) and all(
        t in ("_", r) for t, r in zip(template, reference, strict=True)
    )
    if same_layout:
        return np.arange(len(template))
    if "_" * len(template) == template:  # nothing fixed, another length: spread over the reference
        return np.rint(np.linspace(0, len(reference) - 1, len(template))).astype(np.int64)
    anchors = []  # (template start, template end, reference start) of each motif found
    for i, (start, end) in enumerate(_motif_runs(template)):
        near = motif_starts[i] - 1 if i < len(motif_starts) else start
        at = _locate(template[start:end], reference, near)
        if at is not None:
            placed[start:end] = np.arange(at, at + end - start)
            anchors.append((start, end, at))
    for start, end in (m.span() for m in re.finditer("_+", template)):
        left = next((a for a in reversed(anchors) if a[1] == start), None)
        right = next((a for a in anchors if a[0] == end), None)
        length = end - start
        if left is not None and right is not None:
            from_left, from_right = math.ceil(length / 2), length // 2
            gap = right[2] - (left[2] + left[1] - left[0])
            if gap >= 0:  # in the reference's order: share out its gap, the rest is an insertion
                from_left, from_right = min(from_left, math.ceil(gap / 2)), min(from_right, gap // 2)
        else:
            from_left, from_right = (length, 0) if left is not None else (0, length)
        if left is not None:
            first = left[2] + left[1] - left[0]
            placed[start : start + from_left] = np.arange(first, first + from_left)
        if right is not None:
            placed[end - from_right : end] = np.arange(right[2] - from_right, right[2])
    placed[(placed < 0) | (placed >= len(reference))] = UNPLACED
    return placed


@dataclass(frozen=True)
class ProfileGuide:
    """The log-odds prior of a family's profile on design templates (see the module's docstring).

    ``log_odds`` [len(reference), 20] is weight x log(e_k(a) / background(a)) at each reference
    residue's match state k, in HMMER's amino-acid order; 0 at inserts. Calling the guide on a
    design job gives its template's prior over the token ids, [len(template), alphabet.VOCAB_SIZE],
    0 at fixed and unplaced positions.
    """

    reference: str
    log_odds: np.ndarray
    weight: float

    @classmethod
    def from_hmm(cls, hmm: plan7.HMM, reference: str, weight: float) -> ProfileGuide:
        states = reference_states(hmm, reference)
        emissions = np.asarray(hmm.match_emissions, dtype=np.float64)[:, : AMINO.K]
        background = np.asarray(plan7.Background(AMINO).residue_frequencies, dtype=np.float64)[: AMINO.K]
        odds = np.log(np.clip(emissions, 1e-6, None) / background) * weight
        odds[0] = 0.0  # row 0 is no match state: inserts get no prior
        return cls(reference=reference, log_odds=odds[states], weight=weight)

    def __call__(self, job: DesignJob) -> np.ndarray:
        template = job.template
        prior = np.zeros((len(template), alphabet.VOCAB_SIZE), dtype=np.float32)
        if self.weight == 0:
            return prior
        motif_starts = tuple(parse_contig(name)[0].start for name, _ in job.motifs)
        placed = place_template(template, self.reference, motif_starts)
        rows = np.flatnonzero(placed != UNPLACED)
        prior[np.ix_(rows, _HMMER_IDS)] = self.log_odds[placed[rows]]
        designed = np.frombuffer(template.encode(), dtype=np.uint8) == ord("_")
        prior[~designed] = 0.0  # fixed positions are never drawn
        return prior
