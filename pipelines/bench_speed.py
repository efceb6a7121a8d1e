"""Speed on one machine: training throughput against the machine's matmul peak (float32 and bf16
autocast), padding waste, sampling (masked diffusion with and without MDLM's cache, against the
autoregressive baseline with a KV cache), pairwise sequence identity (numba against numpy), the table
imputer's training steps per second (float32 and bf16; on every benchmark table), the CPU attention
kernels by precision, and the training input pipeline alone on one thread (``--sections loader``).
All figures come from one run, so the ratios are fair.

Usage:
    .venv/bin/python pipelines/bench_speed.py --out pipelines/results/speed.json \\
        [--ar runs/protein-ar-baseline/model] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from itertools import islice
from pathlib import Path

import numba
import numpy as np
import torch
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity

from pipelines.protein_metrics import best_diagonal_identity_numpy, pairwise_identity
from seqdiff.atomic import atomic_path
from seqdiff.core.bundle import build_model
from seqdiff.core.denoiser import FEW_KEYS, SHORT_ATTENTION, explicit_attention, written_out_softmax
from seqdiff.core.device import resolve_device
from seqdiff.core.evaluation import evaluate_nelbo
from seqdiff.core.noise import KeyedNoise
from seqdiff.core.sampling import sample
from seqdiff.protein import alphabet
from seqdiff.protein.io import iter_sequences
from seqdiff.protein.model import ProteinAdapter, load_protein_model, protein_spec
from seqdiff.tabular.files import read_table
from seqdiff.tabular.imputer import MaskedDiffusionImputer
from seqdiff.training.config import ModelConfig
from seqdiff.training.data import SequenceDataModule
from seqdiff.training.shards import TokenShard, is_shard

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT.parent / "shared" / "data" / "protein" / "general" / "cath_v4_1_0_S40.train.fasta"
TEST = TRAIN.with_name("cath_v4_1_0_S40.test.fasta")
TABLE = ROOT.parent / "shared" / "data" / "tabular" / "california.parquet"
TABLES = ["adult", "default", "beijing", "magic", "california", "shoppers"]  # the tabular benchmark's
SECTIONS = ["loader", "training", "sampling", "identity", "table", "table_steps", "attention"]
# Training variants: name -> options of training_throughput; reported as training_width320[_name].
# Model shapes by name: (width, layers, heads), those of ESM-2 t6 (8M) and t12 (35M).
SHAPES = {"t6": (320, 6, 20), "t12": (480, 12, 20)}
TRAINING_VARIANTS = {
    "fp32": {},
    "compiled": {"compile": True},
    "bf16": {"bf16": True},
    "bf16_compiled": {"bf16": True, "compile": True},
}


def matmul_peak(
    sizes: tuple[int, ...] = (1024, 2048, 4096),
    repeats: int = 5,
    dtype: torch.dtype = torch.float32,
    device: torch.device = torch.device("cpu"),
) -> float:
    """Dense matmul throughput of this machine (FLOP/s) in ``dtype``: the best of ``repeats`` square
    products at each size (the fastest size differs between machines and thread counts)."""
    best = 0.0
    for n in sizes:
        a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
        a @ b
        for _ in range(repeats):
            _, seconds = timed(partial(torch.matmul, a, b), device)
            best = max(best, 2 * n**3 / seconds)
    return best


def model_flops_per_token(model: torch.nn.Module, length: int) -> float:
    """Training FLOPs per token: 6 x (non-embedding parameters) + attention (12 x layers x dim x length)."""
    cfg = model.denoiser.cfg
    dense = sum(p.numel() for n, p in model.denoiser.named_parameters() if "embed" not in n)
    return 6 * dense + 12 * cfg.n_layers * cfg.dim * length


def random_batch_waste(lengths: list[int], max_tokens: int, seed: int = 0) -> float:
    """Padding fraction when batches are filled in random order under the same token budget."""
    order = np.random.default_rng(seed).permutation(lengths)
    real = padded = 0
    batch: list[int] = []
    for n in list(order) + [None]:
        if n is None or (batch and max(max(batch), n) * (len(batch) + 1) > max_tokens):
            real += sum(batch)
            padded += max(batch) * len(batch)
            batch = []
        if n is not None:
            batch.append(int(n))
    return 1 - real / padded


def endless(loader: Iterable) -> Iterator:
    """The items of ``loader``, epoch after epoch."""
    while True:
        yield from loader


def loader_throughput(seconds: float, max_tokens: int, source: Path = TRAIN, max_len: int = 512) -> dict:
    """The training input pipeline alone, on one thread: real (non-padding) tokens per second of
    length-bucketed, randomly cropped training batches from ``source`` (a FASTA file, tokenised
    before the clock starts, or a prepared shard folder, memory-mapped), for ``seconds``."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    shard = TokenShard.load(source) if is_shard(source) else ProteinAdapter().sequences(str(source))
    prepare_seconds = time.perf_counter() - start
    data = SequenceDataModule(shard, [], alphabet.PAD_ID, max_len=max_len, max_tokens=max_tokens)
    batches = endless(data.train_dataloader())
    real = padded = count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        x, valid = next(batches)
        real += int(valid.sum())
        padded += x.numel()
        count += 1
    elapsed = time.perf_counter() - start
    return {
        "source": source.name if not is_shard(source) else str(source),
        "read_seconds": prepare_seconds,
        "sequences": len(data.train),
        "max_tokens": max_tokens,
        "max_len": max_len,
        "threads": torch.get_num_threads(),
        "batches": count,
        "seconds": elapsed,
        "real_tokens_per_s": real / elapsed,
        "padded_tokens_per_s": padded / elapsed,
        "batches_per_s": count / elapsed,
    }


