"""Reading, weighting and searching homologs: every accepted format, every bad input, real MSAs and DB20k."""

from __future__ import annotations

import gzip
import re
import time
from pathlib import Path

import numpy as np
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.protein.homolog_search import search_homologs
from seqdiff.protein.homologs import (
    Homologs,
    align_homologs,
    nonredundant,
    read_homologs,
    sequence_weights,
)
from seqdiff.protein.io import read_sequences, write_fasta

A3M = """>query
MKTAYIAKQR
>hit1 some description
MK-AYiaIAKQ-
>hit2
--TAYIAKQRggg
"""

STOCKHOLM = """# STOCKHOLM 1.0
#=GF ID toy
s1 MKT..AYIAK
s2 MKTgaAYLAK
s3 MRS..-YIAK
#=GC RF xxx..xxxxx
//
"""


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def msa_dir(shared: Path) -> Path:
    return shared / "protein" / "family" / "evodiff_scaffold_msas"


@pytest.fixture(scope="module")
def db20k(shared: Path) -> Path:
    return shared / "protein" / "general" / "uniprot_mmseqs2_example_DB20k.fasta.gz"


@pytest.mark.parametrize("name", ["family.a3m", "family.a3m.gz", "family.txt.gz"])
def test_a3m_match_columns_exclude_insertions(tmp_path, name):
    homologs = read_homologs(write(tmp_path / name, A3M), query="mktayiakqr")
    assert homologs.ids == ("query", "hit1", "hit2")
    assert homologs.sequences == ("MKTAYIAKQR", "MKAYIAIAKQ", "TAYIAKQRGGG")
    assert homologs.aligned == ("MKTAYIAKQR", "MK-AYIAKQ-", "--TAYIAKQR")
    assert homologs.match_columns


def test_aligned_fasta_keeps_every_column_and_upper_cases(tmp_path):
    path = write(tmp_path / "aligned.fasta", ">a\nmkt-ayiak\n>b\nMKTWAY.AK\n>c\n--TWAYIAK\n")
    homologs = read_homologs(path)
    assert homologs.aligned == ("MKT-AYIAK", "MKTWAY-AK", "--TWAYIAK")
    assert homologs.sequences[1] == "MKTWAYAK"
    assert not homologs.match_columns


def test_unaligned_fasta_has_no_alignment_until_famsa_aligns_it(tmp_path):
    homologs = read_homologs(write(tmp_path / "h.fa.gz", ">a\nMMYK\n>b\nMYKLP\n>c\nMYKL*\n"))
    assert homologs.aligned is None and homologs.sequences == ("MMYK", "MYKLP", "MYKL")
    aligned = align_homologs(homologs).aligned
    assert len({len(row) for row in aligned}) == 1
    assert [row.replace("-", "") for row in aligned] == list(homologs.sequences)


@pytest.mark.parametrize("name", ["toy.sto", "toy.sto.gz"])
def test_stockholm_reference_line_names_the_match_columns(tmp_path, name):
    homologs = read_homologs(write(tmp_path / name, STOCKHOLM))
    assert homologs.ids == ("s1", "s2", "s3")
    assert homologs.aligned == ("MKTAYIAK", "MKTAYLAK", "MRS-YIAK")
    assert homologs.sequences[1] == "MKTGAAYLAK"
    assert homologs.match_columns


def test_exact_duplicates_are_dropped_and_counted(tmp_path):
    homologs = read_homologs(write(tmp_path / "d.fasta", ">a\nMKTAY\n>b\nmktay\n>c\nMKTAW\n"))
    assert homologs.ids == ("a", "c") and homologs.duplicates_dropped == 1


def test_records_round_trip_through_fasta(tmp_path):
    homologs = read_homologs(write(tmp_path / "f.a3m", A3M))
    write_fasta(homologs.records, tmp_path / "train.fasta")
    assert [r.sequence for r in read_sequences(tmp_path / "train.fasta")] == list(homologs.sequences)


