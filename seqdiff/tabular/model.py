"""Tables as an adapter over the engine: the model spec of a table, its training batches, and the
ordered initialisation of numeric bins.

A row is a sequence with one token per modelled column (see `seqdiff.tabular.encoding`). Positions are
columns: the denoiser uses one learned embedding per column (no order between them) and each column may
output only its own slice of the flat vocabulary. Missing cells are the mask id, so they are masked
throughout training and left out of the loss.

Example:
    >>> import pandas as pd
    >>> from seqdiff.tabular.encoding import TableEncoder
    >>> enc = TableEncoder.fit(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
    >>> spec = table_spec(enc, ModelConfig(dim=32, n_layers=1, n_heads=2))
    >>> spec.mask_id, spec.allowed
    (5, [[0, 1, 2], [3, 4]])
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from seqdiff.core.bundle import ModelSpec
from seqdiff.core.denoiser import DenoiserConfig
from seqdiff.core.diffusion import MaskedDiffusion
from seqdiff.errors import SeqdiffError
from seqdiff.tabular.encoding import TableEncoder
from seqdiff.tabular.settings import TIE_RATES
from seqdiff.training.config import ModelConfig

PASS_CELLS = 4_000_000  # numbers per [rows, columns, width] tensor of one no-grad network pass (16 MB)


def rate_groups(encoder: TableEncoder, tie_rates: str) -> list[int] | None:
    """GenMD4 rate groups per token id (mask id last): None for one rate per column value (the identity),
    or the column index of each token for one rate per column.

    Example:
        >>> import pandas as pd
        >>> enc = TableEncoder.fit(pd.DataFrame({"c": ["a", "b"], "d": ["u", "v"]}))
        >>> rate_groups(enc, "column")
        [0, 0, 1, 1, 2]
    """
    if tie_rates not in TIE_RATES:
        raise SeqdiffError(f"tie_rates must be one of {', '.join(TIE_RATES)}, not {tie_rates!r}")
    if tie_rates == "value":
        return None
    columns = np.repeat(np.arange(len(encoder.columns)), encoder.vocab_sizes)
    return [*columns.tolist(), len(encoder.columns)]


def table_spec(encoder: TableEncoder, model_cfg: ModelConfig, value_frequencies: int = 0) -> ModelSpec:
    """The model spec for rows encoded by ``encoder``: vocabulary ``encoder.vocab_size + 1`` with the mask
    id last, each column restricted to its own tokens, learned column embeddings (``max_len`` = number
    of columns), the numeric columns as ordered positions (with ``value_frequencies`` > 0 the model
    also sees where each visible value lies inside its bin), and for ``schedule: genmd4`` the rate
    groups of ``model_cfg.tie_rates``.

    Example:
        >>> import pandas as pd
        >>> enc = TableEncoder.fit(pd.DataFrame({"c": ["a", "b"]}))
        >>> table_spec(enc, ModelConfig(dim=16, n_layers=1, n_heads=2, schedule="genmd4")).groups is None
        True
    """
    if model_cfg.dim % model_cfg.n_heads:
        raise SeqdiffError(f"dim ({model_cfg.dim}) must be a multiple of n_heads ({model_cfg.n_heads})")
    groups = rate_groups(encoder, model_cfg.tie_rates) if model_cfg.schedule == "genmd4" else None
    denoiser = DenoiserConfig(
        vocab_size=encoder.vocab_size + 1,
        dim=model_cfg.dim,
        n_layers=model_cfg.n_layers,
        n_heads=model_cfg.n_heads,
        mlp_ratio=model_cfg.mlp_ratio,
        max_len=len(encoder.columns),
        positions="learned",
        time_conditioning=model_cfg.time_conditioning,
        dropout=model_cfg.dropout,
        value_frequencies=value_frequencies,
    )
    return ModelSpec(
        denoiser=denoiser,
        mask_id=encoder.mask_id,
        allowed=[np.flatnonzero(row).tolist() for row in encoder.allowed],
        schedule=model_cfg.schedule,
        groups=groups,
        timesteps=model_cfg.timesteps,
        weighting=model_cfg.weighting,
        ordered=[kind == "numeric" for kind in encoder.kinds],
    )


def rows_per_pass(model: MaskedDiffusion, n_columns: int, most: int) -> int:
    """Rows per no-grad network pass over rows of `n_columns` columns (at most `most`): its largest
    tensors are [rows, columns, width], width the larger of the widest column's vocabulary (its slot
    log-probabilities) and the MLP's hidden width, and hold at most PASS_CELLS numbers. A fixed
    number per model: wide tables and large vocabularies get fewer rows per pass, not more memory.

    Example:
        >>> import pandas as pd
        >>> from seqdiff.core.bundle import build_model
        >>> enc = TableEncoder.fit(pd.DataFrame({"c": [f"v{i}" for i in range(10_000)] * 2}))
        >>> model = build_model(table_spec(enc, ModelConfig(dim=16, n_layers=1, n_heads=2)))
        >>> rows_per_pass(model, 1, 1024), rows_per_pass(model, 1000, 1024)
        (399, 1)
    """
    width = max(model.slot_ids.shape[-1], model.denoiser.cfg.hidden_dim)
    return int(min(most, max(1, PASS_CELLS // (n_columns * width))))


class _Rows(Dataset):
    """Rows of equal length, fetched a whole batch at a time (no per-row collation)."""

    def __init__(self, tokens: torch.Tensor, within: torch.Tensor):
        self.tokens, self.within = tokens, within

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitems__(self, rows: list[int]) -> tuple[torch.Tensor, None, torch.Tensor]:
        index = torch.as_tensor(rows)
        return self.tokens[index], None, self.within[index]


class TableRows(L.LightningDataModule):
    """Training batches ``(tokens, None, within)`` of ``batch_rows`` rows, reshuffled every epoch
    (seeded); the last batch of an epoch may be smaller. Rows have no padding (``valid`` is None).

    Example:
        >>> dm = TableRows(np.zeros((10, 3), np.int64), np.zeros((10, 3)), batch_rows=4)
        >>> [x.shape[0] for x, _, _ in dm.train_dataloader()]
        [4, 4, 2]
    """

    def __init__(self, tokens: np.ndarray, within: np.ndarray, batch_rows: int, seed: int = 0):
        super().__init__()
        self.rows = _Rows(torch.as_tensor(tokens), torch.as_tensor(within, dtype=torch.float32))
        self.batch_rows, self.seed = batch_rows, seed

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self.rows, batch_size=self.batch_rows, shuffle=True, generator=generator, collate_fn=lambda b: b
        )


@torch.no_grad()
def init_ordered_bins(model: MaskedDiffusion, encoder: TableEncoder) -> None:
    """Start each numeric column's bins in order, on the input and the output side (uses the torch RNG).

    With p_k = 2k / (K - 1) - 1 for bin k of K, the bin's input embedding gets half its random
    initialisation plus p_k u, and its output row half its own plus p_k v - p_k^2 w (u, v, w random
    directions per column): neighbouring bins start close, and logits quadratic in p_k can peak at any
    bin. The model then need not learn from data alone that bin 3 lies between bins 2 and 4 (TabMT's
    ordered embeddings, as an initialisation only).

    Example:
        >>> import pandas as pd
        >>> from seqdiff.core.bundle import build_model
        >>> enc = TableEncoder.fit(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
        >>> model = build_model(table_spec(enc, ModelConfig(dim=16, n_layers=1, n_heads=2)))
        >>> init_ordered_bins(model, enc)
    """
    embed, head = model.denoiser.embed.weight, model.denoiser.head.weight
    for j, kind in enumerate(encoder.kinds):
        size = encoder.vocab_sizes[j]
        if kind != "numeric" or size < 2:
            continue
        rows = slice(int(encoder.offsets[j]), int(encoder.offsets[j]) + size)
        p = torch.linspace(-1, 1, size, device=embed.device)[:, None]
        u, v, w = torch.randn(3, embed.shape[1], device=embed.device) * 2 * embed[rows].std()
        embed[rows] = 0.5 * embed[rows] + p * u
        head[rows] = 0.5 * head[rows] + p * v - p**2 * w
