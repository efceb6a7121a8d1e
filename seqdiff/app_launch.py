"""Start the Streamlit app (``seqdiff app``): the app lives in ``app/`` of the source checkout.

``launch(port=8600)`` serves it at http://127.0.0.1:8600 until Ctrl-C; ``app_command`` is the command
line it runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seqdiff.errors import SeqdiffError

APP_DIR = Path(__file__).resolve().parent.parent / "app"
MAX_UPLOAD_MB = 20


def app_command(address: str = "127.0.0.1", port: int = 8501, headless: bool = True) -> list[str]:
    """The command line that serves the app on ``address:port``.

    Example:
        >>> command = app_command(port=8600)
        >>> command[1:4], command[command.index("--server.port") + 1]
        (['-m', 'streamlit', 'run'], '8600')
    """
    home = APP_DIR / "Home.py"
    if not home.is_file():
        raise SeqdiffError(
            f"the app is not here ({home} is missing): it ships with the source checkout, "
            "so clone the repository and install it with 'pip install -e .'"
        )
    if not 1 <= port <= 65535:
        raise SeqdiffError(f"port {port}: choose a port from 1 to 65535")
    return [
        sys.executable, "-m", "streamlit", "run", str(home),
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", str(headless).lower(),
        "--browser.gatherUsageStats", "false",
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
    ]  # fmt: skip


def launch(address: str = "127.0.0.1", port: int = 8501, headless: bool = True) -> int:
    """Serve the app in the foreground until it stops; return Streamlit's exit status.

    It runs ``app_command(address, port, headless)``: ``launch(port=8600)`` serves the app at
    http://127.0.0.1:8600 until Ctrl-C (exit status 130).
    """
    command = app_command(address, port, headless)
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        # Streamlit got the same Ctrl-C and shuts itself down; 130 is the shell's code for it.
        return 130
