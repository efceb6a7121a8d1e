"""Excel workbooks (.xlsx) in and out of ``seqdiff impute``: cell types, placeholders and Excel's error
values, sheets, the one-line errors, and an imputed workbook whose observed cells are the input's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular import excel
from seqdiff.tabular.files import iter_record_batches, read_table
from seqdiff.tabular.read_options import NA_VALUES, ReadOptions
from seqdiff.tabular.writing import write_table
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]


def workbook(path: Path, rows: int = 80) -> Path:
    """A clinic's sheet as people keep one: a title-less header, numbers with gaps, an "NA" and Excel's
    #N/A, dates, yes/no as booleans, a blank row, and a notes sheet after it."""
    rng = np.random.default_rng(0)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "visits"
    sheet.append(["patient", "age", "weight", "ward", "seen", "smoker"])
    for i in range(rows):
        weight = None if i % 5 == 0 else round(float(rng.normal(70, 9)), 1)
        ward = "NA" if i % 7 == 0 else ["north", "south", "east"][i % 3]
        age = "#N/A" if i % 11 == 0 else int(rng.integers(20, 90))
        sheet.append(
            [f"P{i:03d}", age, weight, ward, dt.datetime(2025, 1, 1) + dt.timedelta(days=i), i % 4 == 0]
        )
        if i == 40:
            sheet.append([None] * 6)
    book.create_sheet("notes").append(["written by", "the nurse"])
    book.save(path)
    return path


def test_cells_become_typed_columns(tmp_path: Path) -> None:
    table = read_table(workbook(tmp_path / "clinic.xlsx"))
    assert table.num_rows == 80  # the blank row is skipped
    types = {f.name: str(f.type) for f in table.schema}
    assert types == {
        "patient": "string",
        "age": "int64",
        "weight": "double",
        "ward": "string",
        "seen": "timestamp[us]",
        "smoker": "bool",
    }
    assert table.column("age").null_count == 8  # #N/A
    assert table.column("ward").null_count == 12  # "NA"
    assert table.column("weight").null_count == 16
    assert table.column("seen")[41].as_py() == dt.datetime(2025, 2, 11)
    batches = list(iter_record_batches(tmp_path / "clinic.xlsx", 30))
    assert [b.num_rows for b in batches] == [30, 30, 20]
    assert pa.Table.from_batches(batches).equals(table)


def test_a_sheet_by_name_and_the_errors(tmp_path: Path) -> None:
    path = workbook(tmp_path / "clinic.xlsx")
    notes = read_table(path, options=ReadOptions(sheet="notes"))
    assert notes.column_names == ["written by", "the nurse"] and notes.num_rows == 0
    with pytest.raises(SeqdiffError, match=r"clinic.xlsx: no sheet 'lab'; its sheets: 'visits', 'notes'"):
        read_table(path, options=ReadOptions(sheet="lab"))
    fake = tmp_path / "fake.xlsx"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(SeqdiffError, match="fake.xlsx: not a readable Excel workbook"):
        read_table(fake)
    book = openpyxl.Workbook()
    book.active.append([])
    book.active.append(["Table 1: doses", None])  # a title above the header
    book.active.append(["x", "y"])
    book.active.append([1, 2])
    book.save(tmp_path / "titled.xlsx")
    with pytest.raises(SeqdiffError, match="titled.xlsx: column B has cells but no name in row 2, the first"):
        read_table(tmp_path / "titled.xlsx")


def test_impute_writes_a_workbook_whose_observed_cells_are_the_inputs(tmp_path: Path) -> None:
    src, out = workbook(tmp_path / "clinic.xlsx"), tmp_path / "filled.xlsx"
    before = src.read_bytes()
    result = seqdiff("impute", str(src), "-o", str(out), "--samples", "2", "--keep-draws", *TINY)
    assert result.returncode == 0, result.stderr
    assert "'patient': a distinct value in every filled row" in result.stderr
    assert src.read_bytes() == before
    given, filled = read_table(src), read_table(out)
    assert filled.schema.equals(given.schema)
    for name in ("age", "weight", "ward"):
        assert filled.column(name).null_count == 0
        pairs = zip(given.column(name).to_pylist(), filled.column(name).to_pylist(), strict=True)
        kept = [(a, b) for a, b in pairs if a is not None]
        assert all(a == b for a, b in kept) and len(kept) > 60
    assert set(filled.column("ward").to_pylist()) <= {"north", "south", "east"}
    assert openpyxl.load_workbook(out).sheetnames == ["imputed"]
    for k in (1, 2):
        assert read_table(tmp_path / f"filled.draw{k}.xlsx").column("weight").null_count == 0
    # Excel in, CSV out; CSV in, Excel out.
    csv_out = tmp_path / "filled.csv"
    assert seqdiff("impute", str(src), "-o", str(csv_out), *TINY).returncode == 0
    back = tmp_path / "back.xlsx"
    assert seqdiff("impute", str(csv_out), "-o", str(back), *TINY).returncode == 0
    assert read_table(back).column("patient").to_pylist() == given.column("patient").to_pylist()


