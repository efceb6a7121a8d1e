"""Table imputation: upload a table, review its column kinds, fit or load a model, fill the missing cells."""

from __future__ import annotations

import io
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import common
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile
from table_plots import missingness_figure
from table_results import TableRun, show_results

from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import NUMERIC_POINTS
from seqdiff.tabular.files import (
    digit_code_columns,
    file_format,
    numbers_in_header,
    preamble_lines,
    read_table,
)
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.missing_codes import missing_codes
from seqdiff.tabular.read_options import DECIMAL_MARKS, DELIMITERS, NA_VALUES, ReadOptions
from seqdiff.tabular.schema import Schema, infer_schema
from seqdiff.tabular.settings import SCHEDULES
from seqdiff.tabular.stream import blank_rows
from seqdiff.tabular.task import impute_table
from seqdiff.tabular.writing import nested_columns, output_dialect, write_table

UPLOAD_TYPES = ["parquet", "pq", "csv", "tsv", "txt", "gz", "xlsx", "xlsm"]
SOURCES = {"fit": "Fit a model on this table", "folder": "Use the model folder in the sidebar"}
SCHEDULE_LABELS = {"linear": "MD4 (linear)", "genmd4": "GenMD4 (learned per-value rates)"}  # those offered
CHOOSABLE_KINDS = ["numeric", "categorical"]  # the overrides infer_schema accepts
EXPORTS = {".tsv": ".tsv", ".txt": ".txt", ".xlsx": ".xlsx", ".xlsm": ".xlsx"}  # upload suffix -> export's
ENCODINGS = [None, "utf-8", "cp1252", "latin-1", "utf-16"]  # offered in the CSV options; the CLI takes any


@dataclass
class TableFit:
    """A model fitted on one upload as read (`upload_key`), kept in the session so that Impute does not
    refit."""

    upload_key: str
    imputer: MaskedDiffusionImputer


def settings_sidebar() -> dict:
    """The sidebar: training steps and schedule (when fitting), draws per cell, their sampler steps
    and seed."""
    side = st.sidebar
    side.header("Fitting")
    steps = side.number_input(
        "Training steps",
        10,
        100_000,
        300,
        step=50,
        key="table_steps",
        help="More steps fit better and take longer: a few hundred take about a minute on a CPU.",
    )
    offered = [name for name in SCHEDULES if name in SCHEDULE_LABELS]
    schedule = side.selectbox("Schedule", offered, format_func=SCHEDULE_LABELS.get, key="table_schedule")
    side.header("Imputing")
    draws = side.number_input(
        "Draws per cell",
        0,
        64,
        0,
        key="table_draws",
        help="0: the predictive point estimate (conditional median or mean / most probable value, one "
        "network pass per row). K >= 1: the median or mean (numeric columns) or vote (categorical "
        "ones) of K draws.",
    )
    sampling_steps = side.number_input(
        "Sampler steps per row",
        0,
        1000,
        0,
        key="table_sampling_steps",
        disabled=draws == 0,
        help="With draws: 0 takes one step per cell to fill, each drawn given the cells before it; fewer "
        "steps are faster on wide tables, and draw several cells of a row at once, independently.",
    )
    numeric_point = side.radio(
        "Numeric estimate",
        NUMERIC_POINTS,
        key="table_numeric_point",
        horizontal=True,
        help="median: least absolute error; mean: least squared error.",
    )
    seed = side.number_input("Seed", 0, 2**31 - 1, 0, key="table_seed")
    return {
        "fit": {"max_steps": int(steps), "schedule": schedule},  # seqdiff.tabular.settings.FitSettings
        "draws": int(draws),
        "sampling_steps": int(sampling_steps) or None,
        "numeric_point": numeric_point,
        "seed": int(seed),
    }


