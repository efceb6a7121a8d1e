"""The tabular benchmark on a small real table: scores in range, resume keeps cells, --redo recomputes."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipelines.bench_tabular import main  # noqa: E402


@pytest.mark.slow
def test_grid_resume_and_redo(tmp_path: Path, shared: Path) -> None:
    out = tmp_path / "grid.json"
    base = ["--out", str(out), "--datasets", "california", "--rows", "400", "--max-steps", "30"]
    base += ["--fidelity-rows", "200"]
    main([*base, "--mechanisms", "mcar", "--methods", "mean", "seqdiff-md4"])
    first = json.loads(out.read_text())
    cells = {(r["mechanism"], r["method"]): r for r in first["imputation"]}
    assert set(cells) == {("mcar", "mean"), ("mcar", "seqdiff-md4")}
    for r in cells.values():
        assert 0 < r["mae"] < 1.5 and 0 <= r["accuracy"] <= 1 and r["rows"] == 400
        per_column = r["per_column"]
        assert per_column["ocean_proximity"]["kind"] == "categorical"
        assert per_column["ocean_proximity"]["n"] == r["n_categorical"]  # California's one categorical column
        assert sum(c["n"] for c in per_column.values() if c["kind"] == "numeric") == r["n_numeric"]
        pooled = (
            sum(c["mae"] * c["n"] for c in per_column.values() if c["kind"] == "numeric") / r["n_numeric"]
        )
        assert pooled == pytest.approx(r["mae"])
    assert "### california, mcar" in out.with_suffix(".md").read_text()
    assert [f["source"] for f in first["fidelity"]] == ["seqdiff-md4", "marginals"]
    assert first["settings"]["numeric_point"] == "median" and first["settings"]["early_stopping"]
    assert cells["mcar", "seqdiff-md4"]["training"]["best_step"] <= 30  # on by default
    assert cells["mcar", "seqdiff-md4"]["training"]["weighting"] == "uniform"  # "auto" with MD4

    # Resuming with another mechanism keeps the MCAR cells as they are and adds no fidelity rows.
    main([*base, "--mechanisms", "mar", "--methods", "mean", "seqdiff-md4", "--resume"])
    second = json.loads(out.read_text())
    assert second["imputation"][:2] == first["imputation"] and len(second["imputation"]) == 4
    assert second["fidelity"] == first["fidelity"]

    # --redo recomputes only the named cells (here with the mean as the numeric estimate, no early stopping).
    main(
        [
            *base,
            "--mechanisms",
            "mcar",
            "--methods",
            "seqdiff-md4",
            "--resume",
            "--redo",
            "--numeric-point",
            "mean",
            "--no-early-stopping",
            "--loss-weighting",
            "elbo",
            "--precision",
            "32-true",
        ]
    )
    third = json.loads(out.read_text())
    redone = [r for r in third["imputation"] if (r["mechanism"], r["method"]) == ("mcar", "seqdiff-md4")]
    assert len(redone) == 1 and redone[0]["mae"] != cells["mcar", "seqdiff-md4"]["mae"]
    assert "best_step" not in redone[0]["training"] and not third["settings"]["early_stopping"]
    assert redone[0]["training"]["weighting"] == "elbo" and third["settings"]["loss_weighting"] == "elbo"
    assert redone[0]["training"]["precision"] == third["settings"]["precision"] == "32-true"
    assert len(third["imputation"]) == 4 and len(third["fidelity"]) == 2


def test_seqdiff_trains_on_the_threads_given(tmp_path: Path, shared: Path) -> None:
    """Only BLAS is held to one thread: torch's pool (OpenMP) keeps --threads."""
    import torch

    out = tmp_path / "grid.json"
    threads = torch.get_num_threads()
    try:
        main(
            ["--out", str(out), "--datasets", "magic", "--rows", "200", "--mechanisms", "mcar"]
            + ["--methods", "seqdiff-md4", "--threads", "2", "--max-steps", "3", "--fidelity-rows", "10"]
        )
    finally:
        torch.set_num_threads(threads)
    assert json.loads(out.read_text())["imputation"][0]["torch_threads"] == 2


@pytest.mark.slow
def test_every_method_gets_the_same_cores(
    tmp_path: Path, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--threads reaches MissForest's trees (n_jobs) as well as seqdiff's torch threads, and is recorded;
    the trees' results do not depend on it."""
    import torch

    from pipelines import bench_tabular

    calls = []
    real = bench_tabular.BASELINES["missforest"]

    @functools.wraps(real)  # the benchmark reads the method's signature to know it takes n_jobs
    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setitem(bench_tabular.BASELINES, "missforest", spy)
    out = tmp_path / "grid.json"
    base = ["--out", str(out), "--datasets", "california", "--rows", "300", "--mechanisms", "mcar"]
    threads = torch.get_num_threads()
    try:
        main([*base, "--methods", "missforest", "--threads", "1"])
        first = json.loads(out.read_text())
        main([*base, "--methods", "missforest", "--threads", "2", "--resume", "--redo"])
        second = json.loads(out.read_text())
    finally:
        torch.set_num_threads(threads)
    assert [c["n_jobs"] for c in calls] == [1, 2]
    assert first["settings"]["threads"] == 1 and second["settings"]["threads"] == 2
    assert "threads=2" in out.with_suffix(".md").read_text()
    # Equal up to rounding: with n_jobs=2 sklearn's forest sums its trees' predictions in thread order.
    assert second["imputation"][0]["mae"] == pytest.approx(first["imputation"][0]["mae"], rel=1e-12)


def test_resume_renames_the_old_missforest_cells(tmp_path: Path, shared: Path) -> None:
    # Files written before the reference settings hold the all-features variant as "missforest".
    out = tmp_path / "old.json"
    base = ["--out", str(out), "--datasets", "california", "--rows", "300", "--mechanisms", "mcar"]
    main([*base, "--methods", "mean"])
    old = json.loads(out.read_text())
    old.pop("missforest")
    old["imputation"].append({**old["imputation"][0], "method": "missforest"})
    out.write_text(json.dumps(old))
    main([*base, "--methods", "mean", "knn", "--resume"])
    methods = [r["method"] for r in json.loads(out.read_text())["imputation"]]
    assert methods == ["mean", "missforest-all-features", "knn"]
