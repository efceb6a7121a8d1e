"""The table imputation task, as ``seqdiff impute`` and the app run it: load or fit a model, choose the point
estimate, impute a file.

Example:
    >>> import tempfile
    >>> import pandas as pd
    >>> folder = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"a": [1.0, None, 3.0] * 10, "c": ["x", "y", None] * 10}).to_parquet(folder / "in.parquet")
    >>> tiny = {"max_steps": 5, "dim": 16, "n_layers": 1, "n_heads": 2}
    >>> report, imputer = impute_table(folder / "in.parquet", folder / "out.parquet", fit=tiny, device="cpu")
    >>> report.rows, report.imputed_cells, imputer.point
    (30, 20, 'predictive')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from seqdiff.core.bundle import check_model_folder
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.files import (
    digit_code_columns,
    file_format,
    iter_record_batches,
    numbers_in_header,
    preamble_lines,
)
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.missing_codes import missing_codes
from seqdiff.tabular.read_options import ReadOptions, na_values_flag
from seqdiff.tabular.stream import StreamReport, check_output, impute_file, read_sample


class FileEngine(Protocol):
    """Imputes a file with an imputer: `impute_file`, or the Ray engine's ``impute_file_ray``."""

    def __call__(
        self,
        in_path: str | Path,
        out_path: str | Path,
        imputer: MaskedDiffusionImputer,
        *,
        batch_rows: int,
        n_samples: int,
        progress: bool | None,
        in_place: bool,
        read_options: ReadOptions | None,
        keep_draws: bool,
    ) -> StreamReport: ...


def _quiet(message: str) -> None:
    """The default `say`: the task's messages go nowhere."""


def _read_as_missing(path: str | Path, token: str, read_options: ReadOptions | None) -> str:
    """How to read `token` as missing in the file at `path`: the ``--na-values`` in use and it (they
    replace the default list), or, in a Parquet file, nulls."""
    if file_format(Path(path)) == "parquet":
        return "If so, store those cells as nulls."
    return "To read it as missing: " + na_values_flag([*(read_options or ReadOptions()).na_values, token])


def _say_codes(
    table: pa.Table, path: str | Path, read_options: ReadOptions | None, say: Callable[[str], None]
) -> None:
    """One line per number of `table` (read from `path`) that looks like a code for missing."""
    for code in missing_codes(table):
        say(f"{code.describe()}: a code for missing? {_read_as_missing(path, code.token, read_options)}")


def fit_on_file(
    path: str | Path,
    fit: Mapping[str, Any],
    *,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    device: str = "auto",
    seed: int = 0,
    batch_rows: int = 65_536,
    progress: bool | None = None,
    on_step: Callable[[int, int], None] | None = None,
    say: Callable[[str], None] = _quiet,
    read_options: ReadOptions | None = None,
) -> MaskedDiffusionImputer:
    """An imputer with the `fit` settings (`seqdiff.tabular.settings.FitSettings`), fitted on the file at
    `path` (a random sample of ``max_fit_rows`` rows of a larger one, read in batches of `batch_rows`,
    a CSV file with `read_options`); `progress`: its tqdm bars (None: when stderr is a terminal); `say`
    gets one line on the sample, one on identifier columns and one on early stopping, one on the lines
    above the header (``#`` notes, a title), one when the header's names look like data
    (`numbers_in_header`), one on columns of whole numbers that are codes, read as text
    (`digit_code_columns`), and one per number that looks like a code for missing (`missing_codes`)."""
    imputer = MaskedDiffusionImputer(
        categorical=categorical, numeric=numeric, device=device, seed=seed, progress=progress, **fit
    )
    numbers = numbers_in_header(path, read_options)
    if numbers:
        shown = ", ".join(numbers[:3]) + (", ..." if len(numbers) > 3 else "")
        say(
            f"the first line names columns {shown}, numbers over columns of numbers; "
            "if it is data: --no-header"
        )
    table, total = read_sample(
        path, imputer.max_fit_rows, seed=seed, batch_rows=batch_rows, read_options=read_options
    )
    if table.num_rows < total:
        say(f"fitting on a random sample of {table.num_rows:,} of {total:,} rows")
    above = preamble_lines(path, read_options)
    if above:
        say(
            f"{above} line(s) above the header (# notes or a title): skipped, kept above a CSV output's header"
        )
    codes = digit_code_columns(path, read_options)
    if codes:
        say(
            f"column(s) {', '.join(map(repr, codes))}: whole numbers that are codes (leading zeros as in "
            "01001, or too many digits for a number): read as text, to keep them as written"
        )
    _say_codes(table, path, read_options, say)
    imputer.fit(table, source=str(path), on_step=on_step)
    if imputer.schema_.identifiers:
        names = ", ".join(map(repr, imputer.schema_.identifiers))
        say(
            f"column(s) {names}: a distinct value in every filled row, identifiers: copied unchanged, not imputed "
            "(to model one: --categorical COL, or --numeric COL)"
        )
    if "best_step" in imputer.training_:
        record = imputer.training_
        extra = record["steps"] - record["schedule_steps"]
        past = f" ({extra:,} past --max-steps: the held-out cells still improved)" if extra > 0 else ""
        say(
            f"early stopping: {record['steps']:,} steps{past}, best held-out NLL "
            f"{record['validation_nll_per_cell']:.3f} nats per cell at step {record['best_step']:,} (kept)"
        )
    return imputer


