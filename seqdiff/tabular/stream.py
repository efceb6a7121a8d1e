"""Impute a Parquet, CSV or Excel file of any size in record batches, and sample rows of a file for fitting.

Memory holds one batch at a time (plus the sample being built in `read_sample`), whatever the file's
size. The noise that drives the sampler is keyed by global row numbers, so the result equals an
in-memory `MaskedDiffusionImputer.transform` of the whole table at the same seed.
(`seqdiff.tabular.task.impute_table` loads or fits the imputer and runs `impute_file`, with an example.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.files import file_format, iter_record_batches, parquet_rows, parquet_schema, read_table
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.read_options import ReadOptions
from seqdiff.tabular.writing import COMPRESSIONS, TableWriter, check_writable, output_dialect, output_format


@dataclass
class StreamReport:
    """What `impute_file` did: rows read, cells filled, the output path, those of the draws kept, and the
    blank rows left as they were (`blank_rows`)."""

    rows: int
    imputed_cells: int
    output: str
    draws: list[str] = field(default_factory=list)
    blank_rows: int = 0


class Filled(NamedTuple):
    """What `impute_batch` filled in a batch: its missing modelled cells; and its blank rows, left as
    they were."""

    cells: int
    blank_rows: int


def check_output(in_path: str | Path, out_path: str | Path, in_place: bool = False, n_draws: int = 0) -> None:
    """Refuse an output that would overwrite the input (unless `in_place`; a draw's, `draw_paths`, never),
    whose name is not a format `seqdiff.tabular.writing.output_format` writes, or that names a CSV file
    for a Parquet input with nested columns (`seqdiff.tabular.writing.check_writable`).

    Example:
        >>> check_output("a.parquet", "a.parquet")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: a.parquet: the output would overwrite the input (use in_place / --in-place)
    """
    fmt, source, target = output_format(out_path), Path(in_path).resolve(), Path(out_path).resolve()
    if source.is_dir() and (source == target or source in target.parents):
        raise SeqdiffError(
            f"{out_path}: the output would go into the input dataset's folder (and be read with it next "
            "time); name a file outside it"
        )
    if source == target:
        if fmt == "excel":  # the output is one sheet of values
            raise SeqdiffError(
                f"{out_path}: the output would replace the workbook with one sheet, without its other "
                "sheets and formatting; name the output otherwise"
            )
        if not in_place:
            raise SeqdiffError(
                f"{out_path}: the output would overwrite the input (use in_place / --in-place)"
            )
    for path in draw_paths(out_path, n_draws):
        if path.resolve() == source:
            raise SeqdiffError(f"{path}: a draw would overwrite the input; name the output otherwise")
    if fmt == "csv" and source.exists() and file_format(source) == "parquet":
        try:
            schema = parquet_schema(source)
        except (pa.ArrowException, OSError):
            return  # reading the input names what is wrong with it
        check_writable(schema, out_path)


def _nulls(column: pa.ChunkedArray) -> np.ndarray:
    """[rows]: the cells of `column` that are missing (null, or NaN)."""
    return pc.is_null(column, nan_is_null=True).to_numpy(zero_copy_only=False)


def blank_rows(table: pa.Table) -> np.ndarray:
    """[rows]: the rows with no filled cell in any column (null or NaN), as a spreadsheet's empty rows
    (``,,,``) are read: nothing to impute from, so imputing them would invent whole records."""
    blank = np.ones(table.num_rows, bool) if table.num_columns else np.zeros(table.num_rows, bool)
    for column in table.columns:
        blank &= _nulls(column)
    return blank


def _keep_blank(imputed: pa.Table, original: pa.Table, blank: np.ndarray, columns: list[str]) -> pa.Table:
    """`imputed` with the `blank` rows of `columns` as they were in `original`."""
    mask = pa.array(blank)
    for name in columns:
        i = imputed.schema.get_field_index(name)
        column, before = imputed.column(i), original.column(name)
        if before.type != column.type:  # a column null in all of this batch, imputed in its training type
            before = pa.nulls(len(before), column.type)
        imputed = imputed.set_column(i, imputed.schema.field(i), pc.if_else(mask, before, column))
    return imputed


def impute_batch(
    imputer: MaskedDiffusionImputer,
    table: pa.Table,
    first_row: int,
    n_samples: int,
    source: str,
    keep_draws: bool = False,
) -> tuple[list[pa.Table], Filled]:
    """Impute one batch holding rows ``first_row ..`` of a larger table: (the imputed batch, followed by
    each of the `n_samples` draws' when `keep_draws`; what it filled). Its `blank_rows` stay as they
    were. The one batch function of both engines (`impute_file` here and the Ray engine in
    `seqdiff.ray_engine`): the noise is keyed by global row number, so a batch imputed anywhere, with
    its `first_row`, gets what it gets in the whole file.
    """
    columns = [c for c in imputer.encoder_.columns if c in table.column_names]
    blank = blank_rows(table)
    cells = sum(int((_nulls(table.column(c)) & ~blank).sum()) for c in columns)
    filled = Filled(cells, int(blank.sum()))
    if keep_draws:
        tables = imputer.impute_arrow_draws(table, n_samples, first_row=first_row, source=source)
    else:
        tables = [imputer.impute_arrow(table, first_row=first_row, n_samples=n_samples, source=source)]
    if filled.blank_rows:
        tables = [_keep_blank(imputed, table, blank, columns) for imputed in tables]
    return tables, filled


def draw_paths(out_path: str | Path, n_draws: int) -> list[Path]:
    """Where the draws of ``--keep-draws`` go: `out_path` with ``.draw1`` .. ``.drawK`` before its
    extension.

    Example:
        >>> [p.name for p in draw_paths("runs/filled.csv.gz", 2)]
        ['filled.draw1.csv.gz', 'filled.draw2.csv.gz']
    """
    out = Path(out_path)
    suffixes = out.suffixes[-2:] if out.suffix.lower() in COMPRESSIONS else out.suffixes[-1:]
    extension = "".join(suffixes)
    stem = out.name.removesuffix(extension)
    return [out.with_name(f"{stem}.draw{k}{extension}") for k in range(1, n_draws + 1)]


def write_imputed(
    batches: Iterable[tuple[list[pa.Table], Filled]],
    in_path: str | Path,
    out_path: str | Path,
    total: int | None = None,
    progress: bool | None = False,
    read_options: ReadOptions | None = None,
    n_draws: int = 0,
) -> StreamReport:
    """Write imputed batches (from `impute_batch`, in row order) into one Parquet, CSV or Excel file (as
    `out_path` is named; a CSV file in the CSV input's dialect, `output_dialect`), and each batch's
    `n_draws` draws into `draw_paths`; all atomically.

    A row group per batch; no batches (an empty input) writes the input as it is (a CSV input read with
    `read_options`). `total` sizes the tqdm bar shown when `progress` (None: only when stderr is a
    terminal).
    """
    rows = cells = blank = parts = 0
    disable = None if progress is None else not progress
    dialect = output_dialect(out_path, in_path, read_options)
    paths = [Path(out_path), *draw_paths(out_path, n_draws)]
    with ExitStack() as stack:
        writers = [stack.enter_context(TableWriter(path, dialect)) for path in paths]
        bar = stack.enter_context(tqdm(total=total, desc="imputing", unit="row", disable=disable))
        for tables, filled in batches:
            for writer, table in zip(writers, tables, strict=True):
                writer.write(table)
            rows, parts = rows + tables[0].num_rows, parts + 1
            cells, blank = cells + filled.cells, blank + filled.blank_rows
            bar.update(tables[0].num_rows)
        if parts == 0:  # no rows: the outputs are the (empty) input
            for writer in writers:
                writer.write(read_table(in_path, options=read_options))
    return StreamReport(rows, cells, str(out_path), [str(p) for p in paths[1:]], blank)


def impute_file(
    in_path: str | Path,
    out_path: str | Path,
    imputer: MaskedDiffusionImputer,
    batch_rows: int = 65_536,
    n_samples: int = 1,
    progress: bool | None = False,
    in_place: bool = False,
    read_options: ReadOptions | None = None,
    keep_draws: bool = False,
) -> StreamReport:
    """Impute `in_path` (Parquet, or CSV or Excel read with `read_options`) batch by batch into the
    Parquet, CSV or Excel file `out_path` (`write_imputed`).

    The output has the input's columns, types and rows, with the missing cells of the modelled columns
    filled by the imputer's point estimate (with ``point="draws"``, from `n_samples` draws per cell),
    but for blank rows (`blank_rows`), which stay as they were; it appears atomically when done. With
    `keep_draws` (and ``point="draws"``), each draw is written too, as a completed table (`draw_paths`).
    `out_path` equal to `in_path` is refused unless `in_place` (which still writes a temporary file
    first). `progress`: a tqdm bar on stderr (None: only when stderr is a terminal).
    """
    n_draws = n_samples if keep_draws else 0
    check_output(in_path, out_path, in_place, n_draws)
    if n_samples < 1:
        raise SeqdiffError(f"n_samples must be at least 1, got {n_samples}")
    source = str(in_path)
    batches = iter_record_batches(in_path, batch_rows, options=read_options)
    total = parquet_rows(in_path) if file_format(Path(in_path)) == "parquet" else None

    def imputed() -> Iterator[tuple[list[pa.Table], Filled]]:
        first_row = 0
        for batch in batches:
            table = pa.Table.from_batches([batch])
            yield impute_batch(imputer, table, first_row, n_samples, source, keep_draws)
            first_row += batch.num_rows

    return write_imputed(imputed(), in_path, out_path, total, progress, read_options, n_draws)


def read_sample(
    path: str | Path,
    max_rows: int,
    seed: int = 0,
    batch_rows: int = 65_536,
    read_options: ReadOptions | None = None,
) -> tuple[pa.Table, int]:
    """A uniform random sample of at most `max_rows` rows of a Parquet, CSV or Excel file (read with
    `read_options`), in file order, and the file's row count. Read in batches: memory holds
    `max_rows + batch_rows` rows at most.

    Example:
        >>> import pyarrow.parquet as pq
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "big.parquet"
        >>> pq.write_table(pa.table({"x": list(range(1000))}), path)
        >>> table, total = read_sample(path, max_rows=10, batch_rows=100)
        >>> table.num_rows, total, table["x"].to_pylist() == sorted(table["x"].to_pylist())
        (10, 1000, True)
    """
    rng = np.random.default_rng(seed)
    kept: pa.Table | None = None
    keys = np.empty(0)
    row_numbers = np.empty(0, np.int64)
    total = 0
    for batch in iter_record_batches(path, batch_rows, options=read_options):
        table = pa.Table.from_batches([batch])
        kept = table if kept is None else pa.concat_tables([kept, table])
        keys = np.concatenate([keys, rng.random(table.num_rows)])
        row_numbers = np.concatenate([row_numbers, np.arange(total, total + table.num_rows)])
        total += table.num_rows
        if kept.num_rows > max_rows:
            # The rows with the smallest random keys so far are a uniform sample of the rows read.
            best = np.argpartition(keys, max_rows)[:max_rows]
            kept, keys, row_numbers = kept.take(best), keys[best], row_numbers[best]
    if kept is None:
        return read_table(path, options=read_options), 0
    order = np.argsort(row_numbers, kind="stable")
    return kept.take(order).combine_chunks(), total
