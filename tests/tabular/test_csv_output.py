"""``seqdiff impute`` and ``seqdiff sample table`` write CSV as well as Parquet, as ``-o`` names it: a CSV
input's dialect comes back (semicolons and decimal commas for a European spreadsheet), the values equal
the Parquet output's, and a name of no format is one line, before any fit."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.files import iter_record_batches, read_table
from seqdiff.tabular.read_options import ReadOptions
from seqdiff.tabular.writing import CsvDialect, output_dialect, output_format, write_table
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]


def european(path: Path, rows: int = 60) -> Path:
    """A semicolon file with decimal commas, some weights and towns missing."""
    rng = np.random.default_rng(0)
    lines = ["kg;town;n"]
    for i in range(rows):
        kg = "" if i % 4 == 0 else f"{rng.normal(70, 8):.1f}".replace(".", ",")
        town = "" if i % 6 == 1 else ["Köln", "Bonn", "Essen"][i % 3]
        lines.append(f"{kg};{town};{i % 5}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(the input, the Parquet output, the model) of one fit."""
    folder = tmp_path_factory.mktemp("csv_output")
    src, out, model = european(folder / "in.csv"), folder / "out.parquet", folder / "model"
    result = seqdiff("impute", str(src), "-o", str(out), "--save-model", str(model), *TINY)
    assert result.returncode == 0, result.stderr
    return src, out, model