def test_a_workbook_is_never_replaced(tmp_path: Path) -> None:
    src = workbook(tmp_path / "clinic.xlsx")
    before = src.read_bytes()
    for extra in ([], ["--in-place"]):
        result = seqdiff("impute", str(src), "-o", str(src), *extra, *TINY)
        assert_one_line_error(result, "clinic.xlsx", "replace the workbook with one sheet")
    assert_one_line_error(seqdiff("impute", str(src), "--in-place", *TINY), "without its other sheets")
    assert src.read_bytes() == before


def test_stray_words_among_numbers_are_named_and_na_values_reads_them(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["dose", "arm"])
    for i in range(60):
        book.active.append(["pending" if i % 20 == 3 else 0.5 * i, "ab"[i % 2]])
    src, out = tmp_path / "trial.xlsx", tmp_path / "o.xlsx"
    book.save(src)
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "column 'dose' holds numbers but for 3 cells of 'pending'", "--na-values")
    assert not out.exists()
    result = seqdiff("impute", str(src), "-o", str(out), "--na-values", "pending", *TINY)
    assert result.returncode == 0, result.stderr
    dose = read_table(out).column("dose")
    assert dose.type == pa.float64() and dose.null_count == 0


def test_the_sheet_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "t.xlsx"
    write_table(pa.table({"x": [1.5, float("nan"), None], "d": [dt.date(2025, 3, 1)] * 3}), out)
    assert [r for r in openpyxl.load_workbook(out).active.iter_rows(values_only=True)] == [
        ("x", "d"),
        (1.5, dt.datetime(2025, 3, 1)),
        (None, dt.datetime(2025, 3, 1)),
        (None, dt.datetime(2025, 3, 1)),
    ]
    bad = tmp_path / "bad.xlsx"
    with pytest.raises(SeqdiffError, match="column 'x' holds inf, which Excel cannot"):
        write_table(pa.table({"x": [1.0, float("inf")]}), bad)
    monkeypatch.setattr(excel, "MAX_ROWS", 3)
    with pytest.raises(SeqdiffError, match="more than 2 rows do not fit an Excel sheet"):
        write_table(pa.table({"x": [1, 2, 3]}), bad)
    assert not bad.exists() and list(tmp_path.iterdir()) == [out]


def test_a_sheet_is_read_once_for_a_fit_and_its_imputation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seqdiff.tabular.task import impute_table

    src = workbook(tmp_path / "clinic.xlsx")
    opened = []
    load = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: opened.append(a[0]) or load(*a, **k))
    tiny = {"max_steps": 5, "early_stopping": False, "dim": 16, "n_heads": 2}
    report, _ = impute_table(src, tmp_path / "o.parquet", fit=tiny, device="cpu")
    assert report.imputed_cells > 0 and opened == [str(src)]
    assert excel.read_sheet(src, na_values=NA_VALUES) is excel.read_sheet(src, na_values=NA_VALUES)
    assert len(opened) == 1
    # A changed file is read again.
    book = load(src)
    book["visits"]["B2"] = 99
    book.save(src)
    assert excel.read_sheet(src, na_values=NA_VALUES).column("age")[0].as_py() == 99 and len(opened) == 2


def test_a_reports_title_rows_above_a_blank_row_are_skipped(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    for row in (["Sales report, Q3 2024"], [None, "north and south"], [], ["region", "units"]):
        book.active.append(row)
    for i in range(20):
        book.active.append(["ns"[i % 2], None if i % 4 == 0 else i])
    book.save(tmp_path / "report.xlsx")
    table = read_table(tmp_path / "report.xlsx")
    assert table.column_names == ["region", "units"] and table.num_rows == 20
    assert table.column("units").null_count == 5
    book.active.insert_rows(3)  # a title of two rows then two blank rows: still a title
    book.active.cell(5, 3).value = "note"  # and the header with a third name
    book.save(tmp_path / "report.xlsx")
    assert read_table(tmp_path / "report.xlsx").column_names == ["region", "units", "note"]
