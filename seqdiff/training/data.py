"""Variable-length token data for training: random crops and length-bucketed batches.

Batches are built under a token budget (padded batch size x longest sequence), from sequences
of similar length, so little compute goes to padding (``padding_waste`` measures it). Each batch
is assembled at once from a ``TokenShard``'s flat token array: no Python per sequence per step.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from seqdiff.training.shards import TokenShard


def crop_starts(lengths: np.ndarray, max_len: int, seed: int, epoch: int) -> np.ndarray:
    """Where each sequence's random ``max_len`` window starts in ``epoch``: uniform over the
    windows that fit, 0 for a sequence that fits whole. A function of (seed, epoch) and the
    lengths alone, so a resumed run crops as an uninterrupted one would.

    Example:
        >>> crop_starts(np.array([3, 10]), max_len=4, seed=0, epoch=0).tolist()[0]
        0
    """
    u = np.random.default_rng((seed, epoch)).random(len(lengths))
    return (u * np.maximum(lengths - max_len + 1, 1)).astype(np.int64)


class CroppedSequences(Dataset):
    """Token sequences served a batch at a time, each cut to a ``max_len`` window when longer.

    An item is ``(indices, epoch)``, as ``BucketBatchSampler`` yields, and gives the padded batch
    ``(x [B, L] int64, valid [B, L] bool)``, assembled by vectorised indexing into the shard's flat
    token array. The window of a long sequence is random per epoch (``crop_starts``) or, with
    ``random_crop=False``, its start.

    Example:
        >>> ds = CroppedSequences([np.arange(10), np.arange(2)], max_len=4, pad_id=0)
        >>> x, valid = ds[np.array([1, 0]), 0]
        >>> x.shape, valid.sum(-1).tolist()
        (torch.Size([2, 4]), [2, 4])
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray] | TokenShard,
        max_len: int,
        pad_id: int,
        seed: int = 0,
        random_crop: bool = True,
    ):
        self.shard = sequences if isinstance(sequences, TokenShard) else TokenShard.from_sequences(sequences)
        self.max_len, self.pad_id = max_len, pad_id
        self.random_crop = random_crop
        self.seed = seed
        self.lengths = np.minimum(self.shard.lengths, max_len)
        self._starts: tuple[int, np.ndarray] | None = None  # (epoch, crop starts), the current epoch's

    def __len__(self) -> int:
        return len(self.shard)

    def crop_starts(self, epoch: int) -> np.ndarray:
        if not self.random_crop:
            return np.zeros(len(self.shard), dtype=np.int64)
        if self._starts is None or self._starts[0] != epoch:
            self._starts = (epoch, crop_starts(self.shard.lengths, self.max_len, self.seed, epoch))
        return self._starts[1]

    def __getitem__(self, item: tuple[np.ndarray, int]) -> tuple[Tensor, Tensor]:
        indices, epoch = item
        lengths = self.lengths[indices]
        starts = self.shard.offsets[indices] + self.crop_starts(epoch)[indices]
        columns = np.arange(lengths.max(initial=0))
        valid = columns < lengths[:, None]
        # Padding reads position 0 of the flat array (any in-bounds index), then becomes pad_id.
        x = self.shard.tokens[np.where(valid, starts[:, None] + columns, 0)].astype(np.int64)
        np.copyto(x, self.pad_id, where=~valid)
        return torch.from_numpy(x), torch.from_numpy(valid)


