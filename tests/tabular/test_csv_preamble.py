"""Lines above a CSV file's header (an instrument's ``#`` notes, a spreadsheet report's title): skipped
when read, whole and streamed, reported, and written back above a CSV output's header; a VCF-style
``#CHROM`` header stays the header."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from seqdiff.tabular.csv_sniff import detect_decimal, detect_delimiter
from seqdiff.tabular.files import iter_record_batches, read_table
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]
NOTES = "# exported by LabSystem 4.2, 2024-03-15\n# units: temp in C; weight in kg\n"


def readings(path: Path, sep: str = ",", rows: int = 60, notes: str = NOTES) -> Path:
    rng = np.random.default_rng(0)
    lines = [f"temp{sep}kg{sep}site"]
    for i in range(rows):
        temp = "" if i % 5 == 0 else f"{rng.normal(15, 4):.1f}"
        lines.append(f"{temp}{sep}{rng.normal(70, 8):.2f}{sep}{'ab'[i % 2]}")
    path.write_text(notes + "\n".join(lines) + "\n")
    return path


def test_comment_lines_are_skipped_reported_and_written_back(tmp_path: Path) -> None:
    src = readings(tmp_path / "t.csv")
    table = read_table(src)
    assert table.column_names == ["temp", "kg", "site"] and table.num_rows == 60
    assert table.column("temp").null_count == 12 and pa.types.is_floating(table.column("temp").type)
    streamed = pa.Table.from_batches(list(iter_record_batches(src, batch_size=7)))
    assert streamed.equals(table)
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "2 line(s) above the header (# notes or a title): skipped" in result.stderr
    assert "imputed 12 cells" in result.stderr
    text = out.read_text()
    assert text.startswith(NOTES + '"temp","kg","site"\n')
    assert read_table(out).column("temp").null_count == 0
    parquet = tmp_path / "o.parquet"
    assert seqdiff("impute", str(src), "-o", str(parquet), *TINY).returncode == 0
    assert pq.read_table(parquet).column_names == ["temp", "kg", "site"]


def test_windows_line_endings_and_encodings_come_back_with_the_comments(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    body = readings(tmp_path / "plain.csv").read_text()
    src.write_bytes(body.replace("\n", "\r\n").replace("units", "unités").encode("utf-16"))
    out = tmp_path / "o.csv"
    assert seqdiff("impute", str(src), "-o", str(out), *TINY).returncode == 0
    text = out.read_bytes().decode("utf-16")
    assert text.startswith(NOTES.replace("units", "unités") + '"temp","kg","site"\n') and "\r" not in text


def test_comments_do_not_hide_the_dialect(tmp_path: Path) -> None:
    # The notes hold commas and semicolons; the rows are split by semicolons with decimal commas.
    src = tmp_path / "t.csv"
    src.write_text(NOTES + "temp;site\n" + "".join(f"{10 + i % 7},5;{'ab'[i % 2]}\n" for i in range(30)))
    assert detect_delimiter(src) == ";" and detect_decimal(src, ";") == ","
    assert read_table(src).column("temp").to_pylist()[:2] == [10.5, 11.5]


def test_a_hash_header_over_its_rows_stays_the_header(tmp_path: Path) -> None:
    src = tmp_path / "calls.csv"
    src.write_text(
        "##fileformat=VCFv4.2\n#CHROM,POS,QUAL\n" + "".join(f"1,{100 + i},{i % 9}\n" for i in range(30))
    )
    table = read_table(src)
    assert table.column_names == ["#CHROM", "POS", "QUAL"] and table.num_rows == 30
    out = tmp_path / "o.csv"
    assert seqdiff("impute", str(src), "-o", str(out), *TINY).returncode == 0
    assert out.read_text().startswith('##fileformat=VCFv4.2\n"#CHROM","POS","QUAL"\n')


def test_a_bad_row_is_named_by_its_line_in_the_file(tmp_path: Path) -> None:
    src = readings(tmp_path / "t.csv")
    lines = src.read_text().splitlines()
    lines[9] += ",extra"  # the file's line 10
    src.write_text("\n".join(lines) + "\n")
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"), *TINY)
    assert_one_line_error(result, "t.csv", "line 10:")


def test_a_spreadsheet_reports_title_rows_are_skipped_and_kept(tmp_path: Path) -> None:
    """Excel's CSV export of a titled sheet: the title and a blank row padded with delimiters."""
    src = tmp_path / "report.csv"
    title = '"Sales report, Q3 2024",,\nNorth and south,,\n,,\n'
    rows = "".join(f"{'ns'[i % 2]},{'' if i % 6 == 0 else i % 40},{20 + i % 7}.5\n" for i in range(60))
    src.write_text(title + "region,units,price\n" + rows)
    table = read_table(src)
    assert table.column_names == ["region", "units", "price"] and table.num_rows == 60
    assert table.column("units").null_count == 10
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "3 line(s) above the header" in result.stderr and "imputed 10 cells" in result.stderr
    assert out.read_text().startswith(title + '"region","units","price"\n')
    # Without a blank line after it, a one-field first line is the header's problem, not a title.
    src.write_text("Sales report\nregion,units,price\n" + rows)
    assert_one_line_error(seqdiff("impute", str(src), "-o", str(out), *TINY), "report.csv")
