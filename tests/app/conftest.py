"""Fixtures for the app tests: tiny untrained protein models (an MD4 one, and a GenMD4 one with a
card), a small table with holes, and for the browser tests the served app, a Chromium page and
screenshots."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
import torch

from seqdiff.app_launch import APP_DIR, app_command
from seqdiff.core.bundle import ModelSpec, build_model, save_bundle
from seqdiff.protein.model import protein_spec
from seqdiff.training.config import ModelConfig

if TYPE_CHECKING:
    from playwright.sync_api import Page

EXTRA = {"modality": "protein", "alphabet": "ESM-1b"}
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
VIEWPORT = {"width": 1400, "height": 1000}
START_TIMEOUT_S = 120


def tiny_spec(schedule: str) -> ModelSpec:
    return protein_spec(ModelConfig(dim=32, n_layers=1, n_heads=2, schedule=schedule))


@pytest.fixture(scope="session")
def md4_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = tiny_spec("linear")
    return save_bundle(tmp_path_factory.mktemp("md4"), build_model(spec), spec, EXTRA)


@pytest.fixture(scope="session")
def genmd4_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Distinct per-token rates (so their order is testable), a README and a training record."""
    spec = tiny_spec("genmd4")
    model = build_model(spec)
    with torch.no_grad():
        model.schedule.w_raw.copy_(torch.linspace(-2.0, 2.0, model.schedule.w_raw.numel()))
    folder = save_bundle(tmp_path_factory.mktemp("genmd4"), model, spec, {**EXTRA, "training": {"step": 7}})
    (folder / "README.md").write_text("# Tiny test model\n\nUntrained.\n")
    return folder


@pytest.fixture(scope="session")
def holed_table() -> pd.DataFrame:
    """120 rows: numeric a and b, c = a + b, a categorical colour; about 15% of the cells missing."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=120).round(3), rng.normal(size=120).round(3)
    table = pd.DataFrame({"a": a, "b": b, "c": (a + b).round(3), "colour": rng.choice(["red", "blue"], 120)})
    return table.mask(rng.random(table.shape) < 0.15)


@pytest.fixture(scope="session")
def family_homologs(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A gzipped A3M of the 1PRW family's first 40 rows (the first row is the query), and the query."""
    with gzip.open(shared / "protein/family/evodiff_scaffold_msas/1prw.a3m.gz", "rt") as source:
        records = source.read().split(">")[1:41]
    path = tmp_path_factory.mktemp("family") / "1prw_small.a3m.gz"
    with gzip.open(path, "wt") as out:
        out.write("".join(">" + record for record in records))
    query = "".join(records[0].splitlines()[1:]).replace("-", "")
    return path, query


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


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def serve_app(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], str]]:
    """``serve_app(env)`` serves the app on a free local port with these extra environment variables
    and returns its URL; every server started is stopped after the test."""
    servers: list[subprocess.Popen] = []

    def start(env: dict[str, str]) -> str:
        port = free_port()
        log = tmp_path / f"streamlit-{port}.log"
        with log.open("w") as out:
            server = subprocess.Popen(
                app_command(port=port), env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )
        servers.append(server)
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, server, log)
        return url

    try:
        yield start
    finally:
        for server in servers:
            stop(server)


@pytest.fixture
def browser_page() -> Iterator[Page]:
    """A page of headless Chromium (Debian's, driven by Playwright) that accepts downloads."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (run 'make system-deps')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
            # A loaded 2-core CI machine can take well over Playwright's default 30 s per step.
            page.set_default_timeout(120_000)
            yield page
        finally:
            browser.close()


IDLE_FOR_MS = 1000


def _wait_until_idle(page: Page) -> None:
    """Wait until the app's script has not been running for IDLE_FOR_MS.

    A widget change reaches the server only after a moment, so a single 'not running' reading can
    come before the rerun it causes. A file uploaded while a rerun redraws the page can be lost."""
    page.evaluate("window.idleSince = undefined")
    page.wait_for_function(
        """quietMs => {
            const app = document.querySelector('[data-testid="stApp"]');
            if (app?.dataset.testScriptState !== "notRunning") {
                window.idleSince = undefined;
                return false;
            }
            window.idleSince ??= performance.now();
            return performance.now() - window.idleSince >= quietMs;
        }""",
        arg=IDLE_FOR_MS,
        polling=100,
    )


def _screenshot(page: Page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its own container, so the window grows to fit it."""
    height = page.locator('[data-testid="stMain"]').evaluate("main => main.scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(height, VIEWPORT["height"])})
    page.wait_for_timeout(500)  # Plotly re-lays out its charts after the resize.
    path = ARTIFACTS / name
    page.screenshot(path=path)
    page.set_viewport_size(VIEWPORT)
    return path


@pytest.fixture
def wait_until_idle() -> Callable[[Page], None]:
    """``wait_until_idle(page)`` waits until the app has finished its reruns."""
    return _wait_until_idle


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """``screenshot(page, name)`` saves the whole page to test-artifacts/NAME."""
    ARTIFACTS.mkdir(exist_ok=True)
    return _screenshot
