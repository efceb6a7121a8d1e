"""Values for the missing cells of a table from a fitted model: the predictive point estimate (one network
pass per row), or K joint draws (first-hitting sampling: one cell per step) and their point estimate.

Randomness is keyed by (seed, draw, global row number), and rows go through the network in blocks aligned
to global row numbers, so a row gets the same values whatever batch or file slice it comes in.

Example (an untrained model):
    >>> import pandas as pd
    >>> from seqdiff.core.bundle import build_model
    >>> from seqdiff.tabular.model import table_spec
    >>> from seqdiff.training.config import ModelConfig
    >>> df = pd.DataFrame({"x": [1.0, 2.0, None], "c": ["a", None, "b"]})
    >>> enc = TableEncoder.fit(df)
    >>> model = build_model(table_spec(enc, ModelConfig(dim=16, n_layers=1, n_heads=2))).eval()
    >>> draws = predict(model, enc, pa.Table.from_pandas(df), 0, "median", "table")
    >>> draws.rows.tolist(), draws.tables[0].num_rows
    ([1, 2], 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from tqdm.auto import tqdm

from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.core.noise import KeyedNoise
from seqdiff.core.sampling import sample
from seqdiff.tabular.codecs import fractional, from_values, numeric_values
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.model import rows_per_pass

POINT_ESTIMATES = ("predictive", "draws")
PREDICT_BLOCK = 1024  # rows per network call of the predictive estimate at most (see rows_per_pass)
DECODE_BLOCK = 1024  # global rows per in-bin-draw generator: values do not depend on the batching
SAMPLER_CELLS = 8_000_000  # rows x columns x slots per sampler call: it holds float64 tensors of that size
DECODING = "first-hitting"


@dataclass
class Draws:
    """Imputations of one table.

    ``missing`` [rows, n_columns]: input cells (of the modelled columns) that were null or NaN;
    ``rows`` [m]: the rows with at least one such cell; ``tokens`` [K, m, n_columns] and ``tables``
    (K decoded Arrow tables of m rows): the K draws of those rows (for the predictive estimate, K = 1:
    the most probable tokens and the point values).
    """

    missing: np.ndarray
    rows: np.ndarray
    tokens: np.ndarray
    tables: list[pa.Table]


def draw_seed(seed: int, draw: int) -> int:
    """The KeyedNoise seed of draw `draw` (a 32-bit hash, so it fits the int64 key arithmetic).

    Example:
        >>> draw_seed(0, 1) == draw_seed(0, 1) != draw_seed(0, 2)
        True
    """
    return int(np.random.SeedSequence([seed, draw]).generate_state(1)[0])


def encode_missing(
    encoder: TableEncoder, table: pa.Table, source: str, on_unseen: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tokens [rows, n_columns] with missing cells masked, where each numeric value lies inside its
    bin, missing cells, rows with one)."""
    tokens = encoder.encode(table, on_unseen=on_unseen, source=source)
    missing = np.zeros(tokens.shape, bool)
    for j, name in enumerate(encoder.columns):
        missing[:, j] = pc.is_null(table.column(name), nan_is_null=True).to_numpy(zero_copy_only=False)
    return tokens, encoder.within(table, source=source), missing, np.flatnonzero(missing.any(axis=1))