def test_a_csv_output_keeps_the_inputs_dialect_and_equals_the_parquet_output(
    fitted: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    src, parquet_out, model = fitted
    out = tmp_path / "out.csv"
    result = seqdiff("impute", str(src), "-o", str(out), "--checkpoint", str(model))
    assert result.returncode == 0, result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"kg";"town";"n"' and len(lines) == 61
    kgs, towns = zip(*(line.split(";")[:2] for line in lines[1:]), strict=True)
    assert any("," in kg for kg in kgs) and not any("." in kg for kg in kgs) and towns[3] == '"Köln"'
    back, expected = read_table(out), pq.read_table(parquet_out)
    assert back.column_names == expected.column_names
    assert back.column("kg").null_count == 0 and back.column("town").null_count == 0
    np.testing.assert_allclose(back.column("kg").to_numpy(), expected.column("kg").to_numpy())
    assert back.column("town").to_pylist() == expected.column("town").to_pylist()
    assert back.column("n").to_pylist() == expected.column("n").to_pylist()
    observed = read_table(src).column("kg").to_pylist()
    assert all(o is None or o == b for o, b in zip(observed, back.column("kg").to_pylist(), strict=True))


def test_a_windows_file_comes_back_in_its_encoding(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    european(src)
    src.write_bytes(src.read_text(encoding="utf-8").encode("cp1252"))
    out = tmp_path / "out.csv"
    result = seqdiff("impute", str(src), "-o", str(out), "--encoding", "cp1252", *TINY)
    assert result.returncode == 0, result.stderr
    assert "Köln".encode("cp1252") in out.read_bytes()
    back = read_table(out, options=ReadOptions(encoding="cp1252"))
    assert set(back.column("town").to_pylist()) == {"Köln", "Bonn", "Essen"}


@pytest.mark.parametrize(
    ("name", "codec", "mark"), [("in.txt", "utf-16", b"\xff\xfe"), ("in.csv", "utf-8-sig", b"\xef\xbb\xbf")]
)
def test_a_byte_order_mark_comes_back(name: str, codec: str, mark: bytes, tmp_path: Path) -> None:
    """Excel reads a CSV file as UTF-8 or UTF-16 only by its byte-order mark: the output keeps it."""
    src = tmp_path / name
    src.write_bytes(european(tmp_path / "plain.csv").read_text(encoding="utf-8").encode(codec))
    out, parquet_out = tmp_path / f"out{src.suffix}", tmp_path / "out.parquet"
    for path in (out, parquet_out):
        result = seqdiff("impute", str(src), "-o", str(path), "--seed", "3", *TINY)
        assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert data.startswith(mark) and not data[len(mark) :].startswith(mark)
    assert '"Köln"' in data.decode(codec)
    back, expected = read_table(out), pq.read_table(parquet_out)
    assert back.column("town").to_pylist() == expected.column("town").to_pylist()
    np.testing.assert_allclose(back.column("kg").to_numpy(), expected.column("kg").to_numpy())


def test_quoted_text_with_line_breaks_is_read_and_written_back(tmp_path: Path) -> None:
    """A spreadsheet's notes of two lines (quoted, a line break inside): read whole and streamed alike,
    imputed around, and written back with the break (it was a traceback)."""
    rng = np.random.default_rng(0)
    notes = ['"line one\nline two"', "ok", '"check, later"']
    lines = ["x,y,note"] + [
        f"{'' if i % 7 == 0 else f'{rng.normal():.2f}'},{rng.normal():.2f},{notes[i % 3]}" for i in range(60)
    ]
    src, out = tmp_path / "notes.csv", tmp_path / "o.csv"
    src.write_text("\n".join(lines) + "\n")
    whole = read_table(src)
    assert whole.num_rows == 60 and whole.column("note")[0].as_py() == "line one\nline two"
    streamed = [b for b in iter_record_batches(src, 8)]
    assert pa.Table.from_batches(streamed).equals(whole)
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert read_table(out).column("note").equals(whole.column("note"))
    assert '"line one\nline two"' in out.read_text()


def test_tsv_and_compressed_outputs(fitted: tuple[Path, Path, Path], tmp_path: Path) -> None:
    src, parquet_out, model = fitted
    for name in ("out.tsv", "out.csv.gz"):
        result = seqdiff("impute", str(src), "-o", str(tmp_path / name), "--checkpoint", str(model))
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.tsv").read_text().splitlines()[0] == '"kg"\t"town"\t"n"'
    assert gzip.decompress((tmp_path / "out.csv.gz").read_bytes()).startswith(b'"kg";"town";"n"\n')
    expected = pq.read_table(parquet_out).column("kg").to_numpy()
    for name in ("out.tsv", "out.csv.gz"):
        np.testing.assert_allclose(read_table(tmp_path / name).column("kg").to_numpy(), expected)


def test_in_place_rewrites_a_csv_file_whole(tmp_path: Path) -> None:
    src = european(tmp_path / "t.csv")
    result = seqdiff("impute", str(src), "--in-place", *TINY)
    assert result.returncode == 0, result.stderr
    table = read_table(src)
    assert table.num_rows == 60 and table.column("kg").null_count == 0
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


@pytest.mark.parametrize("name", ["out.json", "out.csv.zip", "out", "out.dat", "out.xlsx.gz"])
def test_an_output_of_no_format_is_one_line_before_any_fit(name: str, tmp_path: Path) -> None:
    src = european(tmp_path / "in.csv")
    result = seqdiff("impute", str(src), "-o", str(tmp_path / name))
    assert_one_line_error(result, name, ".parquet", ".csv")
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def test_sample_table_writes_tsv(fitted: tuple[Path, Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "rows.tsv"
    run = seqdiff("sample", "table", "--checkpoint", str(fitted[2]), "--rows", "5", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert out.read_text().splitlines()[0] == '"kg"\t"town"\t"n"'
    assert read_table(out).num_rows == 5


def test_the_writer_api(tmp_path: Path) -> None:
    assert output_format("a.PARQUET") == "parquet" and output_format("a.tsv.bz2") == "csv"
    with pytest.raises(SeqdiffError, match="name the output"):
        output_format("a.json")
    assert output_dialect("o.csv") == CsvDialect(",", ".")
    assert output_dialect("o.tsv") == CsvDialect("\t", ".")
    with pytest.raises(SeqdiffError, match="'日本' cannot be written in cp1252"):
        write_table(pa.table({"x": ["日本"]}), tmp_path / "o.csv", CsvDialect(encoding="cp1252"))
    assert not list(tmp_path.iterdir())


def test_write_table_leaves_nothing_on_error(tmp_path: Path) -> None:
    out = tmp_path / "missing_folder" / "t.csv"
    with pytest.raises(SeqdiffError, match="cannot write"):
        write_table(pa.table({"x": [1.5]}), out)
    assert not out.parent.exists()
