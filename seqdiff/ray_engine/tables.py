"""``seqdiff impute --engine ray``: a Parquet file imputed by a pool of actors, in row order."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqdiff.errors import SeqdiffError
from seqdiff.ray_engine.pool import (
    DEFAULT_RAY_TIMEOUT,
    Actor,
    check_pool,
    folder_bytes,
    ray_cluster,
    run_in_order,
    unpacked,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seqdiff.tabular.imputer import MaskedDiffusionImputer
    from seqdiff.tabular.stream import StreamReport


def check_ray_input(in_path: str | Path) -> None:
    """A one-line SeqdiffError unless `in_path` is a Parquet file, which the Ray engine reads (its row
    groups are what the actors share out): before a fit, not after it.

    Example:
        >>> check_ray_input("patients.csv")
        Traceback (most recent call last):
        ...
        seqdiff.errors.SeqdiffError: patients.csv: --engine ray reads Parquet; convert the file or use --engine local
    """
    from seqdiff.tabular.files import file_format

    if Path(in_path).is_dir():
        raise SeqdiffError(
            f"{in_path}: --engine ray reads one Parquet file, not a dataset's folder; use --engine local"
        )
    if file_format(Path(in_path), exists=False) != "parquet":
        raise SeqdiffError(f"{in_path}: --engine ray reads Parquet; convert the file or use --engine local")


def read_rows(parquet: pq.ParquetFile, first_row: int, rows: int) -> pa.Table:
    """Rows ``first_row .. first_row + rows - 1`` of a Parquet file, decoding only the row groups that
    hold them (and, inside the first, the rows before ``first_row``).

    Example (row groups of 4 rows; rows 5-10 are in the second, third and fourth):
        >>> import tempfile
        >>> import pyarrow as pa
        >>> import pyarrow.parquet as pq
        >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> pq.write_table(pa.table({"x": list(range(20))}), path, row_group_size=4)
        >>> read_rows(pq.ParquetFile(path), 5, 6)["x"].to_pylist()
        [5, 6, 7, 8, 9, 10]
    """
    import numpy as np
    import pyarrow as pa

    meta = parquet.metadata
    starts = np.cumsum([0] + [meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    end = first_row + rows
    groups = [g for g in range(meta.num_row_groups) if starts[g] < end and starts[g + 1] > first_row]
    pieces, position = [], int(starts[groups[0]])
    for batch in parquet.iter_batches(batch_size=rows, row_groups=groups):
        lo, hi = max(first_row - position, 0), min(end - position, batch.num_rows)
        if hi > lo:
            pieces.append(batch.slice(lo, hi - lo))
        position += batch.num_rows
        if position >= end:
            break
    return pa.Table.from_batches(pieces)


class _ImputeActor(Actor):
    """The table model, loaded once per actor, imputing units of rows read from the Parquet file."""

    empty = {"ipc": b"", "parts": 0, "cells": 0}

    def __init__(
        self,
        model: dict[str, bytes],
        device: str,
        path: str,
        n_samples: int,
        keep_draws: bool,
        threads: int | None,
    ):
        import pyarrow.parquet as pq

        super().__init__(threads)
        self.model, self.device, self.path, self.n_samples = model, device, path, n_samples
        self.keep_draws = keep_draws
        self.parquet = pq.ParquetFile(path)
        self.imputer: MaskedDiffusionImputer | None = None

    def run(self, unit: dict[str, Any]) -> dict[str, Any]:
        import pyarrow as pa

        from seqdiff.tabular.imputer import MaskedDiffusionImputer
        from seqdiff.tabular.stream import impute_batch

        if self.imputer is None:
            with unpacked(self.model) as folder:
                self.imputer = MaskedDiffusionImputer.load(folder, device=self.device)
            self.imputer.set_params(progress=False)
        table = read_rows(self.parquet, unit["first_row"], unit["rows"])
        tables, filled = impute_batch(
            self.imputer, table, unit["first_row"], self.n_samples, self.path, self.keep_draws
        )
        # One stream: the imputed rows, then each draw's (when kept), all of one schema.
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, tables[0].schema) as writer:
            for imputed in tables:
                writer.write_table(imputed)
        return {"ipc": sink.getvalue().to_pybytes(), "parts": len(tables), **filled._asdict()}


def impute_file_ray(
    in_path: str | Path,
    out_path: str | Path,
    imputer: MaskedDiffusionImputer,
    batch_rows: int = 65_536,
    n_samples: int = 1,
    progress: bool | None = False,
    in_place: bool = False,
    *,
    address: str | None = None,
    actors: int = 2,
    timeout: float = DEFAULT_RAY_TIMEOUT,
    threads: int | None = None,
    keep_draws: bool = False,
) -> StreamReport:
    """`seqdiff.tabular.stream.impute_file` on a Ray cluster: the same output (and draws, with
    `keep_draws`) at the same seed.

    The Parquet file ``in_path`` is cut into units of ``batch_rows`` rows; a pool of ``actors`` actors
    (each on ``imputer.device``: a GPU each for ``"cuda"``) reads and imputes them, and this process
    writes the results in row order to ``out_path``, atomically. Every node must read ``in_path`` at
    the same path (a shared file system). Ray joins ``address`` (None: a new local cluster). Each actor
    computes with ``threads`` threads (None: 1); a run that makes no progress for ``timeout`` seconds
    (0: no limit) ends with a SeqdiffError, writing nothing.

    For example, ``impute_file_ray("holed.parquet", "filled.parquet", imputer, actors=2)`` writes
    ``filled.parquet`` and returns its ``StreamReport`` (rows, imputed_cells, output).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seqdiff.tabular.stream import Filled, check_output, write_imputed

    n_draws = n_samples if keep_draws else 0
    check_output(in_path, out_path, in_place, n_draws)
    if n_samples < 1 or batch_rows < 1:
        raise SeqdiffError("--samples and --batch-rows must be at least 1")
    check_ray_input(in_path)
    resources = check_pool(actors, imputer.device, timeout, threads)
    try:
        total = pq.ParquetFile(in_path).metadata.num_rows
    except (pa.ArrowException, OSError) as err:
        raise SeqdiffError(f"{in_path}: not a readable Parquet file ({err})") from None
    units = [{"first_row": s, "rows": min(batch_rows, total - s)} for s in range(0, total, batch_rows)]
    with tempfile.TemporaryDirectory(prefix="seqdiff-imputer-") as folder:
        imputer.save(folder)
        model = folder_bytes(folder)
    path = str(Path(in_path).resolve())  # absolute: the actors' working directory is not this one
    with ray_cluster(address) as ray:

        def results() -> Iterator[tuple[list[pa.Table], Filled]]:
            if not units:
                return
            ds = ray.data.from_items(units, override_num_blocks=len(units))
            kwargs = {"model": model, "device": imputer.device, "path": path, "n_samples": n_samples}
            spans = [f"rows {u['first_row'] + 1}-{u['first_row'] + u['rows']}" for u in units]
            pool = (_ImputeActor, min(actors, len(units)), resources, timeout, spans)
            for row in run_in_order(ds, *pool, **kwargs, keep_draws=keep_draws, threads=threads):
                combined = pa.ipc.open_stream(row["ipc"]).read_all()
                rows = combined.num_rows // row["parts"]
                filled = Filled(row["cells"], row["blank_rows"])
                yield [combined.slice(i * rows, rows) for i in range(row["parts"])], filled

        return write_imputed(results(), in_path, out_path, total, progress, n_draws=n_draws)