def test_real_a3m(msa_dir):
    homologs = read_homologs(
        msa_dir / "1prw.a3m.gz",
        query="adqltEEQIAEFKEAFSLFDKDGDGTITTKELGTVMRSLGQNPTEAELQDMINEVDADGNGTIDFPEFLTMMARKMKDTDSEEEIREAFRVFDKDGNGYISAAELRHVMTNLGELTDEEVDEMIREADIDGDGQVNYEEFVQMMTAK",
    )
    assert len(homologs) == 1119 and homologs.ids[0] == "1prw"
    assert {len(row) for row in homologs.aligned} == {147}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("empty.fasta", "", "empty file (no sequences)"),
        ("one.fasta", ">a\nMKTAY\n", "only one sequence; a family needs at least 2"),
        ("same.fasta", ">a\nMKTAY\n>b\nMKTAY\n", "only one distinct sequence"),
        ("bad.fasta", ">a\nMKTAY\n>b\nMKJAY\n", "record 'b': position 3: 'J' is not an amino acid"),
        ("mask.fasta", ">a\nMKTAY\n>b\nMK_AY\n", "record 'b': '_' is not an amino acid"),
        ("gaps.fasta", ">a\nMKTAY\n>b\n-----\n", "record 'b' has no residues"),
        ("dna.fasta", ">a\nACGTTGACCA\n>b\nACGTAGACCA\n", "look like nucleotide sequences"),
        (
            "ragged.fasta",
            ">a\nMK-TAY\n>b\nMKTAYAA\n",
            "aligned FASTA record 'b' has 7 columns, the first row 6",
        ),
        ("ragged.a3m", ">a\nMKTAY\n>b\nMK-AYWW\n", "A3M record 'b' has 7 match columns, the first row 5"),
        (
            "ragged.sto",
            "# STOCKHOLM 1.0\ns1 MKT\ns2 MKTAY\n//\n",
            "not a readable Stockholm alignment (Sequences",
        ),
        ("two.sto", "# STOCKHOLM 1.0\ns1 MKT\ns2 MKA\n//\n" * 2, "(More than one record found in handle)"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    with pytest.raises(SeqdiffError, match=re.escape(message)) as caught:
        read_homologs(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(SeqdiffError, match="file not found"):
        read_homologs(tmp_path / "nope.a3m")


def test_a3m_for_another_protein_is_refused(tmp_path):
    path = write(tmp_path / "other.a3m", A3M)
    with pytest.raises(SeqdiffError, match="not the input protein: this MSA is for another protein"):
        read_homologs(path, query="GSHPWLNDEC")
    with pytest.raises(SeqdiffError, match="another protein"):
        read_homologs(path, query="MKTAWWAKQR")  # 80% identical: a relative, not this protein


def test_an_a3m_built_for_a_construct_of_the_input_is_accepted(tmp_path):
    path = write(tmp_path / "construct.a3m", A3M)
    for query in ("GSMKTAYIAKQRLEH", "KTAYIAKQ", "MKTAYIAKQW"):  # tagged, trimmed, one mutation in ten
        assert read_homologs(path, query=query).ids[0] == "query"


def test_near_identical_homologs_share_weight_and_an_outlier_weighs_one():
    rows = ("MKTAYIAKQRQISFVKSHFS", "MKTAYIAKQRQISFVKSHFA", "MKTAYIAKQRQISFVKSHWA", "GSHPWLNDECFAEGRPLVMT")
    homologs = Homologs("toy", ("a", "b", "c", "d"), rows, rows, True)
    # a-b and b-c are 95% identical, a-c 90%: at 0.92 b has 3 neighbours, a and c have 2.
    assert sequence_weights(homologs, identity=0.92).tolist() == pytest.approx([1 / 2, 1 / 3, 1 / 2, 1.0])
    assert sequence_weights(homologs).sum() == pytest.approx(2.0)
    assert sequence_weights(homologs, identity=1.0).tolist() == [1.0] * 4
    assert nonredundant(homologs, identity=0.92).ids == ("a", "c", "d")


def test_weights_of_unaligned_homologs_come_from_their_famsa_alignment():
    seqs = ("MKTAYIAKQRQISFVKSHFS", "MKTAYIAKQRQISFVKSHFSA", "GSHPWLNDECFAEGRPLVMT")
    weights = sequence_weights(Homologs("toy", ("a", "b", "c"), seqs))
    assert weights.tolist() == [0.5, 0.5, 1.0]


def test_fragment_identity_counts_the_shorter_rows_residues():
    rows = ("MKTAYIAKQRQISFVKSHFS", "----------QISFVKSHFS", "MKTAYIAKQR----------")
    homologs = Homologs("toy", ("a", "b", "c"), rows, rows, True)
    # both fragments lie inside a; they share no column with each other.
    assert sequence_weights(homologs).tolist() == pytest.approx([1 / 3, 1 / 2, 1 / 2])


def test_weighting_the_largest_shared_msa_is_fast(msa_dir):
    homologs = read_homologs(msa_dir / "6vw1.a3m.gz")
    start = time.perf_counter()
    weights = sequence_weights(homologs)
    assert time.perf_counter() - start < 15
    assert len(weights) == 3406 and 3000 < weights.sum() <= 3406
    assert np.all((weights > 0) & (weights <= 1))


def test_bad_identity_threshold():
    homologs = Homologs("toy", ("a", "b"), ("MK", "MR"), ("MK", "MR"))
    with pytest.raises(SeqdiffError, match=r"identity threshold must be in \(0, 1\], got 1.5"):
        sequence_weights(homologs, identity=1.5)


@pytest.fixture(scope="module")
def query_1prw(msa_dir) -> str:
    return read_homologs(msa_dir / "1prw.a3m.gz").sequences[0]


@pytest.mark.parametrize(("method", "at_least"), [("phmmer", 40), ("jackhmmer", 60)])
def test_search_finds_the_ef_hand_family_in_db20k(db20k, query_1prw, method, at_least):
    found = search_homologs([query_1prw], db20k, method=method)
    assert len(found) >= at_least and found.aligned is None
    descriptions = {r.id: r.description for r in read_sequences(db20k)}
    named = [descriptions[i] for i in found.ids if "ncharacterized" not in descriptions[i]]
    calcium = [
        d for d in named if re.search("calcium|calmodulin|EF-hand|S100|caltractin|phospholipase", d, re.I)
    ]
    assert len(calcium) >= 0.5 * len(named)
    # hits are the spans of their domains, not whole multi-domain proteins
    assert max(map(len, found.sequences)) < 400


def test_search_max_hits_keeps_the_best(db20k, query_1prw):
    found = search_homologs([query_1prw], db20k, method="phmmer", max_hits=5)
    assert len(found) == 5


def test_search_errors(tmp_path, db20k, query_1prw):
    with pytest.raises(SeqdiffError, match="database file not found"):
        search_homologs([query_1prw], tmp_path / "none.fasta")
    with pytest.raises(SeqdiffError, match="empty file"):
        search_homologs([query_1prw], write(tmp_path / "empty.fasta", ""))
    with pytest.raises(SeqdiffError, match="nucleotide"):
        search_homologs([query_1prw], write(tmp_path / "dna.fasta", ">a\nACGTACGGTTACA\n>b\nACGGTACCA\n"))
    with pytest.raises(SeqdiffError, match="position 2: '1' is not an amino acid"):
        search_homologs([query_1prw], write(tmp_path / "bad.fasta", ">a\nM1KT\n"))
    unrelated = write(
        tmp_path / "unrelated.fasta", ">a\nGSHPWLNDECFAEGRPLVMTWQPHCIKRSL\n>b\nWWPHCIKRSLGSHPWLNDECFAEG\n"
    )
    with pytest.raises(SeqdiffError, match=r"no sequence is a homolog of the query at E < 0.001 \(phmmer\)"):
        search_homologs([query_1prw], unrelated, method="phmmer")
    with pytest.raises(SeqdiffError, match="unknown search method 'blast'"):
        search_homologs([query_1prw], db20k, method="blast")
    with pytest.raises(SeqdiffError, match="non-empty list of query sequences"):
        search_homologs(query_1prw, db20k)