def file_options() -> ReadOptions:
    """How a CSV upload is read: detected, or as the user sets it (the CLI's --delimiter, --decimal,
    --encoding and --no-header); and an Excel upload's sheet (--sheet)."""
    with st.expander("CSV and Excel options"):
        left, middle, right, sheet = st.columns(4)
        delimiter = left.selectbox(
            "Delimiter (--delimiter)",
            [None, *DELIMITERS],
            format_func=lambda d: "detect" if d is None else DELIMITERS[d],
            key="table_delimiter",
        )
        decimal = middle.selectbox(
            "Decimal mark (--decimal)",
            [None, *DECIMAL_MARKS],
            format_func=lambda d: "detect" if d is None else repr(d),
            key="table_decimal",
        )
        encoding = right.selectbox(
            "Encoding (--encoding)",
            ENCODINGS,
            format_func=lambda e: "detect" if e is None else e,
            key="table_encoding",
            help="detect: the one the file's byte-order mark names, else utf-8.",
        )
        name = sheet.text_input("Excel sheet (--sheet)", key="table_sheet", placeholder="the first")
        no_header = st.checkbox(
            "The first line is data, not column names (--no-header)",
            key="table_no_header",
            help="The columns are then named 1, 2, ... and a CSV download has no header line either.",
        )
        na_values = st.text_input(
            "Read as missing (--na-values)",
            " ".join(NA_VALUES),
            key="table_na_values",
            help="Fields (and Excel cells) read as missing besides empty ones, separated by spaces: add a "
            "code such as -999.",
        )
    return ReadOptions(
        na_values=tuple(dict.fromkeys(na_values.split())),
        delimiter=delimiter,
        decimal=decimal,
        encoding=encoding,
        header=not no_header,
        sheet=name.strip() or None,
    )


@st.cache_resource(show_spinner="Reading the table…", max_entries=4)
def read_upload(name: str, data: bytes, options: ReadOptions) -> tuple[pa.Table, list[str], int, list[str]]:
    """The uploaded Parquet, CSV or Excel file as an Arrow table (cached: Arrow tables are immutable),
    the header's names that look like data (`numbers_in_header`), the lines above a CSV file's
    header (`preamble_lines`) and its columns of whole numbers that are codes, read as text
    (`digit_code_columns`)."""
    with common.as_file(name, data) as path:
        return (
            read_table(path, options=options),
            numbers_in_header(path, options),
            preamble_lines(path, options),
            digit_code_columns(path, options),
        )


def upload_key(upload: UploadedFile, options: ReadOptions) -> str:
    """What a fit or an imputation was made from: the upload, read with these options."""
    return f"{upload.file_id} {options}"


def null_mask(table: pa.Table) -> np.ndarray:
    """[rows, columns]: the cells that are null, or NaN, as the imputer counts them."""
    return np.column_stack(
        [pc.is_null(column, nan_is_null=True).to_numpy() for column in table.columns]
    ).astype(bool)


def review_schema(
    table: pa.Table, inferred: Schema, upload: UploadedFile, key: str, missing: np.ndarray
) -> Schema | None:
    """The inferred column kinds in an editable table (one per `key`: an upload as read); returns the
    schema with the user's overrides, or None (with the error shown) when an override does not fit a
    column's type."""
    frame = pd.DataFrame(
        {
            "column": inferred.names,
            "type": [c.arrow_type for c in inferred.columns],
            "kind": [c.kind for c in inferred.columns],
            "missing": missing.sum(axis=0),
        }
    )
    edited = st.data_editor(
        frame,
        hide_index=True,
        disabled=["column", "type", "missing"],
        column_config={
            "kind": st.column_config.SelectboxColumn(
                "kind",
                options=CHOOSABLE_KINDS,
                required=True,
                help="Numeric columns are binned by quantiles; categorical ones get one token per value.",
            ),
            "missing": st.column_config.NumberColumn("missing cells"),
        },
        # A new upload, or one read anew, gets a fresh editor instead of the edits made to the last.
        key=f"table_kinds_{key}",
    )
    kind = edited["kind"]
    changed = kind != frame["kind"]
    with common.user_errors(stop=False):
        return infer_schema(
            table,
            categorical=frame["column"][changed & (kind == "categorical")].tolist(),
            numeric=frame["column"][changed & (kind == "numeric")].tolist(),
            source=upload.name,
        )
    return None


def schema_summary(schema: Schema) -> str:
    """One line: which columns are modelled as what."""
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("Numeric", schema.numeric),
            ("categorical", schema.categorical),
            ("not modelled (copied as they are)", schema.passthrough),
        )
        if names
    ]
    return "; ".join(parts) + "."


