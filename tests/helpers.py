"""Helpers shared by the test modules: run settings and writers for small data files."""

from __future__ import annotations

import contextlib
import copy
import gzip
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# The device test runs train on: the CPU, unless AUTOENCODERS_TEST_DEVICE names another
# (benchmarks/device_check.sh runs the suite with cuda).
DEVICE = os.environ.get("AUTOENCODERS_TEST_DEVICE", "cpu")

# Flat keyword arguments that keep a test run small, quiet and deterministic.
FAST = {"quiet": True, "precision": "fp32", "device": DEVICE, "seed": 0}


def on_cpu(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` itself when its parameters are on the CPU, else a CPU copy of it: a model trained on
    ``DEVICE`` (perhaps a shared fixture's) stays where it is, and CPU rows can go through the copy."""
    first = next(module.parameters(), None)
    if first is None or first.device.type == "cpu":
        return module
    return copy.deepcopy(module).cpu()


@contextlib.contextmanager
def ctrl_c_at_batch(n: int) -> Iterator[None]:
    """Within the block, training raises KeyboardInterrupt (as Ctrl-C does) at its ``n``-th batch,
    counted from the block's start, whatever the step."""
    from autoencoders.training import loop

    real, seen = loop.epoch_batches, [0]

    def interrupted(*args, **kw):
        for batch in real(*args, **kw):
            seen[0] += 1
            if seen[0] == n:
                raise KeyboardInterrupt
            yield batch

    loop.epoch_batches = interrupted
    try:
        yield
    finally:
        loop.epoch_batches = real


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x00 0x00 0x08 ndim, big-endian dims, data."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    """Write ``array`` as an IDX file at ``path`` (``path.gz`` when ``gz``)."""
    data = idx_bytes(array)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def tiny_idx_arrays(n_train: int = 40, n_test: int = 10) -> dict[str, np.ndarray]:
    """4x4 uint8 images whose first pixel is the row id (train 0.., test 100..), labels id % 10."""
    rng = np.random.default_rng(0)
    arrays = {}
    for prefix, n, base in (("train", n_train, 0), ("t10k", n_test, 100)):
        images = rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8)
        images[:, 0, 0] = base + np.arange(n)
        images[0, 1, 1], images[-1, 1, 2] = 0, 255  # full uint8 range is present
        arrays[f"{prefix}-images-idx3-ubyte"] = images
        arrays[f"{prefix}-labels-idx1-ubyte"] = ((base + np.arange(n)) % 10).astype(np.uint8)
    return arrays
