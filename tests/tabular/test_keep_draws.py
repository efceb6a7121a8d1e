"""``seqdiff impute --samples K --keep-draws``: the K draws behind the pooled estimate, each written as
a completed table (multiple imputation), streamed like the estimate and equal to `transform_samples`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seqdiff.tabular.files import read_table
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.stream import draw_paths, impute_file
from tests.tabular.test_imputer import TINY, complete_table, holed_table
from tests.test_bad_input import assert_one_line_error, seqdiff


@pytest.fixture(scope="module")
def holed() -> pa.Table:
    table = pa.Table.from_pandas(holed_table(complete_table(300)), preserve_index=False)
    return table.drop_columns(["tags", "when"])


@pytest.fixture(scope="module")
def fitted(holed: pa.Table) -> MaskedDiffusionImputer:
    return MaskedDiffusionImputer(max_steps=60, point="draws", sampling_steps=2, **TINY).fit(holed)


def test_the_draws_are_transform_samples_and_the_estimate_is_unchanged(
    fitted: MaskedDiffusionImputer, holed: pa.Table, tmp_path: Path
) -> None:
    src = tmp_path / "holed.parquet"
    pq.write_table(holed, src)
    out, alone = tmp_path / "filled.parquet", tmp_path / "alone.parquet"
    report = impute_file(src, out, fitted, batch_rows=37, n_samples=3, keep_draws=True)
    impute_file(src, alone, fitted, batch_rows=37, n_samples=3)
    assert report.draws == [str(p) for p in draw_paths(out, 3)]
    assert [Path(p).name for p in report.draws] == [f"filled.draw{k}.parquet" for k in (1, 2, 3)]
    assert pq.read_table(out).equals(pq.read_table(alone))
    expected = fitted.transform_samples(holed, 3)
    drawn = [pq.read_table(p) for p in report.draws]
    for got, want in zip(drawn, expected, strict=True):
        assert got.equals(want)
        assert got.schema.equals(holed.schema)
        for name in holed.column_names:
            observed = holed.column(name).is_valid()
            assert got.column(name).filter(observed).equals(holed.column(name).filter(observed))
            assert got.column(name).null_count == 0
    assert not drawn[0].equals(drawn[1])  # the draws differ where cells were missing


def test_the_cli_writes_csv_draws_and_refuses_bad_requests(
    fitted: MaskedDiffusionImputer, holed: pa.Table, tmp_path: Path
) -> None:
    src, model = tmp_path / "t.parquet", tmp_path / "model"
    pq.write_table(holed, src)
    fitted.save(model)
    out = tmp_path / "t.filled.csv"
    run = seqdiff(
        "impute", str(src), "-o", str(out), "--checkpoint", str(model), "--samples", "2", "--keep-draws"
    )
    assert run.returncode == 0, run.stderr
    assert "2 draws, each a completed table" in run.stderr
    for path in draw_paths(out, 2):
        assert read_table(path).num_rows == holed.num_rows and read_table(path).column("y").null_count == 0

    before = sorted(p.name for p in tmp_path.iterdir())
    no_samples = seqdiff(
        "impute", str(src), "-o", str(tmp_path / "x.csv"), "--checkpoint", str(model), "--keep-draws"
    )
    assert_one_line_error(no_samples, "--keep-draws", "--samples")
    draw_src = tmp_path / "u.draw1.parquet"
    pq.write_table(holed, draw_src)
    clash = seqdiff(
        "impute", str(draw_src), "-o", str(tmp_path / "u.parquet"), "--checkpoint", str(model),
        "--samples", "2", "--keep-draws",
    )  # fmt: skip
    assert_one_line_error(clash, "u.draw1.parquet", "would overwrite the input")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "u.draw1.parquet"])


def test_the_seed_keys_the_draws_of_a_saved_model(
    fitted: MaskedDiffusionImputer, holed: pa.Table, tmp_path: Path
) -> None:
    src, model = tmp_path / "t.parquet", tmp_path / "model"
    pq.write_table(holed, src)
    fitted.save(model)
    outputs = {}
    for name, seed in [("a", "0"), ("b", "7"), ("c", "7")]:
        out = tmp_path / f"{name}.parquet"
        run = seqdiff(
            "impute", str(src), "-o", str(out), "--checkpoint", str(model), "--samples", "1", "--seed", seed
        )
        assert run.returncode == 0, run.stderr
        outputs[name] = pq.read_table(out)
    assert not outputs["a"].equals(outputs["b"]) and outputs["b"].equals(outputs["c"])
