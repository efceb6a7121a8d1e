"""End to end in a real browser: Debian's Chromium, driven by Playwright, uses the served app.

Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page

from seqdiff.protein.io import ProteinRecord, read_sequences

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
FIXED = [*range(0, 5), *range(19, 24)]
RUN_TIMEOUT_MS = 180_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def app_url(genmd4_model: Path, serve_app: Callable[[dict[str, str]], str], private_cache: Path) -> str:
    """The app served with the tiny GenMD4 model, adapting into the tests' own cache."""
    return serve_app({"SEQDIFF_MODEL": str(genmd4_model), "SEQDIFF_CACHE": str(private_cache)})


def downloaded_fasta(page: Page, folder: Path) -> list[ProteinRecord]:
    """The records of the FASTA that the Download FASTA button gives."""
    with page.expect_download() as download:
        page.get_by_role("button", name="Download FASTA").click()
    fasta = folder / "designs.fasta"
    download.value.save_as(fasta)
    return read_sequences(fasta)


def fill_design_form(page: Page, sequence: str, ranges: str) -> None:
    """3 designs of 8 steps of ``sequence``, keeping the residues in ``ranges``."""
    for label, value in (("Designs", "3"), ("Steps", "8")):
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
    box = page.get_by_label("Sequence (plain or FASTA)")
    box.fill(sequence)
    box.press("Control+Enter")
    box = page.get_by_label("Residue ranges")
    box.fill(ranges)
    box.press("Enter")
    page.get_by_text("template", exact=False).first.wait_for()


def test_design_page_end_to_end(
    app_url: str, browser_page: Page, screenshot: Callable[[Page, str], Path], tmp_path: Path
) -> None:
    page = browser_page
    page.goto(app_url)
    page.get_by_role("link", name="Model:").wait_for()
    screenshot(page, "home.png")
    page.get_by_role("link", name="Protein design:").click()
    page.wait_for_url(f"{app_url}/Protein_design")
    fill_design_form(page, SEQ, "1-5,20-24")
    page.get_by_role("button", name="Design", exact=True).click()
    page.locator(".js-plotly-plot").nth(3).wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Download FASTA").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot(page, "design-results.png")

    records = downloaded_fasta(page, tmp_path)
    assert len(records) == 3
    for record in records:
        assert "fixed=1-5,20-24" in record.description
        assert [record.sequence[i] for i in FIXED] == [SEQ[i] for i in FIXED]

    page.goto(f"{app_url}/Model")
    page.locator(".js-plotly-plot").first.wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text("Model spec").wait_for()
    screenshot(page, "model.png")


def test_family_design_end_to_end(
    app_url: str,
    browser_page: Page,
    screenshot: Callable[[Page, str], Path],
    wait_until_idle: Callable[[Page], None],
    family_homologs: tuple[Path, str],
    tmp_path: Path,
) -> None:
    """Upload homologs, adapt for 3 steps, design, and find the family scores in the plot and the FASTA."""
    a3m, query = family_homologs
    page = browser_page
    page.goto(f"{app_url}/Protein_design")
    fill_design_form(page, query, "10-20")
    page.get_by_text("Upload homologs").click()
    box = page.get_by_label("Adaptation steps")
    box.fill("3")
    box.press("Enter")
    wait_until_idle(page)
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Homologs")
    uploader.locator('input[type="file"]').set_input_files(a3m)
    page.get_by_text(a3m.name).wait_for()
    wait_until_idle(page)
    page.get_by_role("button", name="Design", exact=True).click()
    family_plot = page.locator(".js-plotly-plot").filter(has_text="Family score")
    family_plot.wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Download FASTA").wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert family_plot.evaluate("plot => plot.data.map(trace => trace.x.length)") == [3, 3]
    family_plot.get_by_text("recognised (E < 0.001)").wait_for()
    page.get_by_text("trained now and cached").wait_for()
    screenshot(page, "family-design-results.png")

    records = downloaded_fasta(page, tmp_path)
    assert len(records) == 3
    for record in records:
        fields = dict(part.split("=", 1) for part in record.description.split())
        assert fields["homologs"] == a3m.name and len(fields["adapted"]) == 16
        float(fields["family_bits"])  # a number (nan where the profile finds no hit)
        assert 0 <= float(fields["nearest_identity"]) <= 1
        assert record.sequence[9:20] == query[9:20]
