"""Real-world files, through ``seqdiff impute`` and the sklearn API: CSV dialects, placeholders for
missing cells, identifier columns, and numeric columns with a few stray words. Each bad case is one
``seqdiff: error:`` line, exit status 2, and nothing written."""

from __future__ import annotations

import bz2
import codecs
import gzip
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.csv_sniff import detect_decimal, detect_delimiter
from seqdiff.tabular.files import iter_record_batches, read_table
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.read_options import ERROR_VALUES, NA_VALUES, ReadOptions
from seqdiff.tabular.schema import infer_schema
from tests.test_bad_input import assert_one_line_error, seqdiff

TINY = ["--max-steps", "5", "--no-early-stopping"]


def frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows).astype(float),
            "job": rng.choice(["clerk", "nurse", "farmer"], rows),
            "hours": rng.normal(40, 5, rows).round(1),
        }
    )


def write(path: Path, df: pd.DataFrame, sep: str, na: str = "") -> Path:
    df.to_csv(path, sep=sep, index=False, na_rep=na)
    return path


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected_and_imputed(sep: str, tmp_path: Path) -> None:
    df = frame()
    df.loc[::4, "hours"] = np.nan
    df.loc[1::5, "job"] = None
    src = write(tmp_path / "in.csv", df, sep)
    assert detect_delimiter(src) == sep
    out = tmp_path / "out.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    back = pq.read_table(out)
    assert back.column_names == ["age", "job", "hours"]
    missing = int(df["hours"].isna().sum() + df["job"].isna().sum())
    assert f"imputed {missing:,} cells" in result.stderr
    assert back.column("hours").null_count == 0 and back.column("job").null_count == 0


def test_a_csv_file_is_sniffed_once_for_a_fit_its_imputation_and_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seqdiff.tabular import csv_sniff
    from seqdiff.tabular.task import impute_table

    df = frame()
    df.loc[::4, "hours"] = np.nan
    src = write(tmp_path / "in.csv", df, ";")
    sampled = []
    sample_lines = csv_sniff._sample_lines
    monkeypatch.setattr(csv_sniff, "_sample_lines", lambda *a: sampled.append(a[0]) or sample_lines(*a))
    tiny = {"max_steps": 5, "early_stopping": False, "dim": 16, "n_heads": 2}
    report, _ = impute_table(src, tmp_path / "out.csv", fit=tiny, device="cpu")
    assert report.imputed_cells == 15 and sampled == [src]
    assert (tmp_path / "out.csv").read_text().splitlines()[0] == '"age";"job";"hours"'
    # A changed file is sniffed again.
    write(src, df, "|")
    assert detect_delimiter(src) == "|" and len(sampled) == 2


def test_an_ambiguous_delimiter_is_one_line_error_and_delimiter_settles_it(tmp_path: Path) -> None:
    src = tmp_path / "amb.csv"
    src.write_text("a,b;c\n" + "".join(f"{i},x;{i % 3}\n" for i in range(60)))
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "amb.csv", "comma", "semicolon", "--delimiter")
    assert not out.exists()
    assert read_table(src, options=ReadOptions(delimiter=";")).column_names == ["a,b", "c"]
    result = seqdiff("impute", str(src), "-o", str(out), "--delimiter", ",", *TINY)
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).column_names == ["a", "b;c"]
    assert_one_line_error(seqdiff("impute", str(src), "-o", str(out), "--delimiter", "ab"), "--delimiter")


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_decimal_comma_is_detected_and_read_as_numbers(sep: str, tmp_path: Path) -> None:
    df = frame()
    df["hours"] = df["hours"] - 40  # negative numbers too
    df.loc[::4, "hours"] = np.nan
    src = tmp_path / "in.csv"
    df.to_csv(src, sep=sep, index=False, decimal=",")
    assert re.search(r"-\d+,\d", src.read_text())  # written like -1,8
    assert detect_decimal(src, sep) == ","
    table = read_table(src)
    assert str(table.column("hours").type) == "double"
    np.testing.assert_allclose(table.column("hours").to_numpy(zero_copy_only=False), df["hours"])
    streamed = [b.column("hours").type for b in iter_record_batches(src, 16)]
    assert set(map(str, streamed)) == {"double"}
    out = tmp_path / "out.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    hours = pq.read_table(out).column("hours")
    assert str(hours.type) == "double" and hours.null_count == 0
    observed = df["hours"].notna().to_numpy()
    np.testing.assert_allclose(hours.to_numpy()[observed], df["hours"][observed])


