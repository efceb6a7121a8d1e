"""Helpers shared by the app's pages: the model folder, cached model loading, uploads, downloads,
errors."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from seqdiff.app_launch import MAX_UPLOAD_MB
from seqdiff.core.bundle import WEIGHTS, load_bundle
from seqdiff.errors import SeqdiffError
from seqdiff.protein.model import default_model_path, load_protein_model

MODEL_ENV = "SEQDIFF_MODEL"
PARQUET_MIME = "application/vnd.apache.parquet"
_LOADERS: dict[str, Callable] = {"protein": load_protein_model, "bundle": load_bundle}


def default_model_folder() -> str:
    """``$SEQDIFF_MODEL`` when set, else the shipped default protein model."""
    return os.environ.get(MODEL_ENV) or str(default_model_path())


def _remember_model_folder() -> None:
    st.session_state.model_folder = st.session_state.model_folder_input.strip()


def model_folder() -> str:
    """The model folder typed in the sidebar; every page shows the same choice."""
    # Streamlit forgets a widget's value on pages that do not draw it, so the choice lives under
    # a plain key, is copied into the widget before it is drawn and back when the user edits it.
    st.session_state.setdefault("model_folder", default_model_folder())
    st.session_state.model_folder_input = st.session_state.model_folder
    st.sidebar.text_input(
        "Model folder",
        key="model_folder_input",
        on_change=_remember_model_folder,
        help=f"A seqdiff model bundle (config.json + model.safetensors). Default: ${MODEL_ENV} "
        "or the shipped protein model.",
    )
    return st.session_state.model_folder


def is_default_model(folder: str) -> bool:
    """Whether ``folder`` is the shipped default model."""
    return Path(folder).resolve() == default_model_path().resolve()


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load(kind: str, folder: str, stamp: float) -> tuple:
    return _LOADERS[kind](folder)


def load_model(kind: str, folder: str) -> tuple:
    """A cached ``load_protein_model`` (kind "protein") or ``load_bundle`` (kind "bundle") of ``folder``.

    The cache is keyed on the weights' modification time too, so a retrained model is reloaded.
    """
    try:
        stamp = (Path(folder) / WEIGHTS).stat().st_mtime
    except OSError:
        stamp = 0.0
    return _load(kind, folder, stamp)


@contextmanager
def user_errors(stop: bool = True) -> Iterator[None]:
    """Show a SeqdiffError raised in the block as ``st.error``; then end this run of the page,
    or with ``stop=False`` go on after the block (whose remaining statements are skipped)."""
    try:
        yield
    except SeqdiffError as err:
        st.error(str(err), icon=":material/error:")
        if stop:
            st.stop()


@contextmanager
def as_file(name: str, data: bytes) -> Iterator[Path]:
    """``data`` as a file called ``name`` in a temporary folder, for the same readers as the CLI.

    Uploads over the size limit are refused, and error messages name the file, not the folder.
    """
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise SeqdiffError(
            f"{name}: {len(data) / 2**20:.1f} MB is over the upload limit of {MAX_UPLOAD_MB} MB"
        )
    with tempfile.TemporaryDirectory(prefix="seqdiff-app-") as folder:
        path = Path(folder) / (Path(name).name or "upload")
        path.write_bytes(data)
        try:
            yield path
        except SeqdiffError as err:
            raise SeqdiffError(str(err).replace(f"{folder}{os.sep}", "")) from None


def written_bytes(write: Callable[[Path], None], name: str) -> bytes:
    """The bytes that ``write(path)`` puts in a file called ``name`` (for download buttons)."""
    with tempfile.TemporaryDirectory(prefix="seqdiff-app-") as folder:
        path = Path(folder) / name
        write(path)
        return path.read_bytes()


@dataclass(frozen=True)
class Download:
    """One download button: its label, the bytes, the file name, the MIME type, the widget key, help."""

    label: str
    data: bytes
    file_name: str
    mime: str
    key: str
    help: str | None = None


def download_buttons(downloads: list[Download]) -> None:
    """The downloads side by side; a click downloads without rerunning the page."""
    for place, d in zip(st.columns(len(downloads)), downloads, strict=True):
        place.download_button(
            d.label, d.data, file_name=d.file_name, mime=d.mime, on_click="ignore", key=d.key, help=d.help
        )
