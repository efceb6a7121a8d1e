"""The table imputation page end to end in a real browser (Debian's Chromium, driven by Playwright).

Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from playwright.sync_api import Page

from seqdiff.tabular.files import read_table
from seqdiff.tabular.writing import write_table

FIT_STEPS = 30
RUN_TIMEOUT_MS = 180_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_table_page_end_to_end(
    holed_table: pd.DataFrame,
    serve_app: Callable[[dict[str, str]], str],
    browser_page: Page,
    screenshot: Callable[[Page, str], Path],
    wait_until_idle: Callable[[Page], None],
    tmp_path: Path,
) -> None:
    model = tmp_path / "table-model"  # saved from the page, then shown on the Model page
    # One torch thread: the default oversubscribes cores shared with other jobs (see test_table_page).
    url = serve_app({"OMP_NUM_THREADS": "1", "SEQDIFF_MODEL": str(model)})
    csv = tmp_path / "holes.csv"
    holed_table.to_csv(csv, index=False)
    page = browser_page
    page.goto(url)
    page.get_by_role("link", name="Table imputation:").click()
    page.wait_for_url(f"{url}/Table_imputation")
    steps = page.get_by_label("Training steps", exact=True)
    steps.fill(str(FIT_STEPS))
    steps.press("Enter")
    page.get_by_role("combobox", name="Schedule").click()
    page.get_by_role("option", name="GenMD4 (learned per-value rates)").click()
    wait_until_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(csv)
    page.get_by_text("120 rows × 4 columns").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    screenshot(page, "table-review.png")

    page.get_by_role("button", name="Fit", exact=True).click()
    page.get_by_text(f"Fitted: {FIT_STEPS} steps").wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Impute", exact=True).click()
    page.get_by_role("button", name="Download Parquet").wait_for(timeout=RUN_TIMEOUT_MS)
    page.locator(".js-plotly-plot").nth(4).wait_for()  # missing cells, then a, b, c and colour
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot(page, "table-results.png")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download Parquet").click()
    assert download.value.suggested_filename == "holes_imputed.parquet"
    result = pd.read_parquet(download.value.path())
    assert list(result.columns) == list(holed_table.columns) and len(result) == len(holed_table)
    assert not result.isna().any().any()
    observed = holed_table.notna()
    for column in holed_table.columns:
        assert result[column][observed[column]].tolist() == holed_table[column][observed[column]].tolist()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == "holes_imputed.csv"
    pd.testing.assert_frame_equal(pd.read_csv(download.value.path()), result, check_dtype=False)

    page.get_by_text("Save the fitted model").click()
    folder = page.get_by_label("Folder", exact=True)
    folder.fill(str(model))
    folder.press("Enter")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Saved to").wait_for(timeout=RUN_TIMEOUT_MS)
    page.goto(f"{url}/Model")
    page.locator(".js-plotly-plot").first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text("Model spec").wait_for()
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() == "table"
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot(page, "table-model.png")


def test_an_excel_workbook_uploads_and_downloads(
    holed_table: pd.DataFrame,
    serve_app: Callable[[dict[str, str]], str],
    browser_page: Page,
    wait_until_idle: Callable[[Page], None],
    tmp_path: Path,
) -> None:
    """The uploader takes a .xlsx file (its type filter is the browser's), and the export is a workbook."""
    url = serve_app({"OMP_NUM_THREADS": "1"})
    book = tmp_path / "holes.xlsx"
    write_table(pa.Table.from_pandas(holed_table, preserve_index=False), book)
    page = browser_page
    page.goto(f"{url}/Table_imputation")
    steps = page.get_by_label("Training steps", exact=True)
    steps.fill(str(FIT_STEPS))
    steps.press("Enter")
    wait_until_idle(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(book)
    page.get_by_text("120 rows × 4 columns").wait_for()
    page.get_by_role("button", name="Fit", exact=True).click()
    page.get_by_text(f"Fitted: {FIT_STEPS} steps").wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Impute", exact=True).click()
    page.get_by_role("button", name="Download XLSX").wait_for(timeout=RUN_TIMEOUT_MS)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    with page.expect_download() as download:
        page.get_by_role("button", name="Download XLSX").click()
    assert download.value.suggested_filename == "holes_imputed.xlsx"
    result = read_table(download.value.path().rename(tmp_path / "downloaded.xlsx")).to_pandas()
    assert list(result.columns) == list(holed_table.columns) and len(result) == len(holed_table)
    assert not result.isna().any().any()