@torch.no_grad()
def predict(
    model: MaskedDiffusion,
    encoder: TableEncoder,
    table: pa.Table,
    first_row: int,
    numeric_point: str,
    source: str,
) -> Draws:
    """The predictive point estimate of every missing cell given its row's observed cells.

    One network pass per row with all its missing cells masked: what MD4 is trained to predict, so
    the conditional median or mean / mode needs no sampling (and no Monte-Carlo error). Rows go through
    the network in blocks of fixed shape aligned to global row numbers (unused slots masked): a row's
    floating-point result, hence its value, is the same whichever batch or file slice it comes in.
    """
    tokens, within, missing, rows = encode_missing(encoder, table, source, "mask")
    device = next(model.parameters()).device
    block = rows_per_pass(model, len(encoder.columns), PREDICT_BLOCK)
    slots = (first_row + rows) % block
    bounds = np.flatnonzero(np.diff((first_row + rows) // block)) + 1
    # Each block is decoded at once (decoding is row by row): memory holds one block's probabilities,
    # [block, columns, widest vocabulary], never [rows, vocabulary].
    modes, tables = [np.empty((0, len(encoder.columns)), np.int64)], []
    for part in np.split(np.arange(len(rows)), bounds):
        if len(part) == 0:
            continue
        z = np.full((block, len(encoder.columns)), encoder.mask_id, np.int64)
        z[slots[part]] = tokens[rows[part]]
        w = np.full(z.shape, np.nan, np.float32)
        w[slots[part]] = within[rows[part]]
        logp = model.slot_log_probs(
            torch.as_tensor(z, device=device), within=torch.as_tensor(w, device=device)
        )
        # The whole block is decoded, used slots or not: every block's arrays have the same shapes, so
        # the allocator reuses their memory instead of fragmenting the heap.
        p = logp.exp().cpu().numpy()
        probs = [p[:, j, :size] for j, size in enumerate(encoder.vocab_sizes)]  # slot k: offsets[j] + k
        mode = np.stack([q.argmax(axis=1) for q in probs], axis=1) + encoder.offsets
        modes.append(mode[slots[part]])
        tables.append(encoder.decode_point(probs, numeric_point).take(slots[part]))
    if not tables:
        tables.append(encoder.decode_point([np.empty((0, n), np.float32) for n in encoder.vocab_sizes]))
    return Draws(missing, rows, np.concatenate(modes)[None], [pa.concat_tables(tables)])


def sample_draws(
    model: MaskedDiffusion,
    encoder: TableEncoder,
    table: pa.Table,
    first_row: int,
    n_draws: int,
    seed: int,
    *,
    sampling_steps: int | None = None,
    progress: bool | None = False,
    source: str = "table",
    on_unseen: str = "mask",
) -> Draws:
    """Sample `n_draws` imputations of the rows of `table` that have a missing modelled cell, with
    `sampling_steps` sampler steps per row (None: as many as the row has cells to fill)."""
    tokens, within, missing, rows = encode_missing(encoder, table, source, on_unseen)
    n_columns = len(encoder.columns)
    sampled = np.empty((n_draws, len(rows), n_columns), np.int64)
    sampled_within = np.full(sampled.shape, np.nan)
    device = next(model.parameters()).device
    # First-hitting decoding: a row takes as many steps as it has masked cells, one cell decided per
    # step given the earlier ones (joint draws), or `sampling_steps`, an even share of its cells per
    # step. A row's steps depend on the row alone, so batching does not change it. Rows with the same
    # steps are sampled together.
    steps_of = (tokens[rows] == encoder.mask_id).sum(axis=1)
    if sampling_steps is not None:
        steps_of = np.full(len(rows), sampling_steps)
    groups = [np.flatnonzero(steps_of == m) for m in np.unique(steps_of)]
    disable = None if progress is None else not progress
    per_call = max(1, SAMPLER_CELLS // (n_columns * model.position_ids(n_columns).shape[-1]))
    bar = tqdm(total=n_draws * len(rows), desc="sampling", unit="row", disable=disable, leave=False)
    with bar:
        for k in range(n_draws):
            noise_seed = draw_seed(seed, k)
            for group in groups:
                steps = int(steps_of[group[0]])
                for start in range(0, len(group), per_call):
                    part = group[start : start + per_call]
                    z = torch.as_tensor(tokens[rows[part]], device=device)
                    w = torch.as_tensor(within[rows[part]], dtype=torch.float32, device=device)
                    keys = torch.as_tensor(first_row + rows[part], dtype=torch.long)
                    noise = KeyedNoise(noise_seed, keys)
                    result = sample(model, z, steps=steps, noise=noise, within=w, decoding=DECODING)
                    sampled[k, part] = result.tokens.cpu().numpy()
                    if result.within is not None:
                        sampled_within[k, part] = result.within.cpu().numpy()
                    bar.update(len(part))
    tables = [
        decode_rows(encoder, sampled[k], sampled_within[k], first_row + rows, (seed, k))
        for k in range(n_draws)
    ]
    return Draws(missing, rows, sampled, tables)


def decode_rows(
    encoder: TableEncoder, tokens: np.ndarray, within: np.ndarray, rows: np.ndarray, key: tuple[int, int]
) -> pa.Table:
    """Values for `tokens` of the ascending global row numbers `rows`: numeric ones at `within`
    inside their bins (the sampler's draws), where that is NaN drawn from the bin.

    Those in-bin values are drawn by one generator per block of DECODE_BLOCK global rows, seeded
    by (key, block), over the whole block (rows not given are filled with a valid token): a row's
    values do not depend on which other rows are decoded with it.
    """
    if len(rows) == 0:
        return encoder.decode_sample(np.empty((0, len(encoder.columns)), np.int64))
    blocks = rows // DECODE_BLOCK
    bounds = np.flatnonzero(np.diff(blocks)) + 1
    pieces = []
    for part in np.split(np.arange(len(rows)), bounds):
        block = int(blocks[part[0]])
        local = rows[part] - block * DECODE_BLOCK
        full = np.repeat(encoder.offsets[None], DECODE_BLOCK, axis=0)
        full[local] = tokens[part]
        full_within = np.full(full.shape, np.nan)
        full_within[local] = within[part]
        decoded = encoder.decode_sample(full, rng=np.random.default_rng([*key, block]), within=full_within)
        pieces.append(decoded.take(local))
    return pa.concat_tables(pieces)


def point_of_draws(encoder: TableEncoder, draws: Draws, numeric_point: str) -> pa.Table:
    """One value per cell from K draws: their median or mean (numeric; see `numeric_point`) or the most
    frequent value (categorical; the first category on ties)."""
    if len(draws.tables) == 1:
        return draws.tables[0]
    n = len(draws.rows)
    columns = []
    for j, name in enumerate(encoder.columns):
        arrays = [t.column(name).combine_chunks() for t in draws.tables]
        if encoder.kinds[j] == "numeric":
            values = np.stack([numeric_values(a)[0] for a in arrays])
            floating = fractional(arrays[0].type)
            if numeric_point == "median" and floating:
                point = np.median(values, axis=0)
            elif numeric_point == "median":  # the lower median keeps integers and timestamps exact
                point = np.sort(values, axis=0)[(len(values) - 1) // 2]
            elif floating:
                point = values.mean(axis=0)
            else:
                # Mean of differences: int64 nanosecond timestamps exceed float64 precision.
                point = values[0] + np.rint((values - values[0]).mean(axis=0)).astype(np.int64)
            columns.append(from_values(point, arrays[0].type))
        else:
            local = draws.tokens[:, :, j] - encoder.offsets[j]
            counts = np.zeros((n, encoder.vocab_sizes[j]), np.int64)
            np.add.at(counts, (np.broadcast_to(np.arange(n), local.shape), local), 1)
            first_draw = (local == counts.argmax(axis=1)).argmax(axis=0)
            columns.append(pa.concat_arrays(arrays).take(first_draw * n + np.arange(n)))
    return pa.Table.from_arrays(columns, names=encoder.columns)
