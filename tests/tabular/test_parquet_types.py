"""Parquet's types from databases and data pipelines: decimal columns (``decimal128(10, 2)`` prices) are
modelled as numbers and come back in their own type, in the point estimate, in draws and after a save;
unsigned keys beyond a 64-bit integer and nested columns are copied unchanged, and reported."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.schema import infer_schema
from tests.test_bad_input import assert_one_line_error, seqdiff

PRICE = pa.decimal128(10, 2)


def orders(rows: int = 300) -> pa.Table:
    """Quantities, unit prices and their total as a decimal, a fifth of the totals missing."""
    rng = np.random.default_rng(0)
    quantity = rng.integers(1, 20, rows).astype(float)
    unit = rng.choice([2.5, 4.75, 10.0], rows)
    total = [
        None if hole else Decimal(f"{q * u:.2f}")
        for q, u, hole in zip(quantity, unit, rng.random(rows) < 0.2, strict=True)
    ]
    return pa.table({"quantity": quantity, "unit": unit, "total": pa.array(total, PRICE)})


def test_a_decimal_column_is_numeric_and_decodes_to_its_type() -> None:
    table = orders()
    assert infer_schema(table).kind_of("total") == "numeric"
    encoder = TableEncoder.from_dict(TableEncoder.fit(table).to_dict())  # as a saved model reads it
    tokens = encoder.encode(table)
    decoded = encoder.decode_sample(tokens[np.array(pc.is_valid(table.column("total")))])
    assert decoded.schema.field("total").type == PRICE
    low, high = pc.min_max(table.column("total")).values()
    assert low.as_py() <= min(decoded.column("total").to_pylist()) <= max(decoded.column("total").to_pylist())
    assert max(decoded.column("total").to_pylist()) <= high.as_py()


def test_the_cli_imputes_a_decimal_column_in_its_own_type(tmp_path: Path) -> None:
    src, out, drawn = tmp_path / "orders.parquet", tmp_path / "o.parquet", tmp_path / "d.parquet"
    table = orders()
    pq.write_table(table, src)
    for path, extra in [(out, []), (drawn, ["--samples", "3"])]:
        result = seqdiff("impute", str(src), "-o", str(path), "--max-steps", "200", *extra)
        assert result.returncode == 0, result.stderr
        assert f"imputed {table.column('total').null_count} cells" in result.stderr
        got = pq.read_table(path).column("total")
        assert got.type == PRICE and got.null_count == 0
        observed = pc.is_valid(table.column("total"))
        assert got.filter(observed).equals(table.column("total").filter(observed))
        low, high = pc.min_max(table.column("total")).values()
        assert pc.all(pc.and_(pc.greater_equal(got, low), pc.less_equal(got, high))).as_py()
    # The model learned the total from quantity x unit price: closer than the column's spread.
    expected = table.column("quantity").to_numpy() * table.column("unit").to_numpy()
    hidden = ~np.array(pc.is_valid(table.column("total")))
    imputed = np.array([float(v) for v in pq.read_table(out).column("total").to_pylist()])
    error = np.abs(imputed - expected)[hidden].mean()
    assert error < 0.5 * np.abs(expected - np.median(expected)).mean()


def test_a_decimal_column_is_written_to_a_workbook_as_numbers(tmp_path: Path) -> None:
    src, out = tmp_path / "orders.parquet", tmp_path / "o.xlsx"
    pq.write_table(orders(), src)
    result = seqdiff("impute", str(src), "-o", str(out), "--max-steps", "5", "--no-early-stopping")
    assert result.returncode == 0, result.stderr
    sheet = openpyxl.load_workbook(out).active
    totals = [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert len(totals) == 300 and all(isinstance(v, int | float) for v in totals)


def test_keys_beyond_a_64_bit_integer_are_copied_and_nested_columns_kept_out_of_csv(tmp_path: Path) -> None:
    """Unsigned 64-bit hashes (many distinct: copied; few: categories; never numbers) and a list column:
    reported as copied unchanged; a CSV output of the list column is one line before any fit."""
    rng = np.random.default_rng(0)
    hashes = rng.integers(2**63, 2**64 - 1, 40, dtype=np.uint64)
    table = orders(40).append_column("hash", pa.array(hashes)).append_column("tags", pa.array([["a"]] * 40))
    table = table.append_column("shard", pa.array([2**63 + i % 2 for i in range(40)], pa.uint64()))
    schema = infer_schema(table)
    assert [schema.kind_of(n) for n in ("hash", "tags", "shard")] == [
        "passthrough",
        "passthrough",
        "categorical",
    ]
    with pytest.raises(SeqdiffError, match="column 'hash' holds whole numbers beyond a 64-bit integer"):
        infer_schema(table, numeric=["hash"])
    src, out = tmp_path / "keys.parquet", tmp_path / "o.parquet"
    pq.write_table(table, src)
    result = seqdiff("impute", str(src), "-o", str(out), "--max-steps", "5", "--no-early-stopping")
    assert result.returncode == 0, result.stderr
    said = f"seqdiff: {src}: column(s) 'hash' (uint64), 'tags' (list<element: string>): not modelled, copied"
    assert f"{said} unchanged" in result.stderr.splitlines()
    back = pq.read_table(out)
    assert back.column("hash").equals(table.column("hash")) and back.column("tags").equals(
        table.column("tags")
    )
    result = seqdiff("impute", str(src), "-o", str(tmp_path / "o.csv"))
    assert_one_line_error(result, "column(s) 'tags' (list<element: string>) hold nested values, which CSV")
    assert "early stopping" not in result.stderr and not (tmp_path / "o.csv").exists()
