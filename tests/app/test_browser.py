"""End to end in a real browser: Debian's Chromium, driven by Playwright, uses the served app.

Screenshots go to test-artifacts/ at the repository root.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from seqdiff.app_launch import APP_DIR, app_command
from seqdiff.protein.io import read_sequences

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = APP_DIR.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
FIXED = [*range(0, 5), *range(19, 24)]
VIEWPORT = {"width": 1400, "height": 1000}
START_TIMEOUT_S = 120
RUN_TIMEOUT_MS = 180_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (run 'make browser-deps')"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll Streamlit's health check until it answers; fail early if the server died."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the app exited with status {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def screenshot(page: Page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its own container, so the window grows to fit it."""
    height = page.locator('[data-testid="stMain"]').evaluate("main => main.scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(height, 1000)})
    page.wait_for_timeout(500)  # Plotly re-lays out its charts after the resize.
    page.screenshot(path=ARTIFACTS / name)
    page.set_viewport_size(VIEWPORT)


@pytest.fixture
def app_url(genmd4_model: Path, tmp_path: Path) -> Iterator[str]:
    """The app served on a free local port with the tiny GenMD4 model; stopped afterwards."""
    port = free_port()
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "SEQDIFF_MODEL": str(genmd4_model)}
    with log.open("w") as out:
        server = subprocess.Popen(app_command(port=port), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(url, server, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def test_design_page_end_to_end(app_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
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
        finally:
            browser.close()
