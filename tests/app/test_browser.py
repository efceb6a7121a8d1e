"""End to end in a real browser: Debian's Chromium, driven by Playwright, uses the served app.

Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from seqdiff.protein.io import read_sequences

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
FIXED = [*range(0, 5), *range(19, 24)]
RUN_TIMEOUT_MS = 180_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app_url(genmd4_model: Path, serve_app: Callable[[dict[str, str]], str]) -> str:
    """The app served with the tiny GenMD4 model."""
    return serve_app({"SEQDIFF_MODEL": str(genmd4_model)})


def test_design_page_end_to_end(
    app_url: str, browser_page: Page, screenshot: Callable[[Page, str], Path], tmp_path: Path
) -> None:
    page = browser_page
    page.goto(app_url)
    page.get_by_role("link", name="Model:").wait_for()
    screenshot(page, "home.png")
    page.get_by_role("link", name="Protein design:").click()
    page.wait_for_url(f"{app_url}/Protein_design")
    for label, value in (("Designs", "3"), ("Steps", "8")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
    sequence = page.get_by_label("Sequence (plain or FASTA)")
    sequence.fill(SEQ)
    sequence.press("Control+Enter")
    ranges = page.get_by_label("Residue ranges")
    ranges.fill("1-5,20-24")
    ranges.press("Enter")
    page.get_by_text("template", exact=False).first.wait_for()
    page.get_by_role("button", name="Design", exact=True).click()
    page.locator(".js-plotly-plot").nth(3).wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Download FASTA").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "design-results.png")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download FASTA").click()
    fasta = tmp_path / "designs.fasta"
    download.value.save_as(fasta)
    records = read_sequences(fasta)
    assert len(records) == 3
    for record in records:
        assert "fixed=1-5,20-24" in record.description
        assert [record.sequence[i] for i in FIXED] == [SEQ[i] for i in FIXED]

    page.goto(f"{app_url}/Model")
    page.locator(".js-plotly-plot").first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text("Model spec").wait_for()
    screenshot(page, "model.png")