def fit_model(table: pa.Table, source: str, schema: Schema, settings: dict) -> MaskedDiffusionImputer:
    """Fit an imputer with the reviewed column kinds, with a progress bar over the training steps."""
    imputer = MaskedDiffusionImputer(
        **settings["fit"],
        categorical=schema.categorical,
        numeric=schema.numeric,
        seed=settings["seed"],
    )
    label = (
        f"Fitting on {table.num_rows:,} rows: {imputer.max_steps:,} training steps planned, fewer or "
        "more as the held-out cells decide"
    )
    bar = st.progress(0.0, text=label)

    def on_step(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: step {done:,} of {total:,}")

    fitted = imputer.fit(table, source=source, on_step=on_step)
    bar.empty()
    return fitted


def save_imputer(imputer: MaskedDiffusionImputer, folder: str) -> Path:
    """Save the fitted model as ``seqdiff impute --save-model`` does; an unwritable folder is a SeqdiffError."""
    try:
        return imputer.save(folder)
    except OSError as err:
        raise SeqdiffError(f"{folder}: cannot save the model there ({err.strerror or err})") from None


def show_fit(imputer: MaskedDiffusionImputer, schema: Schema | None) -> None:
    """What the fitted model is (and whether the column kinds changed since), and a box to save it."""
    training = imputer.training_
    nelbo = training.get("train_nelbo_per_cell")
    st.caption(
        f"Fitted: {training['steps']:,} steps on {training['rows']:,} rows in "
        f"{training['minutes'] * 60:.0f} s"
        + (f"; training NELBO {nelbo:.3f} nats per cell" if nelbo is not None else "")
        + (
            f"; early stopping kept step {training['best_step']:,} (held-out cells: "
            f"{training['validation_nll_per_cell']:.3f} nats per cell)."
            if "best_step" in training
            else "."
        )
    )
    if schema is not None and imputer.schema_ != schema:
        st.warning("The column kinds changed since this model was fitted: fit again to use them.")
    with st.expander("Save the fitted model"):
        target = st.text_input("Folder", key="table_save_folder", placeholder="runs/my-table-model")
        if st.button("Save", key="table_save", disabled=not target.strip()):
            with common.user_errors(stop=False):
                saved = save_imputer(imputer, target.strip())
                st.success(
                    f"Saved to {saved}. Put it in the sidebar's Model folder to impute with it here "
                    "or to see it on the Model page."
                )


def impute(
    upload: UploadedFile,
    options: ReadOptions,
    missing: np.ndarray,
    imputer: MaskedDiffusionImputer | None,
    folder: str,
    settings: dict,
) -> TableRun:
    """Fill the upload's missing cells (``missing``: its null mask; a CSV file read with `options`) as
    ``seqdiff impute`` does, with `imputer` (fitted here) or else the model saved in `folder`, and keep
    what the results show: the imputed table as Parquet and as the upload was (CSV for Parquet), and
    with draws, each draw's table."""
    stem = upload.name.split(".")[0]
    # The export keeps a .tsv, .txt or Excel upload's format: spreadsheets open .tsv and .txt split by tabs.
    suffixes = Path(upload.name.lower()).suffixes
    export_suffix = next((EXPORTS[s] for s in suffixes if s in EXPORTS), ".csv")
    with (
        st.spinner("Imputing…", show_time=True),
        common.as_file(upload.name, upload.getvalue()) as path,
        tempfile.TemporaryDirectory(prefix="seqdiff-app-") as outputs,
    ):
        out = Path(outputs) / f"{stem}_imputed.parquet"
        report, imputer = impute_table(
            path,
            out,
            imputer=imputer,
            checkpoint=folder,
            samples=settings["draws"] or None,
            keep_draws=settings["draws"] > 0,
            sampling_steps=settings["sampling_steps"] if settings["draws"] else None,
            numeric_point=settings["numeric_point"],
            seed=settings["seed"],
            progress=False,
            read_options=options,
        )
        table, export = pq.read_table(out), out.with_suffix(export_suffix)
        dialect = output_dialect(export, path, options)
        # CSV cannot hold nested values: a Parquet upload with lists or structs gets no CSV download.
        nested = bool(nested_columns(table.schema))
        if not nested:
            write_table(table, export, dialect)
        parquet, exported = out.read_bytes(), b"" if nested else export.read_bytes()
        draws = io.BytesIO()
        with zipfile.ZipFile(draws, "w", zipfile.ZIP_DEFLATED) as archive:
            as_uploaded = file_format(path) != "parquet"  # the draws as the export, or Parquet
            for drawn in map(Path, report.draws):
                if as_uploaded:
                    write_table(pq.read_table(drawn), drawn.with_suffix(export_suffix), dialect)
                    drawn = drawn.with_suffix(export_suffix)
                archive.write(drawn, drawn.name)
    encoder = imputer.encoder_
    return TableRun(
        upload_key=upload_key(upload, options),
        run_id=uuid.uuid4().hex[:8],
        file_stem=f"{stem}_imputed",
        # Pandas metadata could turn a column into the index; the columns must match the masks'.
        frame=table.to_pandas(ignore_metadata=True),
        missing=missing,
        imputed=missing & ~null_mask(table),
        kinds=dict(zip(encoder.columns, encoder.kinds, strict=True)),
        parquet=parquet,
        export=exported,
        export_suffix=export_suffix,
        draws=draws.getvalue() if report.draws else b"",
    )


st.set_page_config(page_title="Table imputation · seqdiff", page_icon="🧮", layout="wide")
st.title("Table imputation")
st.caption(
    "Fill the missing cells of a table with a masked-diffusion model fitted on its observed cells (or a "
    "saved one). Observed cells are kept exactly as they are; empty CSV fields and NaN count as missing."
)
folder = common.model_folder()
settings = settings_sidebar()

upload = st.file_uploader("Upload a table (Parquet, CSV or Excel)", type=UPLOAD_TYPES, key="table_upload")
options = file_options()
if upload is None:
    st.info("Upload a Parquet, CSV or Excel table with some missing cells.")
    st.stop()
with common.user_errors():
    table, header_numbers, lines_above, codes = read_upload(upload.name, upload.getvalue(), options)
    inferred = infer_schema(table, source=upload.name)
missing = null_mask(table)
st.caption(
    f"{upload.name}: {table.num_rows:,} rows × {table.num_columns} columns; {int(missing.sum()):,} of "
    f"{missing.size:,} cells missing ({missing.mean():.1%})."
)
blank = int(blank_rows(table).sum())
if blank:
    st.caption(f"{blank:,} blank row(s), no cell filled: left blank (nothing to impute them from).")
if lines_above:
    st.caption(
        f"{lines_above} line(s) above the header (# notes or a title): skipped, and kept above the header "
        "of a CSV download."
    )
if codes:
    st.caption(
        f"Column(s) {', '.join(codes)}: whole numbers that are codes (leading zeros as in 01001, or too "
        "many digits for a number), read as text to keep them as written."
    )
if header_numbers:
    st.warning(
        f"The first line names columns {', '.join(header_numbers[:3])}: numbers over columns of numbers. "
        "If it is data, tick “The first line is data” in the CSV and Excel options."
    )
for code in missing_codes(table):
    said = code.describe()
    st.warning(
        f"{said[:1].upper()}{said[1:]}: a code for missing? If so, add {code.token} to “Read as missing” "
        "in the CSV and Excel options (a Parquet file stores such cells as nulls)."
    )

st.subheader("Columns")
schema = review_schema(table, inferred, upload, upload_key(upload, options), missing)
if schema is not None:
    st.caption(schema_summary(schema))
st.plotly_chart(missingness_figure(table.column_names, missing), key="plot_missing")

st.subheader("Model")
source = st.radio(
    "Model",
    list(SOURCES),
    format_func=SOURCES.get,
    key="table_source",
    horizontal=True,
    label_visibility="collapsed",
)
fitted = st.session_state.get("table_fit")
if fitted is not None and fitted.upload_key != upload_key(upload, options):
    fitted = None
if source == "fit":
    if st.button("Fit", type="primary", key="table_fit_run", disabled=schema is None):
        with common.user_errors(stop=False):
            st.session_state.table_fit = TableFit(
                upload_key(upload, options), fit_model(table, upload.name, schema, settings)
            )
            fitted = st.session_state.table_fit
    if fitted is not None:
        show_fit(fitted.imputer, schema)
else:
    st.caption(f"Imputing with the table model in `{folder}` (its own column kinds apply).")
if st.button("Impute", type="primary", key="table_impute_run", disabled=source == "fit" and fitted is None):
    with common.user_errors(stop=False):
        imputer = fitted.imputer if source == "fit" else None
        st.session_state.table_run = impute(upload, options, missing, imputer, folder, settings)
run = st.session_state.get("table_run")
if run is not None and run.upload_key == upload_key(upload, options):
    show_results(run)
