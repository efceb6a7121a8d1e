"""--engine ray: on a local Ray cluster, imputation and design equal the local engine's at the same seed."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from seqdiff.cli import main
from seqdiff.ray_engine import read_rows, start_local_cluster
from seqdiff.tabular.files import read_table
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.tabular.stream import impute_file
from seqdiff.tabular.writing import write_table

ROOT = Path(__file__).resolve().parents[1]
MASKED_FASTA = ROOT / "data" / "examples" / "masked.fasta"
TINY = {"dim": 32, "n_layers": 1, "n_heads": 2, "batch_rows": 128, "max_steps": 60, "device": "cpu"}


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU, no-GPU Ray cluster for this module, started as the engine starts one; the engine uses
    it as it is (and leaves it running)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    handler = signal.getsignal(signal.SIGTERM)
    start_local_cluster(num_cpus=2, num_gpus=0, log_to_driver=False)
    yield ray
    ray.shutdown()
    signal.signal(signal.SIGTERM, handler)  # Ray's would turn a SIGTERM to pytest into a failed test


def test_a_cluster_the_engine_started_gives_the_process_its_signal_handlers_back(tmp_path: Path) -> None:
    """In a process of its own (this module's cluster is running): after ``ray_cluster``, SIGTERM ends
    the process as it did before, instead of raising SystemExit wherever it lands."""
    pytest.importorskip("ray.data")
    script = (
        "import signal\n"
        "from seqdiff.ray_engine import ray_cluster\n"
        "before = signal.getsignal(signal.SIGTERM)\n"
        "with ray_cluster() as ray:\n"
        "    assert signal.getsignal(signal.SIGTERM) is not before  # Ray's own, while it runs\n"
        "assert signal.getsignal(signal.SIGTERM) is before\n"
        "print('restored')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "restored", done.stderr[-2000:]


@pytest.fixture(scope="module")
def holed_adult(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 rows of adult with 30% of the cells of every column but `split` missing, in 3 row groups;
    rows 6 and 1,501 blank."""
    table = pq.read_table(shared / "tabular" / "adult.parquet").slice(0, 2000).drop_columns(["split"])
    rng = np.random.default_rng(0)
    blank = np.isin(np.arange(table.num_rows), [5, 1500])
    columns = [
        pc.if_else(pa.array((rng.random(table.num_rows) < 0.3) | blank), None, c) for c in table.columns
    ]
    path = tmp_path_factory.mktemp("adult") / "adult_holed.parquet"
    pq.write_table(pa.Table.from_arrays(columns, schema=table.schema), path, row_group_size=700)
    return path


@pytest.fixture(scope="module")
def adult_model(holed_adult: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "adult"
    MaskedDiffusionImputer(seed=0, **TINY).fit(pq.read_table(holed_adult)).save(folder)
    return folder


def test_read_rows_across_row_groups(holed_adult: Path) -> None:
    whole = pq.read_table(holed_adult)
    parquet = pq.ParquetFile(holed_adult)
    for first, rows in [(0, 512), (512, 512), (650, 100), (1536, 464), (1999, 1)]:
        assert read_rows(parquet, first, rows).equals(whole.slice(first, rows))


@pytest.mark.slow
def test_ray_imputation_equals_local(
    ray_cluster, holed_adult: Path, adult_model: Path, tmp_path: Path
) -> None:
    from seqdiff.ray_engine import impute_file_ray

    imputer = MaskedDiffusionImputer.load(adult_model, device="cpu")
    local, distributed, cli = tmp_path / "local.parquet", tmp_path / "ray.parquet", tmp_path / "cli.parquet"
    report = impute_file(holed_adult, local, imputer, batch_rows=512)
    ray_report = impute_file_ray(holed_adult, distributed, imputer, batch_rows=512, actors=2)
    counts = (report.rows, report.imputed_cells, report.blank_rows)
    assert (ray_report.rows, ray_report.imputed_cells, ray_report.blank_rows) == counts
    assert report.rows == 2000 and report.imputed_cells > 0.25 * 2000 * 15 and report.blank_rows == 2
    holed, expected, got = pq.read_table(holed_adult), pq.read_table(local), pq.read_table(distributed)
    assert got.equals(expected) and got.schema.equals(holed.schema, check_metadata=True)
    assert got.slice(1500, 1).equals(holed.slice(1500, 1))  # a blank row, left blank
    assert distributed.read_bytes() == local.read_bytes()  # the same row groups, byte for byte
    for name in holed.column_names:
        observed = pc.is_valid(holed.column(name))
        assert got.column(name).filter(observed).equals(holed.column(name).filter(observed))
        assert got.column(name).null_count == 2  # the blank rows
    # The CLI with a saved model, 3 actors: the same file again; the input is left alone.
    before = holed_adult.read_bytes()
    args = [
        "impute",
        str(holed_adult),
        "-o",
        str(cli),
        "--checkpoint",
        str(adult_model),
        "--batch-rows",
        "512",
    ]
    assert main([*args, "--engine", "ray", "--actors", "3", "--device", "cpu"]) == 0
    assert cli.read_bytes() == local.read_bytes() and holed_adult.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
    # CSV outputs with 2 draws kept: the same text from both engines.
    imputer.set_params(point="draws", sampling_steps=2)
    impute_file(holed_adult, tmp_path / "local.csv", imputer, batch_rows=512, n_samples=2, keep_draws=True)
    ray_report = impute_file_ray(
        holed_adult, tmp_path / "ray.csv", imputer, batch_rows=512, actors=2, n_samples=2, keep_draws=True
    )
    for name in ("", ".draw1", ".draw2"):
        ray_csv, local_csv = tmp_path / f"ray{name}.csv", tmp_path / f"local{name}.csv"
        assert ray_csv.read_bytes() == local_csv.read_bytes()
        assert read_table(ray_csv).num_rows == 2000
    assert ray_report.draws == [str(tmp_path / "ray.draw1.csv"), str(tmp_path / "ray.draw2.csv")]


@pytest.mark.slow
def test_ray_design_equals_local(ray_cluster, tiny_protein_model: Path, tmp_path: Path) -> None:
    # 2 inputs of 56 and 20 residues, 3 designs each, 4 jobs per unit: a unit mixes lengths (padding).
    common = [str(MASKED_FASTA), "-n", "3", "--steps", "8", "--seed", "5", "--batch-size", "4"]
    common += ["--checkpoint", str(tiny_protein_model), "--device", "cpu"]
    runs = {}
    for engine in ("local", "ray"):
        out, per_position = tmp_path / f"{engine}.fasta", tmp_path / f"{engine}.parquet"
        argv = ["design", *common, "-o", str(out), "--per-position", str(per_position), "--engine", engine]
        assert main(argv) == 0
        runs[engine] = (out.read_text(), pq.read_table(per_position))
    assert runs["ray"][0] == runs["local"][0] and runs["ray"][0].count(">") == 6
    assert runs["ray"][1].equals(runs["local"][1])
    # Streamed (no --per-position) and ranked outputs too.
    for extra in ([], ["--rank-by", "nelbo"]):
        outs = []
        for engine in ("local", "ray"):
            out = tmp_path / f"{engine}-{len(extra)}.fasta"
            assert main(["design", *common, "-o", str(out), "--engine", engine, *extra]) == 0
            outs.append(out.read_text())
        assert outs[0] == outs[1]


def test_ray_design_with_a_family_guide_equals_local(ray_cluster, tiny_protein_model: Path) -> None:
    """The guide travels to the actors with the settings: the same guided designs on both engines."""
    from seqdiff.protein.design import design, plan_from_records
    from seqdiff.protein.family import FamilyProfile
    from seqdiff.protein.homologs import Homologs
    from seqdiff.protein.io import ProteinRecord
    from seqdiff.protein.profile_guide import ProfileGuide
    from seqdiff.ray_engine import design_ray

    rows = ("MKTAYIAKQRQISFVKSHFSRQ", "MKSAYIAKQRNISFVKSHFSRQ", "MRTAYIAKQRQVSFVKAHFSKQ")
    profile = FamilyProfile.from_homologs(Homologs("toy", ("a", "b", "c"), rows, rows, True))
    guide = ProfileGuide.from_hmm(profile.hmm, rows[0], weight=3.0)
    jobs = plan_from_records([ProteinRecord("toy", "", rows[0])], fix="1-5", n=4)
    options = {"checkpoint": str(tiny_protein_model), "steps": 8, "seed": 2, "batch_size": 2, "device": "cpu"}
    local = [d.sequence for d in design(jobs, **options, prior=guide)]
    remote = [d.sequence for d in design_ray(jobs, **options, prior=guide)]
    unguided = [d.sequence for d in design(jobs, **options)]
    assert remote == local and local != unguided


@pytest.mark.parametrize("command", ["impute", "design"])
def test_engine_ray_without_ray_is_one_line_error(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    # A None entry in sys.modules makes `import ray` raise ImportError, as when Ray is not installed.
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    if command == "impute":
        source = tmp_path / "t.parquet"
        pq.write_table(pa.table({"a": [1.0, None]}), source)
        argv = ["impute", str(source), "-o", str(tmp_path / "out.parquet"), "--engine", "ray"]
    else:
        argv = ["design", str(MASKED_FASTA), "-o", str(tmp_path / "out.fasta"), "--engine", "ray"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["seqdiff: error: --engine ray needs Ray: pip install 'seqdiff[ray]' (or 'ray[data]')"]
    assert not list(tmp_path.glob("out.*"))


@pytest.mark.parametrize("name", ["t.csv", "t.xlsx"])
def test_engine_ray_refuses_a_file_it_cannot_read_before_any_fit(
    name: str, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    source = tmp_path / name
    write_table(pa.table({"a": [1.0, None, 3.0] * 20, "b": ["x", "y", None] * 20}), source)
    assert main(["impute", str(source), "-o", str(tmp_path / "out.parquet"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"seqdiff: error: {source}: --engine ray reads Parquet; convert the file or use --engine local"
    ]
    assert not list(tmp_path.glob("out.*"))


@pytest.mark.slow
def test_ray_error_in_an_actor_is_one_line(
    ray_cluster, tiny_protein_model: Path, tmp_path: Path, capsys
) -> None:
    fasta = tmp_path / "long.fasta"
    fasta.write_text(">long\n" + "_" * 600 + "\n")  # the tiny model takes 512 residues at most
    out = tmp_path / "out.fasta"
    argv = ["design", str(fasta), "--checkpoint", str(tiny_protein_model), "--steps", "2", "--device", "cpu"]
    assert main([*argv, "--engine", "ray", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip().splitlines()[-1]
        == "seqdiff: error: record 'long': length 600 exceeds the model's maximum of 512"
    )
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.slow
def test_ray_run_without_progress_ends_with_one_line(
    ray_cluster, tiny_protein_model: Path, tmp_path: Path, capsys
) -> None:
    # Actors that need a GPU on a cluster without one never start: the run ends after --ray-timeout.
    out = tmp_path / "out.fasta"
    argv = ["design", str(MASKED_FASTA), "--checkpoint", str(tiny_protein_model), "--steps", "2", "-n", "3"]
    argv += ["--batch-size", "4", "--engine", "ray", "-o", str(out)]
    assert main([*argv, "--device", "cuda", "--ray-timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "seqdiff: error: --engine ray: no progress in 5 s waiting for unit 1 of 2 (jobs 1-4) from 2 actor(s) "
        "needing 0.5 CPU, 1 GPU each (the cluster has 2 CPU, 0 GPU); raise --ray-timeout, or 0 to wait forever"
    )
    assert "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    # The cluster is left usable: the next run (default --ray-timeout) works.
    assert main([*argv, "--device", "cpu"]) == 0
    assert out.read_text().count(">") == 6
