"""Dates in a spreadsheet's local style in CSV files (``03/15/2024``, ``15.03.2024``, ``15/03/2024
14:30``, ``3/15/2024 2:30:00 PM``): their format found, read as dates (or timestamps), whole and
streamed, and imputed; a later value that is no such date is one line naming it; two-digit years stay
text."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from seqdiff.tabular.csv_dates import date_formats, to_dates
from seqdiff.tabular.files import iter_record_batches, read_table
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]
START = datetime.datetime(2024, 1, 1)


def moments(rows: int = 80) -> list[datetime.datetime]:
    rng = np.random.default_rng(0)
    return [START + datetime.timedelta(minutes=int(m)) for m in rng.integers(0, 525_600, rows)]


@pytest.mark.parametrize(
    ("fmt", "typ"),
    [
        ("%m/%d/%Y", "date32[day]"),
        ("%d/%m/%Y", "date32[day]"),
        ("%d.%m.%Y", "date32[day]"),
        ("%d-%m-%Y", "date32[day]"),
        ("%m/%d/%Y %H:%M", "timestamp[s]"),
        ("%d.%m.%Y %H:%M:%S", "timestamp[s]"),
        ("%m/%d/%Y %I:%M %p", "timestamp[s]"),
        ("%m/%d/%Y %I:%M:%S %p", "timestamp[s]"),
        ("%d/%m/%Y %I:%M%p", "timestamp[s]"),
    ],
)
def test_local_dates_are_read_as_dates_whole_and_streamed(fmt: str, typ: str, tmp_path: Path) -> None:
    when = moments()
    src = tmp_path / "t.csv"
    lines = [f"{'' if i % 5 == 0 else w.strftime(fmt)},{i}" for i, w in enumerate(when)]
    src.write_text("when,n\n" + "\n".join(lines) + "\n")
    table = read_table(src)
    assert str(table.column("when").type) == typ
    expected = [None if i % 5 == 0 else w if "%M" in fmt else w.date() for i, w in enumerate(when)]
    if "%S" not in fmt:
        expected = [e.replace(second=0) if isinstance(e, datetime.datetime) else e for e in expected]
    assert table.column("when").to_pylist() == expected
    streamed = pa.Table.from_batches(list(iter_record_batches(src, batch_size=9)))
    assert streamed.equals(table)


def test_formats_that_cannot_be_told_stay_text() -> None:
    rows = [
        ["01/02/2024", "1/3/2024", "3/4/2024 10:00", "2024"],
        ["11/12/2024", "15/3/2024", "5/4/2024", "x"],
    ]
    # a: no day past the 12th; b: day first; c: with and without a time; d: not dates
    assert date_formats(["a", "b", "c", "d"], rows) == {"b": "%d/%m/%Y"}
    assert date_formats(["a"], [["13.01.2024"], ["01.13.2024"]]) == {}  # a point: day.month only


def test_twelve_hour_clocks_and_two_digit_years() -> None:
    rows = [
        ["3/15/2024 2:30 PM", "3/15/2024 2:30 pm", "3/15/24", "3/15/2024 2:30 PM"],
        ["12/1/2024 12:05 AM", "12/1/2024 9:00 am", "12/1/24", "12/1/2024 14:00"],
    ]
    # c: a two-digit year's century is a guess; d: a 12-hour and a 24-hour clock mixed
    assert date_formats(["a", "b", "c", "d"], rows) == {"a": "%m/%d/%Y %I:%M %p", "b": "%m/%d/%Y %I:%M %p"}
    src_rows = [[f"{v}"] for v in ("3/15/2024 2:30 PM", "12/1/2024 12:05 AM", "7/4/2024 12:00 PM")]
    fmt = date_formats(["a"], src_rows)["a"]
    stamps = to_dates(pa.array([r[0] for r in src_rows]), "a", fmt).to_pylist()
    assert stamps == [
        datetime.datetime(2024, 3, 15, 14, 30),
        datetime.datetime(2024, 12, 1, 0, 5),
        datetime.datetime(2024, 7, 4, 12, 0),
    ]


def test_a_later_value_that_is_no_date_is_one_line_error(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    later = "".join(f"15.{1 + i % 12:02d}.2024,{i}\n" for i in range(3_000))  # past the 64 KiB sampled
    src.write_text("due,n\n" + later * 2 + "soon,1\n")
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(
        result, "t.csv", "'due' holds dates written like 15.01.2024 but for 'soon'", "--na-values"
    )
    assert not out.exists()
    result = seqdiff("impute", str(src), "-o", str(out), "--na-values", "soon", *TINY)
    assert result.returncode == 0, result.stderr


def test_dates_are_imputed_and_written_as_iso_dates(tmp_path: Path) -> None:
    when = moments()
    src = tmp_path / "t.csv"
    lines = [f"{'' if i % 4 == 0 else w.strftime('%m/%d/%Y')},{w.month},{i % 3}" for i, w in enumerate(when)]
    src.write_text("sold,month,k\n" + "\n".join(lines) + "\n")
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "imputed 20 cells" in result.stderr
    back = read_table(out)
    assert str(back.column("sold").type) == "date32[day]" and back.column("sold").null_count == 0
    observed = [w.date() for i, w in enumerate(when) if i % 4]
    assert [d for i, d in enumerate(back.column("sold").to_pylist()) if i % 4] == observed
    assert out.read_text().splitlines()[2].startswith(when[1].strftime("%Y-%m-%d"))
