"""The ESM-1b alphabet: equality with fair-esm, encoding rules, round trips."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from seqdiff.errors import SeqdiffError
from seqdiff.protein.alphabet import (
    CLS_ID,
    DESIGNABLE,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    STANDARD_AA,
    TOKEN_ID,
    TOKENS,
    VOCAB_SIZE,
    decode,
    encode,
    encode_batch,
)

RESIDUES = "LAGVSERTIDPKQNFYMHWCXBUZO"


def test_table_equals_fair_esm():
    esm = pytest.importorskip("esm")
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    assert list(TOKENS) == alphabet.all_toks
    assert VOCAB_SIZE == len(alphabet) == 33
    assert (CLS_ID, PAD_ID, EOS_ID, MASK_ID) == (
        alphabet.cls_idx,
        alphabet.padding_idx,
        alphabet.eos_idx,
        alphabet.mask_idx,
    )
    seq = "MKTAYIAKQRBZUOX"
    assert encode(seq) == [alphabet.get_idx(ch) for ch in seq]


def test_designable_is_the_twenty_standard_amino_acids():
    assert DESIGNABLE.dtype == torch.bool and DESIGNABLE.shape == (VOCAB_SIZE,)
    assert {TOKENS[i] for i in DESIGNABLE.nonzero().flatten().tolist()} == set(STANDARD_AA)


def test_encode_rules():
    assert encode("mkt") == encode("MKT")
    assert encode("MK*") == encode("MK")
    assert encode("M_K") == [TOKEN_ID["M"], MASK_ID, TOKEN_ID["K"]]
    assert encode("BZUOX") == [TOKEN_ID[ch] for ch in "BZUOX"]
    assert encode("") == []


@pytest.mark.parametrize(
    ("seq", "position", "char"),
    [
        ("MKJ", 3, "'J'"),
        ("M*K", 2, "'*'"),
        ("MK**", 3, "'*'"),
        ("M K", 2, "' '"),
        ("M-K", 2, "'-'"),
        ("Mß", 2, "'ß'"),
    ],
)
def test_encode_rejects_with_position(seq, position, char):
    with pytest.raises(SeqdiffError) as info:
        encode(seq, record="r1", source="in.fasta")
    message = str(info.value)
    assert message.startswith(f"in.fasta: record 'r1': position {position}: {char}")
    assert len(message.splitlines()) == 1


def test_encode_error_is_one_line_for_newlines():
    with pytest.raises(SeqdiffError) as info:
        encode("MK\nL")
    assert len(str(info.value).splitlines()) == 1


@given(st.text(alphabet=RESIDUES + RESIDUES.lower() + "_"))
def test_round_trip(seq):
    assert decode(encode(seq)) == seq.upper()


def test_decode_drops_pad_and_rejects_specials():
    assert decode(torch.tensor([TOKEN_ID["M"], MASK_ID, PAD_ID, PAD_ID])) == "M_"
    for token in (CLS_ID, EOS_ID, TOKEN_ID["<unk>"], 99):
        with pytest.raises(SeqdiffError, match=f"token id {token} "):
            decode([TOKEN_ID["M"], token])


def test_encode_batch_pads_and_masks():
    ids, valid = encode_batch(["MKT", "A", "_C"])
    assert ids.dtype == torch.long and valid.dtype == torch.bool
    assert ids.shape == valid.shape == (3, 3)
    assert valid.tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    assert [decode(row) for row in ids] == ["MKT", "A", "_C"]
    with pytest.raises(SeqdiffError, match="record '#2'"):
        encode_batch(["MK", "MJ"])
    assert encode_batch([])[0].shape == (0, 0)