class BucketBatchSampler(Sampler[tuple[np.ndarray, int]]):
    """Batches of similar-length indices under a padded-token budget; order set by (seed, epoch).

    Sequences are sorted by length within random chunks of ``chunk`` batches' worth of items,
    cut into batches whose ``len(batch) * max_len_in_batch <= max_tokens``, and the batches are
    shuffled. Each item is ``(indices, epoch)``: the batch's sequence indices as an array. With ``num_replicas`` > 1 (DDP) each rank takes
    every num_replicas-th batch. Every epoch has the same number of batches, so the position in
    the data is a function of the step alone: ``resume_at(step)`` continues mid-epoch.

    Example:
        >>> s = BucketBatchSampler([5, 6, 50, 52], max_tokens=104)
        >>> sorted(len(indices) for indices, epoch in s)
        [2, 2]
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_tokens: int,
        shuffle: bool = True,
        seed: int = 0,
        chunk: int = 100,
        rank: int = 0,
        num_replicas: int = 1,
    ):
        self.lengths = np.asarray(lengths)
        self.max_tokens = max_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.chunk = chunk
        self.rank, self.num_replicas = rank, num_replicas
        self.epoch = 0
        self._skip = 0
        self._batches = self._make_batches()

    def _make_batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        mean_len = max(1.0, float(self.lengths.mean()))
        chunk_items = max(1, int(self.chunk * self.max_tokens / mean_len))
        batches = []
        for start in range(0, len(order), chunk_items):
            part = order[start : start + chunk_items]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batch: list[int] = []
            longest = 0
            for i in part:
                longest_if_added = max(longest, int(self.lengths[i]))
                if batch and longest_if_added * (len(batch) + 1) > self.max_tokens:
                    batches.append(batch)
                    batch, longest_if_added = [], int(self.lengths[i])
                batch.append(int(i))
                longest = longest_if_added
            if batch:
                batches.append(batch)
        if self.shuffle:
            batches = [batches[j] for j in rng.permutation(len(batches))]
        batches = [np.asarray(b, dtype=np.int64) for b in batches]
        # Equal batch counts on every rank (DDP steps in lockstep): drop the remainder.
        usable = len(batches) - len(batches) % self.num_replicas if self.num_replicas > 1 else len(batches)
        return batches[self.rank : usable : self.num_replicas]

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = epoch
            self._batches = self._make_batches()

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        skip, self._skip = self._skip, 0
        epoch = self.epoch
        for batch in self._batches[skip:]:
            yield batch, epoch
        self.set_epoch(epoch + 1)

    def __len__(self) -> int:
        return len(self._batches)

    def padding_waste(self) -> float:
        """Fraction of the padded batch tensors that is padding."""
        real = sum(int(self.lengths[b].sum()) for b in self._batches)
        padded = sum(len(b) * int(self.lengths[b].max()) for b in self._batches)
        return 1 - real / padded

    def resume_at(self, step: int) -> None:
        """Position the sampler where an uninterrupted run would be after ``step`` batches."""
        self.epoch = step // len(self._batches)
        self._batches = self._make_batches()
        self._skip = step % len(self._batches)


class SequenceDataModule(L.LightningDataModule):
    """Train / valid token sequences (token arrays or a ``TokenShard``) as length-bucketed batches.

    When no validation set is given, a deterministic ``valid_fraction`` is held out (by a
    seeded permutation of the indices). With a CUDA GPU present, batches come in page-locked
    memory, so their copy to the GPU runs asynchronously.

    Example:
        >>> dm = SequenceDataModule([np.arange(5)] * 20, None, pad_id=0, max_tokens=64)
        >>> len(dm.train) + len(dm.valid)
        20
    """

    def __init__(
        self,
        train: Sequence[np.ndarray] | TokenShard,
        valid: Sequence[np.ndarray] | TokenShard | None,
        pad_id: int,
        max_len: int = 512,
        max_tokens: int = 8192,
        valid_fraction: float = 0.05,
        seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        if not isinstance(train, TokenShard):
            train = TokenShard.from_sequences(train)
        if valid is None:
            order = np.random.default_rng(seed).permutation(len(train))
            n_valid = max(1, int(round(valid_fraction * len(train))))
            train, valid = train.take(order[n_valid:]), train.take(order[:n_valid])
        self.train = CroppedSequences(train, max_len, pad_id, seed=seed)
        self.valid = CroppedSequences(valid, max_len, pad_id, seed=seed, random_crop=False)
        self.max_tokens = max_tokens
        self.num_workers = num_workers
        self.seed = seed
        self._train_sampler: BucketBatchSampler | None = None
        self.resume_step = 0

    @property
    def train_sampler(self) -> BucketBatchSampler:
        if self._train_sampler is None:
            rank, world = 0, 1
            if self.trainer is not None:
                rank, world = self.trainer.global_rank, self.trainer.world_size
            self._train_sampler = BucketBatchSampler(
                self.train.lengths,
                self.max_tokens,
                shuffle=True,
                seed=self.seed,
                rank=rank,
                num_replicas=world,
            )
            if self.resume_step:
                self._train_sampler.resume_at(self.resume_step)
        return self._train_sampler

    def _loader(self, ds: CroppedSequences, sampler: Sampler) -> DataLoader:
        # batch_size=None: each sampler item is a whole batch, which the dataset assembles at once.
        return DataLoader(
            ds,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, self.train_sampler)

    def val_dataloader(self) -> DataLoader:
        return self._loader(
            self.valid, BucketBatchSampler(self.valid.lengths, self.max_tokens, shuffle=False)
        )

    def state_dict(self) -> dict:
        return {"step": self.trainer.global_step if self.trainer is not None else 0}

    def load_state_dict(self, state: dict) -> None:
        self.resume_step = state["step"]
        self._train_sampler = None