def test_two_decimal_marks_are_one_line_error_and_decimal_settles_it(tmp_path: Path) -> None:
    df = frame()
    src = tmp_path / "mixed.csv"
    body = "".join(
        f"{h:.1f}".replace(".", ",") + f";{a / 7:.2f};{j}\n" for h, a, j in df[["hours", "age", "job"]].values
    )
    src.write_text("hours;ratio;job\n" + body)
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "mixed.csv", "decimal mark", "'hours'", "'ratio'", "--decimal")
    assert not out.exists()
    result = seqdiff("impute", str(src), "-o", str(out), "--decimal", ",", *TINY)
    assert result.returncode == 0, result.stderr
    back = pq.read_table(out)
    assert str(back.column("hours").type) == "double" and str(back.column("ratio").type) == "string"
    assert read_table(src, options=ReadOptions(decimal=".")).column("ratio").type == "double"


def test_numbers_like_thousands_groups_are_not_read_as_decimals(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("amount;n\n" + "".join(f"{i},{(i * 37) % 1000:03d};{i}\n" for i in range(1, 40)))
    assert detect_decimal(src, ";") == "."
    amount = read_table(src).column("amount")
    assert str(amount.type) == "int64"
    assert amount.to_pylist() == [i * 1000 + (i * 37) % 1000 for i in range(1, 40)]


def excel_text(rows: int = 120) -> str:
    """A table as a European spreadsheet exports it: semicolons, decimal commas, accents, CRLF."""
    rng = np.random.default_rng(0)
    lines = ["âge;poids;ville"]
    for i in range(rows):
        weight = "" if i % 5 == 0 else f"{rng.normal(70, 10):.1f}".replace(".", ",")
        town = "" if i % 7 == 0 else ["Zürich", "Genève", "Bâle"][i % 3]
        lines.append(f"{20 + i % 50};{weight};{town}")
    return "\r\n".join(lines) + "\r\n"


def test_a_utf8_spreadsheet_export_with_a_byte_order_mark(tmp_path: Path) -> None:
    src = tmp_path / "export.csv"
    src.write_bytes(b"\xef\xbb\xbf" + excel_text().encode())
    table = read_table(src)
    assert table.column_names == ["âge", "poids", "ville"]
    assert str(table.column("poids").type) == "double" and table.column("poids").null_count == 24
    out = tmp_path / "out.parquet"
    assert seqdiff("impute", str(src), "-o", str(out), *TINY).returncode == 0
    back = pq.read_table(out)
    assert back.column("poids").null_count == 0 and set(back.column("ville").to_pylist()) <= {
        "Zürich",
        "Genève",
        "Bâle",
    }


def test_a_file_in_another_encoding_is_one_line_error_and_encoding_reads_it(tmp_path: Path) -> None:
    src = tmp_path / "windows.csv"
    src.write_bytes(excel_text().encode("cp1252"))
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "windows.csv", "not utf-8 text", "--encoding cp1252")
    assert not out.exists()
    result = seqdiff("impute", str(src), "-o", str(out), "--encoding", "cp1252", *TINY)
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).column_names == ["âge", "poids", "ville"]
    assert_one_line_error(seqdiff("impute", str(src), "-o", str(out), "--encoding", "klingon"), "'klingon'")
    # Bytes that are not UTF-8 only after the first 64 KiB that are sniffed: the column is named.
    late = tmp_path / "late.csv"
    rows = "".join(f"{i};{i % 7},5;x\n" for i in range(12_000))
    late.write_bytes(f"a;b;c\n{rows}".encode() + "1;2,5;Zürich\n".encode("cp1252"))
    assert_one_line_error(
        seqdiff("impute", str(late), "-o", str(out)), "late.csv", "column 'c'", "--encoding"
    )
    with pytest.raises(SeqdiffError, match="column 'c' is not utf-8 text"):
        next(iter_record_batches(late))