def training_throughput(
    dim: int,
    layers: int,
    heads: int,
    seconds: float,
    max_tokens: int,
    compile: bool = False,
    bf16: bool = False,
    device: torch.device = torch.device("cpu"),
    profile: bool = False,
) -> dict:
    """Protein training steps on CATH batches for ``seconds``: tokens/s and model FLOP/s, in float32
    or under bf16 autocast (what ``trainer.precision: auto`` picks on a GPU or a CPU with native bf16).
    Batches come from the training data module in the loop, as in training (assembled from the flat
    token array by vectorised indexing; page-locked with a GPU). With ``profile``, 5 more
    steps run under torch.profiler and its table of the most expensive operators is returned as
    ``profile``."""
    data = SequenceDataModule(
        ProteinAdapter().sequences(str(TRAIN)), [], alphabet.PAD_ID, max_tokens=max_tokens
    )
    torch.manual_seed(0)
    model = build_model(protein_spec(ModelConfig(dim=dim, n_layers=layers, n_heads=heads))).to(device)
    if compile:
        model.skip_unscored = False  # as compiled training: no data-dependent shapes
        model.denoiser.compile(dynamic=True)  # batches vary in shape: one graph for all lengths
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    batches = endless(data.train_dataloader())

    def train_step() -> tuple[int, torch.Tensor]:
        """One optimizer step; returns the real tokens and the (padded) batch."""
        x, valid = next(batches)
        real = int(valid.sum())  # on the host, before the copy: no wait for the device
        # Pinned batches (with a GPU): the copy overlaps the previous step's kernels.
        x, valid = x.to(device, non_blocking=True), valid.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = model.losses(x, valid)
        opt.zero_grad()
        (out.objective / out.tokens.sum()).backward()
        opt.step()
        return real, x

    tokens, padded, steps, flops = 0, 0, 0, 0.0
    start = 0.0
    warmup = 3 if compile else 1
    while warmup > 0 or time.perf_counter() - start < seconds:
        real, x = train_step()
        if warmup > 0:  # the first steps warm up allocators and kernels (and compile)
            warmup -= 1
            if warmup == 0:
                synchronize(device)  # the warm-up steps finish before the clock starts
                start = time.perf_counter()
            continue
        steps += 1
        tokens += real
        padded += x.numel()
        flops += model_flops_per_token(model, x.shape[1]) * x.numel()
    synchronize(device)
    elapsed = time.perf_counter() - start
    result = {
        "model": f"{layers} layers, width {dim}, {heads} heads",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "max_tokens": max_tokens,
        "precision": "bf16-mixed" if bf16 else "32-true",
        "steps_per_s": steps / elapsed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": steps,
        "real_tokens_per_s": tokens / elapsed,
        "padded_tokens_per_s": padded / elapsed,
        "model_flops_per_s": flops / elapsed,
        "padding_waste_bucketed": data.train_sampler.padding_waste(),
        "padding_waste_random_batches": random_batch_waste(data.train.lengths.tolist(), max_tokens),
    }
    if profile:
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(5):
                train_step()
            synchronize(device)
        by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        result["profile"] = prof.key_averages().table(sort_by=by, row_limit=25)
        print(result["profile"], flush=True)
    return result


