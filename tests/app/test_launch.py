"""``seqdiff.app_launch``: the command that serves the app, and its errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from seqdiff import app_launch
from seqdiff.errors import SeqdiffError


def test_command_serves_home_with_the_upload_limit() -> None:
    command = app_launch.app_command("0.0.0.0", 8600, headless=False)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(app_launch.APP_DIR / "Home.py")]
    flags = dict(zip(command[5::2], command[6::2], strict=True))
    assert flags == {
        "--server.address": "0.0.0.0",
        "--server.port": "8600",
        "--server.headless": "false",
        "--browser.gatherUsageStats": "false",
        "--server.maxUploadSize": "20",
    }


def test_launch_returns_streamlit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_run(command: list[str], check: bool) -> subprocess.CompletedProcess:
        calls.append(command)
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert app_launch.launch(port=8601) == 3
    assert calls == [app_launch.app_command(port=8601)]


def test_missing_app_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(app_launch, "APP_DIR", tmp_path / "app")
    with pytest.raises(SeqdiffError, match="ships with the source checkout"):
        app_launch.app_command()


def test_bad_port_is_an_error() -> None:
    with pytest.raises(SeqdiffError, match="port 70000"):
        app_launch.app_command(port=70000)