@pytest.mark.parametrize(
    ("name", "mark", "codec"),
    [
        ("unicode.txt", b"", "utf-16"),  # Excel's "Unicode Text": little-endian UTF-16, tabs
        ("big.csv.gz", codecs.BOM_UTF16_BE, "utf-16-be"),
        ("wide.tsv", b"", "utf-32"),
    ],
)
def test_a_byte_order_mark_names_the_encoding(name: str, mark: bytes, codec: str, tmp_path: Path) -> None:
    text = excel_text().replace(";", "\t")
    data = mark + text.encode(codec)
    src = tmp_path / name
    src.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    plain = tmp_path / "plain.tsv"
    plain.write_text(text, encoding="utf-8")
    expected = read_table(plain)
    assert read_table(src).equals(expected)
    assert pa.Table.from_batches(list(iter_record_batches(src, 50))).equals(expected)
    out = tmp_path / "o.parquet"
    assert seqdiff("impute", str(src), "-o", str(out), *TINY).returncode == 0
    assert pq.read_table(out).column_names == ["âge", "poids", "ville"]
    # A given --encoding still decides: these bytes are not UTF-8.
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "p.parquet"), "--encoding", "utf-8")
    assert_one_line_error(result, name, "utf-8")


def test_excels_sep_line_names_the_delimiter(tmp_path: Path) -> None:
    df = frame()
    df.loc[::4, "hours"] = np.nan
    src = tmp_path / "excel.csv"
    body = df.to_csv(sep=";", index=False, decimal=",", lineterminator="\r\n")
    src.write_bytes(("\ufeffsep=;\r\n" + body).encode("utf-8"))
    assert detect_delimiter(src) == ";" and detect_decimal(src, ";") == ","
    table = read_table(src)
    assert table.column_names == ["age", "job", "hours"] and table.num_rows == len(df)
    assert table.column("hours").to_pylist()[1] == df["hours"][1]
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), "--delimiter", ";", *TINY)
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).column("hours").null_count == 0


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_row_with_another_number_of_fields_is_named_by_its_line(suffix: str, tmp_path: Path) -> None:
    lines = frame(80).to_csv(index=False).splitlines()
    lines.insert(57, "30,clerk,40.5,extra")
    text = "\n".join(lines) + "\n"
    src = tmp_path / f"t{suffix}"
    src.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, src.name, "line 58", "Expected 3 columns, got 4: 30,clerk,40.5,extra")
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2"])
def test_a_compressed_file_cut_short_is_one_line(suffix: str, tmp_path: Path) -> None:
    """A download cut short: a traceback (OSError from the first read) when it ended in the first 64 KiB."""
    text = frame(200).to_csv(index=False).encode()
    src = tmp_path / f"t{suffix}"
    src.write_bytes((gzip.compress(text) if suffix.endswith(".gz") else bz2.compress(text))[:100])
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, f"{src.name}: cannot read (Truncated compressed stream)")
    src.write_bytes(b"not compressed at all")
    assert_one_line_error(seqdiff("impute", str(src), "-o", str(out), *TINY), f"{src.name}: cannot read (")
    assert not out.exists()


def test_a_quote_after_a_space_is_named_as_the_reason_a_row_splits(tmp_path: Path) -> None:
    """`20, clerk, "$1,000"`: Arrow opens a quoted field only at its first character, so the comma inside
    the quotes splits the row; the message says why, not only that the row has four fields."""
    src = tmp_path / "pay.csv"
    src.write_text('age, job, pay\n20, clerk, "$1,000"\n30, , "$2,000"\n')
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"), *TINY)
    assert_one_line_error(result, "line 2", "Expected 3 columns, got 4", "a quote after a space is text")
    src.write_text("age,job,pay\n20,clerk,1000,9\n")  # another cause: no such hint
    assert "a quote after" not in seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"), *TINY).stderr


def test_a_one_column_file_and_a_tsv_are_read_by_their_extension(tmp_path: Path) -> None:
    one = tmp_path / "one.csv"
    one.write_text("x\n1.5\n\n2.5\n")
    assert detect_delimiter(one) == ","
    assert read_table(one).column("x").to_pylist() == [1.5, 2.5]  # the blank line is skipped
    tsv = tmp_path / "one.tsv"
    tsv.write_text("x\n1\n")
    assert detect_delimiter(tsv, "tsv") == "\t"


