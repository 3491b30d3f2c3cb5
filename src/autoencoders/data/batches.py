"""Batches of rows for the training loop: drawn on the rows' own device when they are in memory, in
shuffled chunks read from disk when they are streamed; split between processes under torchrun."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .stream import BLOCK_ROWS, Rows, RowStream, chunk_order


def batches(
    n: int, batch_size: int, generator: torch.Generator | None, device: torch.device | str = "cpu"
) -> Iterator[torch.Tensor]:
    """Index slices of a permutation of ``range(n)`` drawn on the generator's device (in order on
    ``device`` when ``generator`` is None)."""
    if generator is None:
        order = torch.arange(n, device=device)
    else:
        order = torch.randperm(n, generator=generator, device=generator.device)
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def batches_per_epoch(rows: int, batch_size: int, world: int = 1, whole: bool = False) -> int:
    """How many batches (updates) ``epoch_batches`` gives each of ``world`` processes in a pass over
    ``rows`` (``whole``: full batches only): every global batch, the last one unless it has fewer
    rows than processes, or is not full."""
    last = rows % batch_size
    return rows // batch_size + (last >= _fewest(rows, batch_size, world, whole) if last else 0)


def _fewest(rows: int, batch_size: int, world: int, whole: bool) -> int:
    """The fewest rows a batch of a pass over ``rows`` may have: one a rank (a rank with none has no
    loss to average), or with ``whole`` a full batch, where there is one."""
    return max(world, batch_size if whole and rows >= batch_size else 0)


Tensors = Rows | tuple[torch.Tensor, ...]


def as_tuple(data: Tensors) -> tuple[Rows, ...]:
    """Row-aligned parts of ``data``: a tuple as it is, one tensor or stream as a tuple of one."""
    return data if isinstance(data, tuple) else (data,)


def streamed(data: tuple[Rows, ...]) -> bool:
    """Whether any part of ``data`` is read from disk as it goes (a RowStream)."""
    return any(isinstance(t, RowStream) for t in data)


def first_batch(data: tuple[Rows, ...], batch_size: int) -> tuple[torch.Tensor, ...]:
    """The first ``batch_size`` rows of every part of ``data``, in memory on its device."""
    return tuple(
        t[np.arange(min(batch_size, len(t)))] if isinstance(t, RowStream) else t[:batch_size] for t in data
    )


def shuffler(data: tuple[Rows, ...], seed: int) -> torch.Generator:
    """The generator that shuffles ``data``: on the rows' device when they are in memory, on the
    host for a stream (whose chunk positions are read from disk there)."""
    device = "cpu" if streamed(data) else data[0].device
    return torch.Generator(device=device).manual_seed(seed)


def epoch_batches(
    data: tuple[Rows, ...],
    batch_size: int,
    generator: torch.Generator | None,
    rank: int = 0,
    world: int = 1,
    whole: bool = False,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Row-aligned batches of ``data``: shuffled with a generator, in order without.

    In-memory tensors are gathered by indices drawn on their own device (``generator`` lives
    there), so a batch costs no host work or copy. When any part is a RowStream, the pass reads
    shuffled chunks (see ``chunk_order``) and every part is sliced by the same positions; the
    rows a chunk leaves over a whole number of batches go on to the next chunk, so every batch but
    the pass's last is full (a captured step replays only batches of its own size).
    With ``world`` > 1 every rank draws the same global batches and keeps slice
    ``rank::world`` of each, reading only those rows of a stream; a final global batch with
    fewer rows than ranks is skipped by all of them (a rank with no rows has no loss to average).
    With ``whole`` the pass's last batch is left out unless it is full (or the only one): a step
    that normalises each batch by its own statistics blows up on a few rows.
    """
    fewest = _fewest(len(data[0]), batch_size, world, whole)
    if not streamed(data):
        for idx in batches(len(data[0]), batch_size, generator, data[0].device):
            if len(idx) >= fewest:
                idx = idx[rank::world]
                yield tuple(t[idx] for t in data)
        return
    n = len(data[0])
    if generator is None:
        chunks = (np.arange(i, min(i + BLOCK_ROWS, n)) for i in range(0, n, BLOCK_ROWS))
    else:
        chunks = chunk_order(n, generator)
    for pos in _whole_batches(chunks, batch_size):
        local = [idx[rank::world] for idx in batches(len(pos), batch_size, generator) if len(idx) >= fewest]
        if not local:  # a last chunk with fewer rows than ranks: no rank has a batch in it
            continue
        mine = pos[torch.cat(local).numpy()]
        index = torch.from_numpy(mine)
        parts = [t.read(mine) if isinstance(t, RowStream) else t[_on(index, t.device)] for t in data]
        start = 0
        for idx in local:
            yield tuple(p[start : start + len(idx)] for p in parts)
            start += len(idx)


def _whole_batches(chunks: Iterator[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    """``chunks`` regrouped so that each holds a multiple of ``batch_size`` positions: what one
    leaves over opens the next; the last holds the rest."""
    carry = np.empty(0, dtype=np.int64)
    for pos in chunks:
        pos = np.concatenate([carry, pos])
        whole = len(pos) - len(pos) % batch_size
        pos, carry = pos[:whole], pos[whole:]
        if len(pos):
            yield pos
    if len(carry):
        yield carry


def _on(index: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``index`` (host memory) on ``device``: to a GPU from page-locked memory without waiting, as
    the streamed parts' rows go, where a copy from pageable memory would wait for its queued work."""
    if device.type == "cpu":
        return index
    return index.pin_memory().to(device, non_blocking=True)
