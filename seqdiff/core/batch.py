"""Batches of variable-length token sequences: padding and the validity mask every model takes."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


def pad_batch(items: list[Tensor], pad_id: int) -> tuple[Tensor, Tensor]:
    """Stack variable-length token tensors: (x [B, Lmax] padded with ``pad_id``, valid [B, Lmax]).

    Example:
        >>> x, valid = pad_batch([torch.tensor([1, 2]), torch.tensor([3])], pad_id=0)
        >>> x.tolist(), valid.tolist()
        ([[1, 2], [3, 0]], [[True, True], [True, False]])
    """
    x = pad_sequence(items, batch_first=True, padding_value=pad_id).long()
    lengths = torch.tensor([len(t) for t in items])
    return x, torch.arange(x.shape[1]) < lengths[:, None]