@pytest.mark.parametrize("header", ["age,workclass,hours", "age, workclass, hours"])
def test_adult_like_files_are_read_without_the_spaces_and_placeholders_are_missing(
    header: str, tmp_path: Path
) -> None:
    # UCI adult's own files: ", " between fields and "?" for a missing value; " , " an empty field.
    work = ["?" if i % 7 == 0 else ["Private", "State-gov"][i % 2] for i in range(70)]
    hours = [" " if i % 9 == 0 else i * 3 % 11 for i in range(70)]
    rows = [f"{20 + i % 50}, {work[i]}, {hours[i]}" for i in range(70)]
    src = tmp_path / "adult.csv"
    src.write_text(header + "\n" + "\n".join(rows) + "\n40, Private, ?\n")
    table = read_table(src)
    assert table.column_names == ["age", "workclass", "hours"]
    assert table.column("workclass").null_count == 10
    assert set(table.column("workclass").drop_null().to_pylist()) == {"Private", "State-gov"}
    assert pa.types.is_integer(table.column("hours").type)
    assert table.column("hours").null_count == 9
    streamed = pa.Table.from_batches(list(iter_record_batches(src, batch_size=16)))
    assert streamed.equals(table)
    out = tmp_path / "out.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "imputed 19 cells" in result.stderr
    back = read_table(out)
    assert back.column_names == table.column_names and back.column("workclass").null_count == 0
    assert set(back.column("workclass").to_pylist()) <= {"Private", "State-gov"}
    assert back.column("hours").type == table.column("hours").type
    assert out.read_text().splitlines()[0] == '"age","workclass","hours"'


@pytest.mark.parametrize("token", ["?", "NA", "N/A", "null", "-", "", "#N/A", "#DIV/0!"])
def test_every_default_placeholder_is_missing(token: str, tmp_path: Path) -> None:
    assert token == "" or token in NA_VALUES or token in ERROR_VALUES
    src = tmp_path / "t.csv"
    src.write_text("x,c\n" + "".join(f"{i / 2},{'ab'[i % 2]}\n" for i in range(30)) + f"{token},{token}\n")
    table = read_table(src)
    assert table.column("x").type == "double" and table.column("x").null_count == 1
    assert table.column("c").null_count == 1
    if token in ERROR_VALUES:  # as Excel exports a formula that failed: missing whatever --na-values says
        assert read_table(src, options=ReadOptions(na_values=())).column("x").null_count == 1


def test_na_values_replaces_the_placeholders(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("x,sign\n" + "".join(f"{i},{'+-'[i % 2]}\n" for i in range(30)) + "missing,+\n")
    out = tmp_path / "o.parquet"
    # By default "-" is missing, and "missing" is a stray word in a numeric column.
    assert read_table(src, options=ReadOptions(na_values=("missing",))).column("sign").null_count == 0
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "t.csv", "'x'", "'missing'", "--na-values", "--categorical x")
    assert not out.exists()
    result = seqdiff("impute", str(src), "-o", str(out), "--na-values", "missing", *TINY)
    assert result.returncode == 0, result.stderr
    back = pq.read_table(out)
    assert back.column("sign").to_pylist().count("-") == 15  # "-" is a value here
    assert back.column("x").null_count == 0 and back.column("x").type == "int64"


def test_stray_words_in_a_numeric_column_are_named(tmp_path: Path) -> None:
    df = frame().astype({"hours": str})
    df.loc[[3, 9], "hours"] = "unknown"
    df.loc[5, "hours"] = "n.a."
    src = write(tmp_path / "t.csv", df, ",")
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "column 'hours'", "3 cells", "'unknown'", "'n.a.'", "--categorical hours")
    assert not out.exists()
    # The fixes the message gives: model it as categorical, or read the words as missing.
    assert seqdiff("impute", str(src), "-o", str(out), "--categorical", "hours", *TINY).returncode == 0
    result = seqdiff("impute", str(src), "-o", str(out), "--na-values", "unknown", "n.a.", *TINY)
    assert result.returncode == 0, result.stderr
    back = pq.read_table(out)
    assert back.column("hours").type == "double" and back.column("hours").null_count == 0
    # The sklearn API refuses the same column with the same message.
    with pytest.raises(SeqdiffError, match="column 'hours' holds numbers but for 3 cells"):
        MaskedDiffusionImputer(max_steps=2, device="cpu").fit(df)
    # A categorical column with many words, or numbers with few distinct values, is no such column.
    assert infer_schema(pd.DataFrame({"s": ["1", "2", "x"] * 30})).categorical == ["s"]


def test_a_header_repeated_inside_a_file_is_named_as_one(tmp_path: Path) -> None:
    """Two exports joined with their headers: the second header is named as a header, not as a word to
    read as missing."""
    src = write(tmp_path / "t.csv", frame(), ",")
    text = src.read_text()
    src.write_text(text + text)
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"), *TINY)
    assert_one_line_error(result, "column 'age' holds numbers but for 1 cell(s) of its own name", "joined")
    assert "--na-values" not in result.stderr