def table_training_speed(
    steps: int, n_bins: int = 128, batch_rows: int = 1024, precision: str = "auto"
) -> dict:
    """``MaskedDiffusionImputer.fit`` on the first 20,000 rows of california (the tabular
    benchmark's larger budget: 128 bins, 1,024-row batches): training steps per second, Lightning
    loop and EMA included. Early stopping is off: its checks are not training steps, and it could end
    the timed run early. The bins are quantile bins alone (``max_bin_width=0``), so the workload is
    the one timed before tail bins were split."""
    table = read_table(TABLE).slice(0, 20_000)
    imputer = MaskedDiffusionImputer(
        n_bins=n_bins,
        max_bin_width=0,
        batch_rows=batch_rows,
        max_steps=steps,
        early_stopping=False,
        precision=precision,
    ).fit(table)
    seconds = 60 * imputer.training_["minutes"]
    return {
        "table": f"{TABLE.name}, {table.num_rows} rows x {table.num_columns} columns",
        "n_bins": n_bins,
        "batch_rows": batch_rows,
        "precision": imputer.training_["precision"],
        "steps": imputer.training_["steps"],
        "fit_seconds": seconds,
        "steps_per_s": imputer.training_["steps"] / seconds,
    }


def table_step_speed(steps: int, repeats: int = 3, tables: Sequence[str] = TABLES) -> dict:
    """The imputer's default fit (32 bins) on the first 20,000 rows of each of ``tables`` (by default
    the tabular benchmark's: 10 to 24 columns), with 256-row batches and with the default batch (at
    least 4,096 cells), alternated ``repeats`` times: the median training steps and rows per second,
    and every run's steps per second."""
    result: dict = {"steps": steps, "repeats": repeats}
    for name in tables:
        table = read_table(TABLE.with_name(f"{name}.parquet")).slice(0, 20_000)
        runs: dict[str, list[float]] = {"256 rows": [], "default": []}
        batch = {}
        for _ in range(repeats):
            for label, batch_rows in (("256 rows", 256), ("default", None)):
                imputer = MaskedDiffusionImputer(max_steps=steps, batch_rows=batch_rows, early_stopping=False)
                training = imputer.fit(table).training_
                runs[label].append(steps / (60 * training["minutes"]))
                batch[label] = training["batch_rows"]
        result[name] = {"columns": table.num_columns}
        for label, rates in runs.items():
            result[name][label] = {
                "batch_rows": batch[label],
                "steps_per_s": float(np.median(rates)),
                "rows_per_s": float(np.median(rates)) * batch[label],
                "all_steps_per_s": rates,
            }
    return result


# heads x head width: the imputer's, the shipped protein model's
ATTENTION_SHAPES = {"table": (4, 16), "protein": (8, 32)}


