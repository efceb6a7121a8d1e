"""The table page's results: the record of a finished imputation (`TableRun`) and how it is shown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
from common import PARQUET_MIME, Download, download_buttons
from table_plots import distribution_figure

HIGHLIGHT = "background-color: #ffd58a; color: #000"
MAX_SHOWN_CELLS = 50_000  # styled cells sent to the browser: beyond this the table gets slow
MAX_PLOTS = 8
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class TableRun:
    """A finished imputation, kept in the session so that redraws and downloads do not resample.

    ``missing`` [rows, columns]: the input's null (or NaN) cells; ``imputed``: those that now hold a
    value (cells of columns the model does not cover stay missing).
    """

    upload_key: str
    run_id: str
    file_stem: str  # the downloads are this .parquet and export_suffix
    frame: pd.DataFrame
    missing: np.ndarray
    imputed: np.ndarray
    kinds: dict[str, str]
    parquet: bytes
    export: bytes  # as uploaded: a CSV file in its dialect, or a workbook; empty for nested columns
    export_suffix: str = ".csv"  # a .tsv, .txt or .xlsx upload's own; .csv for the others
    draws: bytes = b""  # with draws per cell: a zip of each draw's completed table, as uploaded


def result_table(run: TableRun) -> None:
    """The imputed table with its imputed cells highlighted."""
    only_imputed = st.toggle("Only rows with imputed cells", value=True, key="table_only_imputed")
    rows = np.flatnonzero(run.imputed.any(axis=1)) if only_imputed else np.arange(len(run.frame))
    shown = rows[: max(1, MAX_SHOWN_CELLS // run.frame.shape[1])]
    highlight = np.where(run.imputed[shown], HIGHLIGHT, "")
    floats = list(run.frame.select_dtypes("floating").columns)
    styled = (
        run.frame.iloc[shown]
        .style.apply(lambda _: highlight, axis=None)
        .format("{:.6g}", subset=floats, na_rep="")
    )
    st.dataframe(styled, key="table_result")
    cut = f" (the first {len(shown):,} of {len(rows):,})" if len(shown) < len(rows) else ""
    st.caption(f"Highlighted: imputed cells. Row numbers are the input's{cut}.")


def show_results(run: TableRun) -> None:
    """Counts, the table, observed vs imputed distributions, and the download."""
    st.subheader("Result")
    left, middle, right = st.columns(3)
    left.metric("Rows", f"{len(run.frame):,}")
    middle.metric("Imputed cells", f"{int(run.imputed.sum()):,}")
    right.metric(
        "Still missing",
        f"{int((run.missing & ~run.imputed).sum()):,}",
        help="Cells of columns the model does not cover: passthrough, or all missing when it was fitted.",
    )
    result_table(run)
    downloads = [
        Download("Download Parquet", run.parquet, f"{run.file_stem}.parquet", PARQUET_MIME, "table_download")
    ]
    if run.export:
        downloads.append(
            Download(
                f"Download {run.export_suffix[1:].upper()}",
                run.export,
                f"{run.file_stem}{run.export_suffix}",
                XLSX_MIME if run.export_suffix == ".xlsx" else "text/csv",
                "table_download_csv",
                "As uploaded: a CSV file in its delimiter, decimal mark and encoding, or a workbook of one sheet.",
            )
        )
    else:
        st.caption("No CSV download: the table's nested columns (lists, structs) only fit Parquet.")
    if run.draws:
        downloads.append(
            Download(
                "Download the draws (zip)",
                run.draws,
                f"{run.file_stem}_draws.zip",
                "application/zip",
                "table_download_draws",
                "Each draw's completed table: the imputations a multiple-imputation analysis pools.",
            )
        )
    download_buttons(downloads)
    columns = [c for j, c in enumerate(run.frame.columns) if c in run.kinds and run.imputed[:, j].any()]
    if not columns:
        return
    st.subheader("Observed and imputed values")
    chosen = st.multiselect(
        "Columns",
        columns,
        default=columns[:MAX_PLOTS],
        # Each run gets its own selection: another table has other columns.
        key=f"table_plot_columns_{run.run_id}",
    )
    for start in range(0, len(chosen), 2):
        for place, column in zip(st.columns(2), chosen[start : start + 2], strict=False):
            place.plotly_chart(distribution_figure(run, column), key=f"plot_distribution_{column}")
