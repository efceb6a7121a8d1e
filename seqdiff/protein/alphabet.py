"""The ESM-1b 33-token protein alphabet, hard-coded so that importing it does not import ``esm``.

The table equals ``esm.data.Alphabet.from_architecture("ESM-1b").all_toks`` (a test checks this), so
token ids can be fed to ESM models unchanged. Sequences are encoded without ``<cls>``/``<eos>``
framing; callers that run ESM itself add it.

Example:
    >>> encode("MK_")
    [20, 15, 32]
    >>> decode([20, 15, 32, PAD_ID])
    'MK_'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch

from seqdiff.errors import SeqdiffError

_RESIDUES = "LAGVSERTIDPKQNFYMHWCXBUZO"

TOKENS: tuple[str, ...] = ("<cls>", "<pad>", "<eos>", "<unk>", *_RESIDUES, ".", "-", "<null_1>", "<mask>")
TOKEN_ID: dict[str, int] = {tok: i for i, tok in enumerate(TOKENS)}

VOCAB_SIZE = len(TOKENS)
CLS_ID = TOKEN_ID["<cls>"]
PAD_ID = TOKEN_ID["<pad>"]
EOS_ID = TOKEN_ID["<eos>"]
MASK_ID = TOKEN_ID["<mask>"]

STANDARD_AA = "ACDEFGHIKLMNPQRSTVWY"

DESIGNABLE = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
DESIGNABLE[[TOKEN_ID[aa] for aa in STANDARD_AA]] = True

# `_` marks a position to design (the ESM3 convention); it encodes to the mask token.
_CHAR_ID = {aa: TOKEN_ID[aa] for aa in _RESIDUES} | {"_": MASK_ID}
_ID_CHAR = {i: ch for ch, i in _CHAR_ID.items()} | {TOKEN_ID["."]: ".", TOKEN_ID["-"]: "-", PAD_ID: ""}
# Listing both cases instead of calling .upper() first: some non-ASCII letters upper-case to
# several ASCII letters ("ß" -> "SS"), which would pass validation and shift positions.
_INVALID = re.compile(f"[^{_RESIDUES}{_RESIDUES.lower()}_]")


def normalize(seq: str, *, record: str = "?", source: str = "?") -> str:
    """Validate a sequence and return it upper-cased, without a final ``*`` (stop codon).

    Raises SeqdiffError naming ``source``, ``record``, the 1-based position and the bad character.

    Example:
        >>> normalize("mkB_*")
        'MKB_'
    """
    body = seq[:-1] if seq.endswith("*") else seq
    bad = _INVALID.search(body)
    if bad is not None:
        char = bad.group()
        why = "'*' (stop) is only allowed at the end" if char == "*" else f"{char!r} is not an amino acid"
        raise SeqdiffError(f"{source}: record {record!r}: position {bad.start() + 1}: {why}")
    return body.upper()


def encode(seq: str, *, record: str = "?", source: str = "?") -> list[int]:
    """Token ids of a protein sequence (see :func:`normalize` for what is accepted).

    Example:
        >>> encode("ACx")
        [5, 23, 24]
    """
    return [_CHAR_ID[ch] for ch in normalize(seq, record=record, source=source)]


def decode(ids: Iterable[int] | torch.Tensor) -> str:
    """The sequence of token ids: ``<mask>`` becomes ``_`` and ``<pad>`` is dropped.

    ``<cls>``, ``<eos>``, ``<unk>`` and ``<null_1>`` are not residues and raise SeqdiffError.

    Example:
        >>> decode(torch.tensor([20, 32, 5, PAD_ID]))
        'M_A'
    """
    values = ids.tolist() if isinstance(ids, torch.Tensor) else ids
    try:
        return "".join(_ID_CHAR[i] for i in values)
    except KeyError as err:
        token = TOKENS[err.args[0]] if 0 <= err.args[0] < VOCAB_SIZE else "out of range"
        raise SeqdiffError(f"token id {err.args[0]} ({token}) is not a residue") from None


def encode_batch(seqs: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode sequences into a ``[B, Lmax]`` LongTensor padded with PAD_ID and a BoolTensor of valid positions.

    Example:
        >>> ids, valid = encode_batch(["MK", "A"])
        >>> ids.tolist(), valid.tolist()
        ([[20, 15], [5, 1]], [[True, True], [True, False]])
    """
    encoded = [encode(seq, record=f"#{i + 1}") for i, seq in enumerate(seqs)]
    width = max(map(len, encoded), default=0)
    ids = torch.full((len(encoded), width), PAD_ID, dtype=torch.long)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    return ids, ids != PAD_ID
