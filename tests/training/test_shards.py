"""Prepared shards: a split saved once reads back as the same token sequences, and training batches
from a shard folder are the batches of the FASTA path, crops and all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seqdiff.errors import SeqdiffError
from seqdiff.protein import alphabet
from seqdiff.protein.model import ProteinAdapter
from seqdiff.training.data import BucketBatchSampler, CroppedSequences, SequenceDataModule, crop_starts
from seqdiff.training.shards import TokenShard
from seqdiff.training.train import read_split


@pytest.fixture(scope="module")
def valid_fasta(shared: Path) -> Path:
    return shared / "protein" / "general" / "cath_v4_1_0_S40.valid.fasta"


def test_a_saved_shard_reads_back_the_tokens_of_the_fasta_path(valid_fasta: Path, tmp_path: Path) -> None:
    adapter = ProteinAdapter()
    seqs = adapter.sequences(str(valid_fasta))
    adapter.shard([valid_fasta]).save(tmp_path)
    shard = read_split(str(tmp_path), adapter)
    assert isinstance(shard.tokens, np.memmap) and shard.tokens.dtype == np.uint8
    assert shard.meta["modality"] == "protein" and shard.meta["sequences"] == len(seqs) == 1054
    assert shard.lengths.tolist() == [len(s) for s in seqs]
    assert all(np.array_equal(shard[i], s) for i, s in enumerate(seqs))
    # A FASTA path reads into the same flat arrays.
    from_fasta = read_split(str(valid_fasta), adapter)
    assert np.array_equal(from_fasta.tokens, shard.tokens) and np.array_equal(
        from_fasta.offsets, shard.offsets
    )


def test_batches_from_a_shard_folder_equal_those_from_the_fasta_path(
    valid_fasta: Path, tmp_path: Path
) -> None:
    adapter = ProteinAdapter()
    adapter.shard([valid_fasta]).save(tmp_path)
    settings = {"pad_id": alphabet.PAD_ID, "max_len": 100, "max_tokens": 2048, "seed": 5}
    from_fasta = SequenceDataModule(adapter.sequences(str(valid_fasta)), None, **settings)
    from_shard = SequenceDataModule(TokenShard.load(tmp_path), None, **settings)

    def two_epochs(dm: SequenceDataModule) -> list:
        loader = dm.train_dataloader()
        return [batch for _ in range(2) for batch in loader]

    fasta_batches, shard_batches = two_epochs(from_fasta), two_epochs(from_shard)
    assert len(fasta_batches) == len(shard_batches) == 2 * len(from_fasta.train_sampler) > 2
    for (x, valid), (y, valid_y) in zip(fasta_batches, shard_batches, strict=True):
        assert torch.equal(x, y) and torch.equal(valid, valid_y)
    # The second epoch crops other windows: its batches are not the first's.
    first = {tuple(row) for x, _ in fasta_batches[: len(fasta_batches) // 2] for row in x.tolist()}
    second = {tuple(row) for x, _ in fasta_batches[len(fasta_batches) // 2 :] for row in x.tolist()}
    assert first != second
    val = zip(from_fasta.val_dataloader(), from_shard.val_dataloader(), strict=True)
    assert all(torch.equal(a[0], b[0]) for a, b in val)


def test_a_batch_holds_each_sequence_cropped_to_a_window_with_padding_after_it() -> None:
    seqs = [np.arange(3, 13), np.arange(20, 23), np.arange(30, 37)]
    data = CroppedSequences(seqs, max_len=4, pad_id=1, seed=2)
    x, valid = data[np.array([2, 1, 0]), 7]
    assert x.dtype == torch.long and valid.tolist() == [[True] * 4, [True] * 3 + [False], [True] * 4]
    starts = crop_starts(np.array([10, 3, 7]), 4, seed=2, epoch=7)
    assert x[0].tolist() == list(range(30 + starts[2], 34 + starts[2]))
    assert x[1].tolist() == [20, 21, 22, 1]
    assert x[2].tolist() == list(range(3 + starts[0], 7 + starts[0]))
    # Windows are uniform over those that fit: over many epochs every start of the long sequence occurs.
    seen = {int(crop_starts(np.array([10]), 4, seed=2, epoch=e)[0]) for e in range(200)}
    assert seen == set(range(7))
    fixed = CroppedSequences(seqs, max_len=4, pad_id=1, random_crop=False)
    assert fixed[np.array([0]), 3][0].tolist() == [[3, 4, 5, 6]]


def test_large_vocabularies_take_a_wider_type_and_a_pad_id_beyond_it() -> None:
    shard = TokenShard.from_sequences([np.array([300, 2]), np.array([7])])
    assert shard.tokens.dtype == np.uint16
    x, _ = CroppedSequences(shard, max_len=8, pad_id=70_000)[np.array([1, 0]), 0]
    assert x.tolist() == [[7, 70_000], [300, 2]]


def test_take_and_the_held_out_split_partition_the_sequences() -> None:
    seqs = [np.full(n, n) for n in range(1, 41)]
    shard = TokenShard.from_sequences(seqs)
    part = shard.take(np.array([5, 0, 39]))
    assert [p.tolist() for p in part] == [seqs[5].tolist(), seqs[0].tolist(), seqs[39].tolist()]
    dm = SequenceDataModule(shard, None, pad_id=0, max_tokens=256, valid_fraction=0.1)
    lengths = sorted(dm.train.shard.lengths.tolist() + dm.valid.shard.lengths.tolist())
    assert len(dm.valid) == 4 and lengths == list(range(1, 41))


def test_resume_mid_epoch_gives_the_batches_of_an_uninterrupted_run() -> None:
    lengths = np.arange(5, 200)
    run = BucketBatchSampler(lengths, 1024, seed=1)
    uninterrupted = [b.tolist() for _ in range(2) for b, _ in run]
    resumed = BucketBatchSampler(lengths, 1024, seed=1)
    resumed.resume_at(len(resumed) + 3)
    assert [b.tolist() for b, _ in resumed] == uninterrupted[len(run) + 3 :]


def test_a_shard_of_another_modality_is_refused(tmp_path: Path) -> None:
    TokenShard.from_sequences([np.array([1, 2])], {"modality": "table"}).save(tmp_path)
    with pytest.raises(SeqdiffError, match="not 'protein'"):
        read_split(str(tmp_path), ProteinAdapter())
