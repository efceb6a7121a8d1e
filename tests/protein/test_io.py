"""FASTA / gzipped FASTA / A3M reading on real files, the bad-input matrix, and atomic writing."""

import gzip
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqdiff.errors import SeqdiffError
from seqdiff.protein.io import ProteinRecord, ensure_not_input, iter_sequences, read_sequences, write_fasta


def test_a3m_real_msa(shared):
    path = shared / "protein/family/evodiff_scaffold_msas/1prw.a3m.gz"
    raw = [line for line in gzip.open(path, "rt").read().splitlines() if line and not line.startswith(">")]
    records = read_sequences(path)
    assert len(records) == len(raw) > 1
    query = records[0]
    assert query.id == "1prw" and query.sequence == raw[0]
    # Every aligned row has one character (residue or '-') per match column, i.e. per query residue.
    assert all(sum(ch.isupper() or ch == "-" for ch in row) == len(query.sequence) for row in raw)
    for record in records:
        assert record.sequence and record.sequence.isupper()
        assert "-" not in record.sequence and "." not in record.sequence
    assert records[1].description.startswith("calcium-binding mitochondrial carrier protein")


def test_gzipped_fasta_streams_20k_records(shared):
    path = shared / "protein/general/uniprot_mmseqs2_example_DB20k.fasta.gz"
    ids = [record.id for record in iter_sequences(path)]
    assert len(ids) == 20_000
    assert all(record_id.count("|") == 2 for record_id in ids)


def test_compression_is_detected_by_magic_bytes(tmp_path):
    gz_without_suffix = tmp_path / "x.fasta"
    gz_without_suffix.write_bytes(gzip.compress(b">a\nMK\n"))
    plain_with_suffix = tmp_path / "y.fasta.gz"
    plain_with_suffix.write_text(">b\nMK\n")
    assert read_sequences(gz_without_suffix) == [ProteinRecord("a", "", "MK")]
    assert read_sequences(plain_with_suffix) == [ProteinRecord("b", "", "MK")]


def test_accepted_variants(tmp_path):
    path = tmp_path / "ok.fasta"
    path.write_bytes(b"\xef\xbb\xbf\n>a seed=1 t=0.5\r\nmkt\r\nAY*\r\n>b\nM_K\n\n")
    assert read_sequences(path) == [
        ProteinRecord("a", "seed=1 t=0.5", "MKTAY"),
        ProteinRecord("b", "", "M_K"),
    ]


BAD_INPUTS = {
    "no header": (b"MKTAYIAK\n>a\nMK\n", "no '>' header"),
    "empty record": (b">a\n>b\nMK\n", "record 'a' has no sequence"),
    "empty last record": (b">a\nMK\n>b\n", "record 'b' has no sequence"),
    "empty header": (b">\nMK\n", "record #1 has an empty header"),
    "empty file": (b"", "empty file"),
    "blank file": (b"\n \n", "empty file"),
    "binary NUL": (b">a\nMK\x00\x01\x02", "binary data"),
    "binary not UTF-8": (b">a\nMK\xff\xfe\n", "binary data"),
    "invalid letter": (b">a\nMKJT\n", "record 'a': position 3: 'J' is not an amino acid"),
    "digit": (b">a x\nMK1T\n", "record 'a': position 3: '1'"),
    "stop in the middle": (b">a\nMK*T\n", "record 'a': position 3: '*' (stop) is only allowed at the end"),
    "gap in FASTA": (b">a\nMK-T\n", "record 'a': position 3: '-'"),
    "truncated gzip": (gzip.compress(b">a\nMKT\n" * 1000)[:40], "cannot read"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_fasta(tmp_path, case):
    content, expected = BAD_INPUTS[case]
    path = tmp_path / "bad.fasta"
    path.write_bytes(content)
    with pytest.raises(SeqdiffError) as info:
        read_sequences(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message
    assert len(message.splitlines()) == 1


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SeqdiffError, match="file not found"):
        read_sequences(tmp_path / "absent.fasta")
    with pytest.raises(SeqdiffError, match="is a directory"):
        read_sequences(tmp_path)


def test_a3m_drops_insertions_and_gaps(tmp_path):
    path = tmp_path / "msa.a3m"
    path.write_text("#12\t1\n>q\nMKTAY\n>h1 homolog\n-KtaTA.Y\n")
    assert [r.sequence for r in read_sequences(path)] == ["MKTAY", "KTAY"]


FASTA_LIKE = st.lists(
    st.sampled_from([b">", b"a", b" ", b"\n", b"\r", b"M", b"K", b"J", b"*", b"_", b"-", b"\x00"])
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=200),
        FASTA_LIKE.map(b"".join),
        FASTA_LIKE.map(lambda parts: gzip.compress(b"".join(parts))),
        st.binary(max_size=50).map(lambda data: gzip.compress(data)[:-3]),
    )
)
def test_arbitrary_bytes_raise_only_seqdiff_errors(tmp_path, data):
    path = tmp_path / "fuzz.fasta"
    path.write_bytes(data)
    try:
        records = read_sequences(path)
    except SeqdiffError as err:
        assert len(str(err).splitlines()) == 1
    else:
        assert records and all(r.id and r.sequence for r in records)


