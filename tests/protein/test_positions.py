"""Residue selections, contigs, motif sources and layouts, checked on the motif-scaffolding benchmark."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.motif_problems import load_benchmark_problems
from seqdiff.errors import SeqdiffError
from seqdiff.protein.contig import (
    DesignedSegment,
    MotifSegment,
    format_contig,
    load_motif_source,
    parse_contig,
    resolve_contig,
    sample_layout,
)
from seqdiff.protein.positions import format_ranges, parse_length_range, parse_ranges, ranges_to_mask


def one_line_error(call, *args):
    with pytest.raises(SeqdiffError) as info:
        call(*args)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    return message


# --- residue selections ---------------------------------------------------------------------------


def test_parse_ranges():
    assert parse_ranges("10-25,40-45,7") == [(7, 7), (10, 25), (40, 45)]
    assert parse_ranges(" 3 - 4 , 5", length=5) == [(3, 4), (5, 5)]
    assert format_ranges(parse_ranges("10-25,40-45,7")) == "7,10-25,40-45"
    assert ranges_to_mask([(2, 3), (5, 5)], 6).tolist() == [False, True, True, False, True, False]


@pytest.mark.parametrize(
    ("text", "piece", "why"),
    [
        ("10-x", "10-x", "not a number"),
        ("5-3", "5-3", "reversed"),
        ("0-4", "0-4", "start at 1"),
        ("-2", "-2", "start at 1"),
        ("1-5,60", "60", "beyond the end"),
        ("1-5,4-8", "1-5' and '4-8", "overlap"),
        ("1-5,,7", "", "not a number"),
        ("", "", "empty"),
    ],
)
def test_parse_ranges_errors(text, piece, why):
    message = one_line_error(parse_ranges, text, 50)
    assert f"residue selection {text!r}" in message and f"'{piece}'" in message and why in message


def test_ranges_to_mask_checks_bounds():
    assert "outside a sequence of length 4" in one_line_error(ranges_to_mask, [(3, 5)], 4)


@given(st.text(max_size=30), st.one_of(st.none(), st.integers(0, 100)))
def test_parse_ranges_raises_only_seqdiff_errors(text, length):
    try:
        ranges = parse_ranges(text, length)
    except SeqdiffError as err:
        assert len(str(err).splitlines()) == 1
    else:
        assert parse_ranges(format_ranges(ranges)) == ranges


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=8))
def test_format_ranges_round_trip(steps):
    ranges, end = [], 0
    for gap, size in steps:
        start = end + 1 + gap
        end = start + size
        ranges.append((start, end))
    assert parse_ranges(format_ranges(ranges), length=end) == ranges


def test_parse_length_range():
    assert parse_length_range("50-75") == (50, 75)
    assert parse_length_range("60") == (60, 60)
    assert "at least 1" in one_line_error(parse_length_range, "0-5")


# --- contigs --------------------------------------------------------------------------------------


def test_parse_contig():
    assert parse_contig("5-20,A16-35,20,A38") == [
        DesignedSegment(5, 20),
        MotifSegment("A", 16, 35),
        DesignedSegment(20, 20),
        MotifSegment("A", 38, 38),
    ]
    assert parse_contig("[10-40/A163-181/10-40]") == parse_contig("10-40, A163-181, 10-40")
    assert parse_contig("H35A-52") == [MotifSegment("H", 35, 52, start_icode="A")]
    assert format_contig(parse_contig("0-30,A16A-35B,A38")) == "0-30,A16A-35B,A38-38"


@pytest.mark.parametrize(
    ("contig", "segment"),
    [
        ("A16-", "A16-"),
        ("5-3", "5-3"),
        ("A", "A"),
        ("A16-35-40", "A16-35-40"),
        ("5-20,A35-16", "A35-16"),
        ("5-20,A16A-16", "A16A-16"),
        ("10,5-6y", "5-6y"),
        ("A1-100/0 70-100", "0 70-100"),
        ("A1-100/0", "0"),
        ("-5,A1-3", "-5"),
    ],
)
def test_malformed_contigs(contig, segment):
    message = one_line_error(parse_contig, contig)
    assert message.startswith(f"contig {contig!r}: segment {segment!r}")


@pytest.mark.parametrize("contig", ["", "  ", "[]", "5-20,,A1-3", "A1-3,"])
def test_empty_contigs(contig):
    assert re.search("empty", one_line_error(parse_contig, contig))


@given(st.text(alphabet="AB0123456789-,/ []xé", max_size=25) | st.text(max_size=25))
def test_parse_contig_raises_only_seqdiff_errors(text):
    try:
        segments = parse_contig(text)
    except SeqdiffError as err:
        assert len(str(err).splitlines()) == 1
    else:
        assert parse_contig(format_contig(segments)) == segments


# --- motif sources --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def problems(shared):
    return load_benchmark_problems(shared / "protein/motif_scaffolding/problems.csv")


@pytest.fixture(scope="module")
def sources(problems):
    return {path: load_motif_source(path) for path in {problem.pdb_path for problem in problems}}


def test_benchmark_problems_load(problems):
    assert len(problems) == 24
    assert "6VW1" not in {problem.name for problem in problems}
    by_name = {problem.name: problem for problem in problems}
    assert by_name["1PRW"].length_range is None
    assert by_name["7MRX_60"].length_range == (60, 60)
    assert by_name["5TPN"].length_range == (50, 75)
    assert {name for name, problem in by_name.items() if problem.numbering == "sequential"} == {
        "6EXZ_short",
        "6EXZ_med",
        "6EXZ_long",
    }


def test_every_benchmark_motif_is_reproduced(problems, sources):
    for problem in problems:
        pieces = resolve_contig(parse_contig(problem.contig), sources[problem.pdb_path], problem.numbering)
        assert {piece.name: piece.sequence for piece in pieces} == problem.motif_segments, problem.name


def assert_designed_runs_within_bounds(segments, motif_lengths, layout):
    """Each run of designed positions between motifs is as long as the designed segments there allow."""
    groups, group = [], []
    for segment in segments:
        if isinstance(segment, MotifSegment):
            groups.append(group)
            group = []
        else:
            group.append(segment)
    groups.append(group)
    edges = [0]
    for (_, start), length in zip(layout.motifs, motif_lengths, strict=True):
        edges += [start, start + length]
    edges.append(len(layout.template))
    for group, run_start, run_end in zip(groups, edges[::2], edges[1::2], strict=True):
        assert set(layout.template[run_start:run_end]) <= {"_"}
        assert sum(s.min_len for s in group) <= run_end - run_start <= sum(s.max_len for s in group)


def test_benchmark_layouts_respect_lengths(problems, sources):
    for problem in problems:
        segments = parse_contig(problem.contig)
        pieces = resolve_contig(segments, sources[problem.pdb_path], problem.numbering)
        designed = [segment for segment in segments if isinstance(segment, DesignedSegment)]
        low = sum(map(len, problem.motif_segments.values())) + sum(s.min_len for s in designed)
        high = sum(map(len, problem.motif_segments.values())) + sum(s.max_len for s in designed)
        if problem.length_range is not None:
            low, high = max(low, problem.length_range[0]), min(high, problem.length_range[1])
        for seed in range(20):
            layout = sample_layout(
                segments, [p.sequence for p in pieces], problem.length_range, np.random.default_rng(seed)
            )
            assert low <= len(layout.template) <= high, problem.name
            assert [name for name, _ in layout.motifs] == [p.name for p in pieces]
            for (_, start), piece in zip(layout.motifs, pieces, strict=True):
                assert layout.template[start : start + len(piece.sequence)] == piece.sequence
            assert layout.template.count("_") == len(layout.template) - sum(len(p.sequence) for p in pieces)
            assert_designed_runs_within_bounds(segments, [len(p.sequence) for p in pieces], layout)


def test_6exz_needs_sequential_numbering(shared):
    source = load_motif_source(shared / "protein/motif_scaffolding/pdbs/6exz.pdb.gz")
    assert source.chains["A"][0].number == 530
    message = one_line_error(resolve_contig, parse_contig("A28-42"), source)
    assert "not in the file: A28, A42 (chain A has residues 530-598)" in message
    assert resolve_contig(parse_contig("A28-42"), source, "sequential")[0].sequence == "LHLETKLNAEYTFML"


def test_insertion_codes(shared):
    source = load_motif_source(shared / "protein/motif_scaffolding/pdbs/3ixt.pdb.gz")
    assert len(resolve_contig(parse_contig("H35-36"), source)[0].sequence) == 4
    assert len(resolve_contig(parse_contig("H35A-35B"), source)[0].sequence) == 2
    assert "insertion codes" in one_line_error(resolve_contig, parse_contig("H35A-36"), source, "sequential")


def test_resolve_errors(shared):
    source = load_motif_source(shared / "protein/motif_scaffolding/pdbs/4jhw.pdb.gz")
    assert "chain 'Q' not found (chains: H, L, F)" in one_line_error(
        resolve_contig, parse_contig("Q1-5"), source
    )
    message = one_line_error(resolve_contig, parse_contig("5,F90-140,5"), source)
    assert "contig segment 'F90-140'" in message and "residues 98-136 of chain F are missing" in message
    assert "not in the file: F900" in one_line_error(resolve_contig, parse_contig("F196-900"), source)


def test_fasta_motif_source(tmp_path):
    named = tmp_path / "chains.fasta"
    named.write_text(">B\nMKTAY\n>C\nGGSW\n")
    source = load_motif_source(named)
    assert resolve_contig(parse_contig("B2-4,5,C1-2"), source)[0].sequence == "KTA"
    unnamed = tmp_path / "target.fa"
    unnamed.write_text(">sp|P1|X one\nMKTAY\n>sp|P2|Y two\nGGSW\n")
    pieces = resolve_contig(parse_contig("A2-3,B4"), load_motif_source(unnamed))
    assert [p.sequence for p in pieces] == ["KT", "W"]
    message = one_line_error(resolve_contig, parse_contig("A4-9"), load_motif_source(unnamed))
    assert "not in the file: A9 (chain A has residues 1-5)" in message


def test_motif_source_errors(tmp_path):
    assert "file not found" in one_line_error(load_motif_source, tmp_path / "absent.pdb")
    garbage = tmp_path / "garbage.pdb"
    garbage.write_text("this is not a structure\n")
    assert "no protein residues" in one_line_error(load_motif_source, garbage)
    garbage.write_text("ATOM      1  N   MET A   1      1x.000  2.000  3.000  1.00  0.00           N\n")
    assert "not a readable PDB file" in one_line_error(load_motif_source, garbage)
    assert "unknown motif source type" in one_line_error(load_motif_source, tmp_path / "x.cif")
    binary = tmp_path / "binary.pdb.gz"
    binary.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert "cannot read" in one_line_error(load_motif_source, binary)


# --- layouts --------------------------------------------------------------------------------------


def test_same_seed_same_layout():
    segments = parse_contig("5-20,A16-35,10-25,A52-71,5-20")
    motifs = ["F" * 20, "I" * 20]
    first = sample_layout(segments, motifs, (60, 80), np.random.default_rng(7))
    assert first == sample_layout(segments, motifs, (60, 80), np.random.default_rng(7))
    layouts = {sample_layout(segments, motifs, (60, 80), np.random.default_rng(seed)) for seed in range(20)}
    assert len(layouts) > 1


def test_layout_contig_reproduces_template():
    segments = parse_contig("0-5,A1-3,0-5,A9-9,0-4")
    for seed in range(50):
        layout = sample_layout(segments, ["MKT", "W"], None, np.random.default_rng(seed))
        fixed = sample_layout(parse_contig(layout.contig), ["MKT", "W"], None, np.random.default_rng(0))
        assert fixed.template == layout.template and fixed.motifs == layout.motifs


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=6),
    st.integers(1, 20),
    st.integers(0, 2**32 - 1),
)
def test_sample_layout_respects_segment_bounds(bounds, motif_len, seed):
    designed = [DesignedSegment(min(a, b), max(a, b, 1)) for a, b in bounds]
    segments = [*designed[:1], MotifSegment("A", 1, motif_len), *designed[1:]]
    layout = sample_layout(segments, ["M" * motif_len], None, np.random.default_rng(seed))
    before, after = layout.template.split("M" * motif_len)
    assert designed[0].min_len <= len(before) <= designed[0].max_len
    assert sum(s.min_len for s in designed[1:]) <= len(after) <= sum(s.max_len for s in designed[1:])
    assert layout.motifs == (("A1-" + str(motif_len), len(before)),)


@pytest.mark.parametrize(
    ("contig", "length_range", "why"),
    [
        ("5-10,A1-3,5", (100, 200), "gives 13-18 residues, which cannot meet the length range 100-200"),
        ("5-10,A1-3,5", (20, 15), "reversed"),
        (",".join(["0-1000"] * 3 + ["A1-1"] + ["0-1000"] * 3), (3, 3), "widen the length range"),
    ],
)
def test_impossible_layouts(contig, length_range, why):
    message = one_line_error(
        sample_layout, parse_contig(contig), ["M" * 3], length_range, np.random.default_rng(0)
    )
    assert why in message


def test_layout_needs_one_sequence_per_motif():
    message = one_line_error(
        sample_layout, parse_contig("A1-3,5,A7-8"), ["MKT"], None, np.random.default_rng(0)
    )
    assert "2 motif segments but 1 motif sequences" in message