def test_a_word_below_the_first_block_of_a_stream_is_named(tmp_path: Path) -> None:
    """A stream fixes a column's type in Arrow's first block (1 MiB): a placeholder or a repeated
    header below it was "CSV conversion error to double: invalid value"; now named, with the fix."""
    rng = np.random.default_rng(0)
    lines = ["x,c"] + [f"{v:.4f},{'ab'[i % 2]}" for i, v in enumerate(rng.normal(size=150_000))]
    src = tmp_path / "long.csv"
    for word, said in [("n.d.", "then 'n.d.': to read it as missing, --na-values"), ("x", "its own name")]:
        lines[140_000] = f"{word},a"
        src.write_text("\n".join(lines) + "\n")
        with pytest.raises(
            SeqdiffError, match=f"long.csv: column 'x' holds numbers (in its first rows, |but ){said}"
        ):
            list(iter_record_batches(src))
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"), *TINY)
    assert_one_line_error(result, "the header repeated inside the file")


def test_values_beyond_a_detection_limit_are_named_not_read_as_text(tmp_path: Path) -> None:
    """A lab's column of numbers with five kinds of ``<0.5`` / ``>100`` in a tenth of its cells: named
    (it was read as text, each number a category); the suggested flags read them as missing."""
    df = frame()
    limits = ["<0.5", "<0.3", "<1", "<0.2", ">100"]
    df["hours"] = [limits[i // 10 % 5] if i % 10 == 0 else f"{h:.1f}" for i, h in enumerate(df["hours"])]
    src, out = write(tmp_path / "t.csv", df, ","), tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "column 'hours' holds numbers but for", "'<0.5'", "'>100'", "--categorical")
    flags = ["--na-values", "?", "-", "NA", "N/A", "n/a", "null", "NULL", "NaN", "nan", *sorted(limits)]
    assert " ".join(map(shlex.quote, flags)) in result.stderr  # the fix, ready to paste
    result = seqdiff("impute", str(src), "-o", str(out), *flags, *TINY)
    assert result.returncode == 0, result.stderr
    assert pq.read_table(out).column("hours").type == "double"
    # Words in more than a fifth of the cells, or more than ten kinds of them: text, as before.
    many = pd.DataFrame({"s": [f"{i}.5" if i % 3 else ["<1", "<2", "<3", "<4"][i % 4] for i in range(90)]})
    assert infer_schema(many).categorical == ["s"]


def test_identifier_columns_are_copied_and_reported(tmp_path: Path) -> None:
    df = frame()
    df.insert(0, "id", [f"P{i:04d}" for i in range(len(df))])
    df.insert(1, "row", np.arange(len(df)) * 7)
    df.loc[::4, "hours"] = np.nan
    df.loc[2, "id"] = None
    src = write(tmp_path / "t.csv", df, ",")
    out = tmp_path / "o.parquet"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "'id', 'row'" in result.stderr and "identifiers" in result.stderr
    back = pq.read_table(out).to_pandas()
    ids = pq.read_table(out).column("id").to_pylist()
    assert ids[:2] == ["P0000", "P0001"] and ids[2] is None  # not another row's identifier
    assert ids[3:] == df["id"].tolist()[3:]
    assert back["row"].tolist() == df["row"].tolist()
    assert back["hours"].notna().all()
    # An override models one.
    result = seqdiff("impute", str(src), "-o", str(out), "--numeric", "row", *TINY)
    assert result.returncode == 0 and "'id':" in result.stderr and "'row'" not in result.stderr
    # The sklearn API: the same schema, the column returned untouched.
    imputer = MaskedDiffusionImputer(max_steps=3, early_stopping=False, device="cpu").fit(df)
    assert imputer.schema_.identifiers == ["id", "row"]
    filled = imputer.transform(df)
    assert filled["id"].equals(df["id"]) and filled["hours"].notna().all()
    small = df.iloc[:20]  # too few rows to call a column an identifier
    assert infer_schema(small).identifiers == []


def test_sample_table_reads_a_fix_file_like_impute(tmp_path: Path) -> None:
    src = write(tmp_path / "t.csv", frame(), ",")
    model = tmp_path / "model"
    fitted = seqdiff("impute", str(src), "-o", str(tmp_path / "o.parquet"), "--save-model", str(model), *TINY)
    assert fitted.returncode == 0, fitted.stderr
    partial = tmp_path / "partial.csv"
    partial.write_text("age;job;hours\n30;?;NA\n?;nurse;41.5\n")
    out = tmp_path / "rows.csv"
    run = seqdiff("sample", "table", "--checkpoint", str(model), "--fix-file", str(partial), "-o", str(out))
    assert run.returncode == 0, run.stderr
    rows = read_table(out).to_pylist()
    assert len(rows) == 2 and rows[0]["age"] == 30 and rows[1]["job"] == "nurse" and rows[1]["hours"] == 41.5
    assert all(v is not None for row in rows for v in row.values())
    # With "?" not missing, the age column is strings, which the model refuses.
    bad = seqdiff(
        "sample", "table", "--checkpoint", str(model), "--fix-file", str(partial), "--na-values", "-",
        "-o", str(tmp_path / "bad.csv"),
    )  # fmt: skip
    assert_one_line_error(bad, "'age'")
    assert not (tmp_path / "bad.csv").exists()


def test_a_column_of_ten_thousand_categories_fits_and_imputes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = 20_000
    df = pd.DataFrame(
        {"code": [f"c{i}" for i in rng.permutation(np.arange(rows) % 10_000)], "x": rng.normal(size=rows)}
    )
    df.loc[rng.random(rows) < 0.05, "code"] = None
    df.loc[rng.random(rows) < 0.2, "x"] = np.nan
    src, out = tmp_path / "codes.parquet", tmp_path / "o.parquet"
    df.to_parquet(src)
    result = seqdiff("impute", str(src), "-o", str(out), "--max-steps", "3")
    assert result.returncode == 0, result.stderr
    back = pq.read_table(out).to_pandas()
    blank = df.isna().all(axis=1)  # both cells missing: left blank
    assert back[~blank].notna().all().all() and back[blank].isna().all().all()
    assert f"seqdiff: {blank.sum()} blank row(s)" in result.stderr
    observed = df["code"].notna()
    assert back["code"][observed].equals(df["code"][observed])
    assert set(back["code"].dropna()) <= set(df["code"].dropna())


def test_a_stray_word_among_spaced_numbers_is_named(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("x, c\n" + "".join(f"{i}, {'ab'[i % 2]}\n" for i in range(30)) + "unknown, a\n")
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert_one_line_error(result, "t.csv", "column 'x' holds numbers but for 'unknown'", "--na-values")
    assert not out.exists()
    result = seqdiff("impute", str(src), "-o", str(out), "--na-values", "unknown", *TINY)
    assert result.returncode == 0, result.stderr
    assert read_table(out).column("x").to_pylist()[:3] == [0, 1, 2]


def adult_data(rows: int = 70) -> str:
    """Lines as UCI's adult.data writes them: no header, ", " between fields, "?" for missing."""
    return "".join(
        f"{20 + i % 50}, {'?' if i % 7 == 0 else ['Private', 'State-gov'][i % 2]}, {i * 3 % 11 + 30}\n"
        for i in range(rows)
    )


def test_a_file_without_a_header_is_read_with_no_header_and_written_without(tmp_path: Path) -> None:
    src = tmp_path / "adult.data.csv"
    src.write_text(adult_data())
    # Read with a header, the first line names the columns, and impute says so.
    out = tmp_path / "o.csv"
    result = seqdiff("impute", str(src), "-o", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert "the first line names columns 20, 30, numbers over columns of numbers" in result.stderr
    assert "--no-header" in result.stderr
    table = read_table(src, options=ReadOptions(header=False))
    assert table.column_names == ["1", "2", "3"] and table.num_rows == 70
    assert table.column("1").to_pylist()[:2] == [20, 21] and table.column("2").null_count == 10
    result = seqdiff("impute", str(src), "-o", str(out), "--no-header", *TINY)
    assert result.returncode == 0, result.stderr
    assert "imputed 10 cells in 70 rows" in result.stderr and "first line" not in result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 70 and lines[1] == '21,"State-gov",33'
    back = read_table(out, options=ReadOptions(header=False))
    assert back.column("2").null_count == 0 and back.column("1").equals(table.column("1"))
    parquet = tmp_path / "o.parquet"
    assert seqdiff("impute", str(src), "-o", str(parquet), "--no-header", *TINY).returncode == 0
    assert pq.read_table(parquet).column_names == ["1", "2", "3"]