def test_write_read_round_trip(tmp_path):
    records = [
        ProteinRecord("d1", "seed=1 temperature=0.7", "MKTAYIAKQR" * 13),
        ProteinRecord("d2", "", "M_K"),
    ]
    path = tmp_path / "out.fasta"
    write_fasta(records, path)
    lines = path.read_text().splitlines()
    assert lines[:3] == [">d1 seed=1 temperature=0.7", "MKTAYIAKQR" * 6, "MKTAYIAKQR" * 6]
    assert read_sequences(path) == records
    write_fasta(records, path, line_width=None)
    assert len(path.read_text().splitlines()) == 4


def test_write_to_stdout(capsys):
    write_fasta([ProteinRecord("d1", "k=v", "MKTAY")], "-", line_width=3)
    assert capsys.readouterr().out == ">d1 k=v\nMKT\nAY\n"


def test_write_refuses_to_overwrite_an_input(tmp_path):
    source = tmp_path / "in.fasta"
    source.write_text(">a\nMK\n")
    (tmp_path / "link.fasta").symlink_to(source)
    records = [ProteinRecord("b", "", "MKT")]
    for output in (source, tmp_path / "link.fasta", tmp_path / "sub" / ".." / "in.fasta"):
        with pytest.raises(SeqdiffError, match="refusing to overwrite the input file"):
            write_fasta(records, output, inputs=[source])
    assert source.read_text() == ">a\nMK\n"
    ensure_not_input("-", [source])
    write_fasta(records, source, inputs=[source], allow_overwrite_input=True)
    assert read_sequences(source) == records


def test_write_is_atomic(tmp_path):
    path = tmp_path / "out.fasta"
    path.write_text(">old\nMK\n")

    def records():
        yield ProteinRecord("new", "", "MKT")
        raise SeqdiffError("generation failed")

    with pytest.raises(SeqdiffError, match="generation failed"):
        write_fasta(records(), path)
    assert path.read_text() == ">old\nMK\n"
    assert os.listdir(tmp_path) == ["out.fasta"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (ProteinRecord("", "", "MK"), "one non-empty word"),
        (ProteinRecord("a b", "", "MK"), "one non-empty word"),
        (ProteinRecord("a", "x\ny", "MK"), "one line"),
        (ProteinRecord("a", "", ""), "no sequence"),
        (ProteinRecord("a", "", "MKJ"), "'J' is not an amino acid"),
    ],
)
def test_write_rejects_unreadable_records(tmp_path, record, expected):
    with pytest.raises(SeqdiffError, match=expected):
        write_fasta([record], tmp_path / "out.fasta")
    assert not list(tmp_path.iterdir())


def test_write_to_missing_directory(tmp_path):
    with pytest.raises(SeqdiffError, match="cannot write"):
        write_fasta([ProteinRecord("a", "", "MK")], tmp_path / "absent" / "out.fasta")