def attention_speed(lengths: tuple[int, ...], tokens: int = 4096) -> dict:
    """Forward plus backward of CPU attention, per shape, precision and kernel: milliseconds for
    ``tokens`` tokens (batch = tokens / length) at each length. "flash" is what PyTorch's
    ``scaled_dot_product_attention`` picks by default, "math" its reference kernel, "explicit"
    seqdiff's ``explicit_attention`` (two matmuls and a softmax), which ``attention`` uses up to
    ``SHORT_ATTENTION`` keys."""
    kernels = {
        "flash": partial(_sdpa_with, SDPBackend.FLASH_ATTENTION),
        "math": partial(_sdpa_with, SDPBackend.MATH),
        "explicit": lambda q, k, v: explicit_attention(q, k, v, None, 0.0, False),
    }
    result: dict = {
        "setting": f"{tokens} tokens; ms per forward+backward",
        "short_attention": SHORT_ATTENTION,
    }
    for shape, (heads, head_dim) in ATTENTION_SHAPES.items():
        for dtype in (torch.float32, torch.bfloat16):
            for name, kernel in kernels.items():
                key = f"{shape}_{heads}x{head_dim}_{str(dtype).removeprefix('torch.')}_{name}"
                result[key] = {}
                for n in lengths:
                    q, k, v = (
                        torch.randn(tokens // n, heads, n, head_dim, dtype=dtype).requires_grad_()
                        for _ in range(3)
                    )
                    # A dense gradient, as in training: that of .sum() is a broadcast (stride-0)
                    # tensor, on which the backward matmuls take a slow path.
                    grad = torch.randn_like(q)
                    for _ in range(3):  # warm-up
                        kernel(q, k, v).backward(grad)
                    start = time.perf_counter()
                    for _ in range(10):
                        kernel(q, k, v).backward(grad)
                    result[key][str(n)] = (time.perf_counter() - start) / 10 * 1e3
    return result


def softmax_speed(lengths: tuple[int, ...], tokens: int = 5120, heads: int = 4) -> dict:
    """Forward plus backward of the softmax over [tokens / N, heads, N, N] attention scores, float32:
    milliseconds per call of ``written_out_softmax`` (which ``explicit_attention`` uses below
    ``FEW_KEYS`` keys) and of PyTorch's, the median of seven runs of 20 at each length N."""
    kernels = {"written_out": written_out_softmax, "pytorch": lambda s: s.softmax(dim=-1)}
    result: dict = {
        "setting": f"{tokens} tokens, {heads} heads; ms per forward+backward",
        "few_keys": FEW_KEYS,
    }
    for name, kernel in kernels.items():
        result[name] = {}
        for n in lengths:
            scores = torch.randn(tokens // n, heads, n, n, requires_grad=True)
            grad = torch.randn_like(scores)
            runs = []
            for _ in range(7):
                start = time.perf_counter()
                for _ in range(20):
                    kernel(scores).backward(grad)
                runs.append((time.perf_counter() - start) / 20 * 1e3)
            result[name][str(n)] = float(np.median(runs))
    return result


def _sdpa_with(backend: SDPBackend, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    with sdpa_kernel(backend):
        return F.scaled_dot_product_attention(q, k, v)


def sample_quality(samples: dict[str, torch.Tensor], judges: dict[str, torch.nn.Module]) -> dict:
    """Perplexity of each set of sequences under each trained model: the autoregressive model's is
    exact (one pass), the masked-diffusion model's an upper bound (NELBO, 8 Monte-Carlo passes)."""
    return {
        name: {
            f"perplexity_under_{judge}": evaluate_nelbo(model, [(x, None)], passes=8).perplexity
            for judge, model in judges.items()
        }
        for name, x in samples.items()
    }


def synchronize(device: torch.device) -> None:
    """Wait until the accelerator has finished the work queued so far (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run: Callable[[], object], device: torch.device) -> tuple[object, float]:
    """(result, seconds) of ``run()``, waiting for the accelerator to finish."""
    synchronize(device)
    start = time.perf_counter()
    result = run()
    synchronize(device)
    return result, time.perf_counter() - start


def sampling_speed(
    md4_path: str | None,
    ar_path: str | None,
    length: int,
    n: int,
    steps: list[int],
    device: torch.device = torch.device("cpu"),
) -> dict:
    """Designs per second of the trained masked-diffusion model (with and without MDLM's cache, at
    each step count) against the trained autoregressive baseline with a KV cache, and the
    perplexity of every model's samples under the other model; natural CATH test domains cut to
    ``length`` are scored too, for reference."""
    md4, _ = load_protein_model(md4_path, device)
    ar, _ = load_protein_model(ar_path, device) if ar_path else (None, None)
    if ar is None:  # the untrained same-shape baseline still gives the timing
        cfg = md4.denoiser.cfg
        model_cfg = ModelConfig(
            dim=cfg.dim, n_layers=cfg.n_layers, n_heads=cfg.n_heads, kind="autoregressive"
        )
        ar = build_model(protein_spec(model_cfg)).to(device).eval()
    result: dict = {
        "setting": f"{n} sequences of length {length}",
        "models": {"md4": md4_path or "default", "autoregressive": ar_path},
        "device": str(device),
    }
    samples = {}
    generator = torch.Generator(device).manual_seed(0)
    ar.generate(2, 8, generator=generator)  # warm-up (kernels, allocator) outside the timing
    samples["autoregressive"], ar_seconds = timed(lambda: ar.generate(n, length, generator=generator), device)
    result["autoregressive_kv_cache"] = {
        "seconds": ar_seconds,
        "network_calls": length,
        "designs_per_s": n / ar_seconds,
    }
    z = torch.full((n, length), alphabet.MASK_ID, device=device)
    sample(md4, z, steps=2)  # warm-up at the timed shape: the first timed sampler paid for it before
    for count in steps:
        for cache in (True, False):
            noise = KeyedNoise(0, torch.arange(n))
            out, seconds = timed(partial(sample, md4, z, steps=count, noise=noise, use_cache=cache), device)
            result[f"md4_steps{count}_cache_{cache}"] = {
                "steps": count,
                "seconds": seconds,
                "network_calls": out.network_calls,
                "designs_per_s": n / seconds,
                "speedup_vs_autoregressive": ar_seconds / seconds,
            }
        samples[f"md4_steps{count}"] = out.tokens
    natural = [s[:length] for s in ProteinAdapter().sequences(str(TEST)) if len(s) >= length][:n]
    samples["natural_cath_test"] = torch.as_tensor(np.stack(natural), device=device)
    if ar_path:
        result["quality"] = sample_quality(samples, {"md4": md4, "autoregressive": ar})
    return result


def identity_speed(n: int, numpy_pairs: int = 300) -> dict:
    """Pairwise identity of ``n`` CATH domains: numba (`pairwise_identity`, all pairs) against the
    vectorised numpy reference (`best_diagonal_identity_numpy`, timed on ``numpy_pairs`` of the pairs)."""
    seqs = [r.sequence for r in islice(iter_sequences(TEST), n)]
    pairwise_identity(seqs[:3])  # compile outside the timing
    start = time.perf_counter()
    matrix = pairwise_identity(seqs)
    numba_seconds = time.perf_counter() - start
    i, j = np.triu_indices(n, k=1)
    pick = np.random.default_rng(0).choice(len(i), numpy_pairs, replace=False)
    start = time.perf_counter()
    reference = [best_diagonal_identity_numpy(seqs[i[k]], seqs[j[k]]) for k in pick]
    numpy_per_pair = (time.perf_counter() - start) / numpy_pairs
    assert np.allclose(reference, matrix[i[pick], j[pick]])
    numba_per_pair = numba_seconds / len(i)
    return {
        "sequences": n,
        "pairs": len(i),
        "mean_length": float(np.mean([len(s) for s in seqs])),
        "numba_threads": numba.get_num_threads(),
        "numba_pairs_per_s": 1 / numba_per_pair,
        "numpy_pairs_per_s": 1 / numpy_per_pair,
        "speedup": numpy_per_pair / numba_per_pair,
    }


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/speed.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0, help="training measurement length")
    parser.add_argument("--quick", action="store_true", help="short measurements (a smoke run)")
    parser.add_argument("--device", default="cpu", help="device for training and sampling (cpu, cuda)")
    parser.add_argument(
        "--train-tokens",
        type=int,
        default=8192,
        help="padded tokens per training batch (gpu_session.sh: 131072)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(TRAINING_VARIANTS),
        choices=list(TRAINING_VARIANTS),
        help="training variants to time",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile 5 more steps of each training variant"
    )
    parser.add_argument("--sections", nargs="+", default=SECTIONS, choices=SECTIONS, help="what to measure")
    parser.add_argument(
        "--shape", default="t6", choices=list(SHAPES), help="training model shape: ESM-2 t6 (8M) or t12 (35M)"
    )
    parser.add_argument(
        "--loader-source",
        type=Path,
        default=TRAIN,
        help="loader section: a FASTA file or a prepared shard folder (default: CATH S40 train)",
    )
    parser.add_argument("--md4", default=None, help="masked-diffusion bundle (default: the shipped model)")
    parser.add_argument(
        "--ar",
        default=None,
        help="trained autoregressive bundle (runs/protein-ar-baseline/model); "
        "without it sampling is timed on an untrained baseline and sample perplexities are left out",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = 5.0 if args.quick else args.seconds
    out = Path(args.out)
    # A rerun of some sections keeps the others' figures (each section records its own run).
    report = json.loads(out.read_text()) if out.exists() and args.sections != SECTIONS else {}
    run_info = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    device = resolve_device(args.device)
    out.parent.mkdir(parents=True, exist_ok=True)

    def record(key: str, result: dict) -> None:
        """Add one figure to the report and save it at once: a run stopped later keeps it."""
        report[key] = {**run_info, **result}
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(report, indent=1))
        print(key, json.dumps(report[key], indent=1), flush=True)

    if "loader" in args.sections:
        record("loader", loader_throughput(seconds, args.train_tokens, args.loader_source))
        torch.set_num_threads(args.threads)
    if "training" in args.sections:
        # An H200 reaches its bf16 peak only on products far larger than a CPU's best size.
        sizes = (4096, 8192, 16384) if device.type == "cuda" else (1024, 2048, 4096)
        peaks = {
            dtype: matmul_peak(sizes, dtype=dtype, device=device) for dtype in (torch.float32, torch.bfloat16)
        }
        for variant in args.variants:
            options = TRAINING_VARIANTS[variant]
            dim, layers, heads = SHAPES[args.shape]
            result = training_throughput(
                dim, layers, heads, seconds, args.train_tokens, device=device, profile=args.profile, **options
            )
            result["matmul_peak_flops"] = peaks[torch.float32]
            result["bf16_matmul_peak_flops"] = peaks[torch.bfloat16]
            result["fraction_of_matmul_peak"] = result["model_flops_per_s"] / peaks[torch.float32]
            # Model FLOPs utilisation of a bf16 run: against the same run's dense bf16 matmul peak.
            if options.get("bf16"):
                result["fraction_of_bf16_matmul_peak"] = result["model_flops_per_s"] / peaks[torch.bfloat16]
            key = f"training_width{dim}" + ("" if variant == "fp32" else f"_{variant}")
            record(key, result)
    if "sampling" in args.sections:
        # 1024 steps (> length): most steps unmask nothing, where MDLM's cache skips the network.
        result = sampling_speed(args.md4, args.ar, 256, 16, [1024, 64, 32, 16], device)
        record("sampling", result)
    if "identity" in args.sections:
        numba.set_num_threads(args.threads)
        record("identity", identity_speed(100 if args.quick else 1000))
    if "table" in args.sections:
        steps = 20 if args.quick else 300
        record("table_training", table_training_speed(steps))
        record("table_training_fp32", table_training_speed(steps, precision="32-true"))
    if "table_steps" in args.sections:
        record("table_steps", table_step_speed(20 if args.quick else 200))
    if "attention" in args.sections:
        record("attention", attention_speed((10, 16, 18, 32, 64, 128, 256, 512)))
        record("softmax", softmax_speed((6, 8, 10, 12, 16, 24, 32)))


if __name__ == "__main__":
    run()