def impute_table(
    in_path: str | Path,
    out_path: str | Path,
    *,
    imputer: MaskedDiffusionImputer | None = None,
    checkpoint: str | Path | None = None,
    fit: Mapping[str, Any] | None = None,
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    save_model: str | Path | None = None,
    samples: int | None = None,
    keep_draws: bool = False,
    sampling_steps: int | None = None,
    numeric_point: str | None = None,
    seed: int = 0,
    device: str = "auto",
    batch_rows: int = 65_536,
    in_place: bool = False,
    progress: bool | None = None,
    engine: FileEngine = impute_file,
    say: Callable[[str], None] = _quiet,
    read_options: ReadOptions | None = None,
) -> tuple[StreamReport, MaskedDiffusionImputer]:
    """Fill the missing cells of the Parquet, CSV or Excel file `in_path` into the Parquet, CSV or Excel
    file `out_path`.

    The model: `imputer` (already fitted), or the one saved in `checkpoint`, or else one fitted on the
    file with the `fit` settings and the `categorical` / `numeric` overrides (`fit_on_file`), then saved
    to `save_model` when given. The point estimate: with `samples` K, the median or mean (numeric) or
    vote (categorical) of K draws per cell, each with `sampling_steps` sampler steps per row (None: one
    per cell to fill), and with `keep_draws` each draw as a completed table too (`draw_paths`: the K
    imputations that multiple imputation analyses), the draws keyed by `seed` (which also seeds a fit);
    without, the predictive point estimate; `numeric_point`
    (median or mean) overrides the model's. `engine` imputes the file (`impute_file`: here, batch by
    batch). `progress`: the tqdm bars of fitting and imputing (None: when stderr is a terminal). `say`
    gets the lines a user should see. A CSV input is read with `read_options` (default `ReadOptions()`:
    the delimiter detected, the usual placeholders missing). Returns (the engine's report, the imputer).
    """
    check_output(in_path, out_path, in_place, (samples or 0) if keep_draws else 0)
    if save_model:
        check_model_folder(save_model)
    if (samples is not None and samples < 1) or batch_rows < 1:
        raise SeqdiffError("--samples and --batch-rows must be at least 1")
    if keep_draws and samples is None:
        raise SeqdiffError("--keep-draws: only with --samples K (the K draws it writes)")
    if sampling_steps is not None and samples is None:
        raise SeqdiffError("--sampling-steps: only with --samples (without, one network pass per row)")
    if sampling_steps is not None and sampling_steps < 1:
        raise SeqdiffError(f"--sampling-steps must be at least 1, got {sampling_steps}")
    if imputer is None and checkpoint is not None:
        imputer = MaskedDiffusionImputer.load(checkpoint, device=device)
        imputer.set_params(progress=progress)
        first = next(iter_record_batches(in_path, batch_rows, options=read_options), None)
        if first is not None:  # the codes a fit on the file would have named, in its first rows
            _say_codes(pa.Table.from_batches([first]), in_path, read_options, say)
    elif imputer is None:
        imputer = fit_on_file(
            in_path,
            fit or {},
            categorical=categorical,
            numeric=numeric,
            device=device,
            seed=seed,
            batch_rows=batch_rows,
            progress=progress,
            say=say,
            read_options=read_options,
        )
        if save_model:
            imputer.save(save_model)
            say(f"model saved to {save_model}")
    # The draws are keyed by this call's seed, also with a saved model (which keeps its fit's seed).
    point = "predictive" if samples is None else "draws"
    imputer.set_params(point=point, sampling_steps=sampling_steps, seed=seed)
    if numeric_point:
        imputer.set_params(numeric_point=numeric_point)
    report = engine(
        in_path,
        out_path,
        imputer,
        batch_rows=batch_rows,
        n_samples=samples or 1,
        progress=progress,
        in_place=in_place,
        read_options=read_options,
        keep_draws=keep_draws,
    )
    return report, imputer
