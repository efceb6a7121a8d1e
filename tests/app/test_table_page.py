"""The table imputation page under AppTest: upload, column kinds, fit, impute, results, bad uploads;
and the Model page of a table model."""

from __future__ import annotations

import codecs
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from streamlit.testing.v1 import AppTest

from seqdiff.app_launch import APP_DIR
from seqdiff.tabular.imputer import MaskedDiffusionImputer

TIMEOUT = 120
FIT_STEPS = 30


@pytest.fixture(scope="session")
def table_model(holed_table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GenMD4 table model fitted on the holed table, saved as ``seqdiff impute --save-model`` does."""
    imputer = MaskedDiffusionImputer(
        dim=32, n_layers=1, n_heads=2, schedule="genmd4", max_steps=20, device="cpu"
    )
    return imputer.fit(holed_table).save(tmp_path_factory.mktemp("table-model"))


def page(
    monkeypatch: pytest.MonkeyPatch, model: Path | None = None, name: str = "2_Table_imputation"
) -> AppTest:
    """An AppTest on page ``name`` (with ``model`` in the sidebar's model folder), run once."""
    if model is not None:
        monkeypatch.setenv("SEQDIFF_MODEL", str(model))
    at = AppTest.from_file(str(APP_DIR / "Home.py"), default_timeout=TIMEOUT).run()
    at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def file_bytes(table: pd.DataFrame, kind: str) -> bytes:
    """The table as a CSV file, or a Parquet one as pandas writes it (an index other than 0, 1, ...
    becomes a column)."""
    out = io.BytesIO()
    if kind == "csv":
        table.to_csv(out, index=False)
    else:
        table.to_parquet(out)
    return out.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def upload(at: AppTest, table: pd.DataFrame, kind: str = "csv") -> AppTest:
    at.file_uploader(key="table_upload").upload(f"holes.{kind}", file_bytes(table, kind)).run()
    assert not at.exception, at.exception
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def click(at: AppTest, key: str) -> None:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    assert not errors(at), errors(at)


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def assert_filled(result: pd.DataFrame, table: pd.DataFrame) -> None:
    """No cell of ``result`` is missing and every observed cell of ``table`` is unchanged."""
    assert list(result.columns) == list(table.columns) and len(result) == len(table)
    assert not result.isna().any().any()
    observed = table.notna()
    for column in table.columns:
        assert result[column][observed[column]].tolist() == table[column][observed[column]].tolist()


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_fit_and_impute(
    holed_table: pd.DataFrame, kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at = upload(page(monkeypatch), holed_table, kind)
    assert "120 rows × 4 columns" in captions(at)
    assert "Numeric: a, b, c; categorical: colour." in captions(at)
    assert chart_titles(at) == ["Missing cells (red)"]
    assert at.button(key="table_impute_run").disabled  # nothing fitted yet
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    imputer = at.session_state["table_fit"].imputer
    assert imputer.training_["steps"] == FIT_STEPS
    assert f"Fitted: {FIT_STEPS} steps on 120 rows" in captions(at)
    assert f"early stopping kept step {FIT_STEPS} (held-out cells:" in captions(at)
    click(at, "table_impute_run")

    run = at.session_state["table_run"]
    assert_filled(run.frame, holed_table)
    assert (run.imputed == holed_table.isna().to_numpy()).all()
    assert_filled(pd.read_parquet(io.BytesIO(run.parquet)), holed_table)
    shown = at.dataframe[-1].value  # only the rows with an imputed cell, by default
    assert shown.index.tolist() == np.flatnonzero(holed_table.isna().any(axis=1)).tolist()
    assert not shown.isna().any().any()
    assert [b.proto.label for b in at.get("download_button")] == ["Download Parquet", "Download CSV"]
    csv = pd.read_csv(io.BytesIO(run.export))
    pd.testing.assert_frame_equal(csv, pd.read_parquet(io.BytesIO(run.parquet)), check_dtype=False)
    assert at.metric[1].value == str(int(holed_table.isna().sum().sum()))
    assert chart_titles(at) == ["Missing cells (red)", "a", "b", "c", "colour"]

    at.text_input(key="table_save_folder").set_value(str(tmp_path / "saved")).run()
    click(at, "table_save")
    assert "Saved to" in at.success[0].value
    assert MaskedDiffusionImputer.load(tmp_path / "saved").schema_ == imputer.schema_


def test_csv_options_read_a_windows_spreadsheet_export(monkeypatch: pytest.MonkeyPatch) -> None:
    """Semicolons and decimal commas are detected; a file that is not UTF-8 is an error until the
    encoding is chosen in the CSV options."""
    lines = ["âge;poids;ville"] + [
        f"{20 + i % 50};{'' if i % 5 == 0 else f'{60 + i % 30},{i % 10}'};{['Zürich', 'Genève'][i % 2]}"
        for i in range(80)
    ]
    data = "\r\n".join(lines).encode("cp1252")
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("export.csv", data).run()
    assert len(at.error) == 1 and "--encoding cp1252" in at.error[0].value
    at.selectbox(key="table_encoding").set_value("cp1252").run()
    assert not at.exception and not errors(at)
    assert "80 rows × 3 columns" in captions(at)
    assert "Numeric: âge, poids; categorical: ville." in captions(at)
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    click(at, "table_impute_run")
    frame = at.session_state["table_run"].frame
    assert frame["poids"].dtype == float and not frame["poids"].isna().any()
    assert frame["poids"][1] == 61.1 and set(frame["ville"]) == {"Zürich", "Genève"}
    # The CSV download is written as the upload was: semicolons, decimal commas, cp1252.
    lines = at.session_state["table_run"].export.decode("cp1252").splitlines()
    assert lines[0] == '"âge";"poids";"ville"' and lines[2] == '21;"61,1";"Genève"'
    # Read another way (a point as the decimal mark), the table is another one: fit again.
    at.selectbox(key="table_decimal").set_value(".").run()
    assert "Numeric: âge; categorical: poids, ville." in captions(at)
    assert at.button(key="table_impute_run").disabled


def test_a_file_without_a_header_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """UCI's adult.data: no header line, ", " between fields. The option names the columns 1, 2, 3 and
    the CSV download has no header line either."""
    data = "".join(
        f"{20 + i % 50}, {'?' if i % 7 == 0 else ['Private', 'Never'][i % 2]}, {i % 11}\n" for i in range(80)
    )
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("adult.data.csv", data.encode()).run()
    assert "79 rows × 3 columns" in captions(at)
    assert (
        len(at.warning) == 1 and "names columns 20, 0: numbers over columns of numbers" in at.warning[0].value
    )
    at.checkbox(key="table_no_header").check().run()
    assert not at.exception and not errors(at) and not at.warning
    assert "80 rows × 3 columns" in captions(at)
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    click(at, "table_impute_run")
    run = at.session_state["table_run"]
    assert list(run.frame.columns) == ["1", "2", "3"] and not run.frame["2"].isna().any()
    lines = run.export.decode().splitlines()
    assert len(lines) == 80 and lines[1] == '21,"Never",1'


def test_a_code_for_missing_is_named_and_read_as_missing_from_the_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """-999 in every fifth row of a column of temperatures: a warning names it, and adding it to the
    tokens read as missing makes those cells missing."""
    data = "temp,site\n" + "".join(
        f"{'-999' if i % 5 == 0 else f'{10 + i % 9}.5'},{'ab'[i % 2]}\n" for i in range(60)
    )
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("readings.csv", data.encode()).run()
    assert "0 of 120 cells missing" in captions(at)
    assert len(at.warning) == 1 and "Column 'temp': -999 in 12 rows" in at.warning[0].value
    tokens = at.text_input(key="table_na_values")
    tokens.set_value(f"{tokens.value} -999").run()
    assert not at.exception and not errors(at) and not at.warning
    assert "12 of 120 cells missing (10.0%)" in captions(at)


def test_notes_above_the_header_and_blank_rows_below_are_kept_in_the_download(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lab system's export: two ``#`` notes above the header are skipped and written back; two blank
    rows at its end are reported and left blank."""
    notes = "# exported by LabSystem 4.2\n# units: C\n"
    data = (
        notes
        + "temp,site\n"
        + "".join(f"{'' if i % 5 == 0 else 10 + i % 9},{'ab'[i % 2]}\n" for i in range(60))
        + ",\n,\n"
    )
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("readings.csv", data.encode()).run()
    assert "62 rows × 2 columns" in captions(at)
    assert "2 line(s) above the header (# notes or a title): skipped" in captions(at)
    assert "2 blank row(s), no cell filled: left blank (nothing to impute them from)." in captions(at)
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    click(at, "table_impute_run")
    run = at.session_state["table_run"]
    export = run.export.decode()
    assert export.startswith(notes + '"temp","site"\n') and export.endswith("\n,\n,\n")
    assert run.frame["temp"].isna().tolist() == [False] * 60 + [True] * 2


def test_zip_codes_are_read_as_text_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    data = "zip,kg\n" + "".join(f"{['01001', '94105'][i % 2]},{70 + i % 9}.5\n" for i in range(40))
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("sites.csv", data.encode()).run()
    assert not at.exception and not errors(at)
    assert "Column(s) zip: whole numbers that are codes (leading zeros as in 01001" in captions(at)
    assert "Numeric: kg; categorical: zip." in captions(at)


def test_excels_unicode_text_is_read_by_its_byte_order_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    """Excel's "Unicode Text" (.txt: UTF-16 with a byte-order mark, tabs) reads with the detected
    encoding, and its download comes back as a .txt file in that encoding, byte-order mark first."""
    lines = ["âge\tpoids\tville"] + [
        f"{20 + i % 50}\t{'' if i % 5 == 0 else f'{60 + i % 30}.{i % 10}'}\t{['Zürich', 'Genève'][i % 2]}"
        for i in range(80)
    ]
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("export.txt", "\r\n".join(lines).encode("utf-16")).run()
    assert not at.exception and not errors(at)
    assert "Numeric: âge, poids; categorical: ville." in captions(at)
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    click(at, "table_impute_run")
    run = at.session_state["table_run"]
    assert [b.proto.label for b in at.get("download_button")] == ["Download Parquet", "Download TXT"]
    assert run.export_suffix == ".txt" and run.export.startswith(codecs.BOM_UTF16_LE)
    text = run.export.decode("utf-16").splitlines()
    assert text[0] == '"âge"\t"poids"\t"ville"' and len(text) == 81 and "\t\t" not in "".join(text)


def test_durations_are_imputed_and_plotted_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Parquet column of durations: imputed, and its plot drawn in seconds (plotly cannot write a
    timedelta: the page raised a TypeError)."""
    rng = np.random.default_rng(0)
    wait = pd.Series(pd.to_timedelta(rng.integers(60, 3600, 40), unit="s")).mask(
        pd.Series(np.arange(40) % 5 == 0)
    )
    at = upload(page(monkeypatch), pd.DataFrame({"wait": wait, "x": rng.normal(size=40)}), "parquet")
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    click(at, "table_impute_run")
    assert at.session_state["table_run"].frame["wait"].notna().all()
    assert chart_titles(at) == ["Missing cells (red)", "wait"]  # the columns with imputed cells
    figure = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert figure["layout"]["xaxis"]["title"]["text"] == "seconds"


def test_nested_columns_are_copied_and_downloaded_as_parquet_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Parquet upload with a list column: imputed around it, which it keeps; no CSV download, which
    cannot hold it (the imputation failed on writing one)."""
    table = pa.table({"x": [1.0, None, 2.0, 3.0] * 10, "tags": [["a", "b"]] * 40})
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("nested.parquet", parquet_bytes(table)).run()
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    click(at, "table_impute_run")
    run = at.session_state["table_run"]
    assert pq.read_table(io.BytesIO(run.parquet)).column("tags").to_pylist() == [["a", "b"]] * 40
    assert run.export == b"" and [b.proto.label for b in at.get("download_button")] == ["Download Parquet"]
    assert "No CSV download: the table's nested columns" in captions(at)


def test_an_excel_workbook_comes_back_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """An .xlsx upload is read from its first sheet (another one by name), and its export is a workbook."""
    book = openpyxl.Workbook()
    book.active.append(["kg", "town"])
    for i in range(80):
        book.active.append([None if i % 4 == 0 else 60 + i % 25 + 0.5, "#N/A" if i % 6 == 1 else "ab"[i % 2]])
    data = io.BytesIO()
    book.save(data)
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload("clinic.xlsx", data.getvalue()).run()
    assert not at.exception and not errors(at)
    assert "Numeric: kg; categorical: town." in captions(at)
    at.text_input(key="table_sheet").set_value("lab").run()
    assert errors(at) == ["clinic.xlsx: no sheet 'lab'; its sheets: 'Sheet'"]
    at.text_input(key="table_sheet").set_value("").run()
    at.number_input(key="table_steps").set_value(FIT_STEPS).run()
    click(at, "table_fit_run")
    click(at, "table_impute_run")
    run = at.session_state["table_run"]
    assert [b.proto.label for b in at.get("download_button")] == ["Download Parquet", "Download XLSX"]
    rows = list(openpyxl.load_workbook(io.BytesIO(run.export)).active.iter_rows(values_only=True))
    assert rows[0] == ("kg", "town") and len(rows) == 81
    assert all(kg is not None and town in ("a", "b") for kg, town in rows[1:])


def test_overriding_a_kind_changes_the_schema(
    holed_table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = upload(page(monkeypatch), holed_table)
    (editor,) = at.data_editor
    assert editor.value["kind"].tolist() == ["numeric", "numeric", "numeric", "categorical"]
    at.session_state[editor.key] = {
        "edited_rows": {2: {"kind": "categorical"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception and not errors(at)
    assert "Numeric: a, b; categorical: c, colour." in captions(at)
    at.session_state[editor.key] = {
        "edited_rows": {3: {"kind": "numeric"}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    assert errors(at) == ["holes.csv: column 'colour' has type string and cannot be numeric"]
    assert at.button(key="table_fit_run").disabled


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.parquet", np.random.default_rng(0).bytes(500), "x.parquet: not a readable Parquet file"),
        ("dup.csv", b"a,a,b\n1,2,3\n4,,6\n", "dup.csv: duplicate column name(s): 'a'"),
        ("header.csv", b"a,b\n", "header.csv: the table has no rows"),
        ("big.csv", b"a\n" + b"1\n" * (11 * 2**20), "big.csv: 22.0 MB is over the upload limit of 20 MB"),
    ],
)
def test_bad_upload_is_an_error(
    name: str, content: bytes, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page(monkeypatch)
    at.file_uploader(key="table_upload").upload(name, content).run()
    assert not at.exception
    assert len(at.error) == 1 and message in at.error[0].value
    assert "seqdiff-app-" not in at.error[0].value
    assert not at.get("plotly_chart")


def test_impute_with_a_saved_model(
    holed_table: pd.DataFrame, table_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's columns are filled; a column it does not know (here a pandas index, which Parquet
    stores as a column) is kept as it is."""
    ids = [f"r{i}" for i in range(len(holed_table))]
    at = upload(page(monkeypatch, table_model), holed_table.set_axis(pd.Index(ids, name="id")), "parquet")
    at.radio(key="table_source").set_value("folder").run()
    assert str(table_model) in captions(at)
    click(at, "table_impute_run")
    frame = at.session_state["table_run"].frame
    assert frame["id"].tolist() == ids
    assert_filled(frame.drop(columns="id"), holed_table)
    assert at.dataframe[-1].value.columns.tolist() == [*holed_table.columns, "id"]

    # The numeric estimate: the median by default, the mean on request (categorical cells unchanged).
    assert at.radio(key="table_numeric_point").value == "median"
    at.radio(key="table_numeric_point").set_value("mean").run()
    click(at, "table_impute_run")
    by_mean = at.session_state["table_run"].frame
    assert_filled(by_mean.drop(columns="id"), holed_table)
    assert not by_mean["a"].equals(frame["a"]) and by_mean["colour"].equals(frame["colour"])


def test_draws_and_their_sampler_steps(
    holed_table: pd.DataFrame, table_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = upload(page(monkeypatch, table_model), holed_table)
    at.radio(key="table_source").set_value("folder").run()
    assert at.number_input(key="table_sampling_steps").disabled  # no draws: one pass per row
    at.number_input(key="table_draws").set_value(2).run()
    at.number_input(key="table_sampling_steps").set_value(1).run()
    click(at, "table_impute_run")
    one_step = at.session_state["table_run"].frame
    assert_filled(one_step, holed_table)
    at.number_input(key="table_sampling_steps").set_value(0).run()  # one step per cell to fill
    click(at, "table_impute_run")
    exact = at.session_state["table_run"].frame
    assert_filled(exact, holed_table)
    assert not exact.equals(one_step)
    # The two draws behind the estimate: a zip of completed tables, CSV like the upload.
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download Parquet", "Download CSV", "Download the draws (zip)"]
    with zipfile.ZipFile(io.BytesIO(at.session_state["table_run"].draws)) as archive:
        assert archive.namelist() == ["holes_imputed.draw1.csv", "holes_imputed.draw2.csv"]
        drawn = [pd.read_csv(archive.open(name)) for name in archive.namelist()]
    for table in drawn:
        assert_filled(table, holed_table)
    assert not drawn[0].equals(drawn[1])
    # The seed keys the draws of a saved model, and the same seed gives the same draws again.
    at.number_input(key="table_seed").set_value(7).run()
    click(at, "table_impute_run")
    seven = at.session_state["table_run"].frame
    assert not seven.equals(exact)
    at.number_input(key="table_seed").set_value(0).run()
    click(at, "table_impute_run")
    assert at.session_state["table_run"].frame.equals(exact)


def test_protein_model_is_not_a_table_model(
    holed_table: pd.DataFrame, md4_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = upload(page(monkeypatch, md4_model), holed_table)
    at.radio(key="table_source").set_value("folder").run()
    at.button(key="table_impute_run").click().run()
    assert not at.exception
    assert errors(at) == [f"{md4_model}: not a table model (modality: 'protein')"]
    assert "table_run" not in at.session_state


def test_model_page_shows_the_rates_per_column_value(
    table_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = page(monkeypatch, table_model, "3_Model")
    assert not at.error
    assert at.metric[0].value == "table"
    rates = MaskedDiffusionImputer.load(table_model).learned_rates()
    assert len(rates) > 40
    (chart,) = at.get("plotly_chart")
    assert json.loads(chart.proto.spec)["data"][0]["x"] == rates["token"].head(40).tolist()
    assert f"highest 40 of {len(rates)}" in captions(at)
    assert at.dataframe[0].value["token"].tolist() == rates["token"].tolist()
