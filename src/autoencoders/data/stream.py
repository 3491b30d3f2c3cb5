"""Rows of an on-disk array streamed in shuffled chunks, so training data can exceed RAM.

Each chunk maps only its own slice of the file and drops the mapping after copying it, so
resident memory stays at a few chunks however large the file is (a single whole-file
memmap would keep every page it ever touched resident).
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

BLOCK_ROWS = 8192  # consecutive rows read together: large sequential reads
BLOCKS_PER_CHUNK = 4  # random blocks mixed per chunk, so batches mix distant parts of the file
# rows whose median distance in the file is at least this many bytes are read one by one, not mapped:
# beyond what the kernel reads ahead around a page it faults in
SPARSE_BYTES = 1 << 16


class RowStream:
    """Selected rows of an N×D array in a file, scaled to float32 [0, 1] as they are read.

    ``rows`` (sorted) picks the rows of this split; ``offset``/``span`` is the scaler.
    """

    def __init__(
        self,
        path: str | Path,
        header_bytes: int,
        dtype: np.dtype,
        shape: tuple[int, int],
        rows: np.ndarray | None = None,
        scaler: tuple[np.ndarray, np.ndarray] | None = None,
        device: torch.device | str = "cpu",
    ):
        self.path, self.header_bytes, self.dtype, self.shape = (
            Path(path),
            header_bytes,
            np.dtype(dtype),
            shape,
        )
        self.rows = np.arange(shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        self.scaler = scaler
        # values beyond [0, 1] clipped to it: a dataset's rows (``with_scaler``), not features or a
        # file read as it is
        self.clip = False
        self.device = torch.device(device)
        self._keep: object = None  # a temporary file this stream reads, kept alive with it

    @classmethod
    def from_memmap(cls, array: np.memmap) -> RowStream:
        """Stream of a memory-mapped 2-D (or N×H×W, flattened) .npy file, read chunk by chunk."""
        if not array.flags.c_contiguous:
            raise UserError(f"{array.filename} is stored in Fortran order; save it C-ordered to stream it")
        shape = (array.shape[0], int(np.prod(array.shape[1:])))
        return cls(array.filename, array.offset, array.dtype, shape)

    @classmethod
    def from_npy(cls, path: str | Path) -> RowStream:
        """Stream of a 2-D (or N×H×W, flattened) .npy file."""
        return cls.from_memmap(np.load(path, mmap_mode="r", allow_pickle=False))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def n_features(self) -> int:
        return self.shape[1]

    def __getitem__(self, rows: np.ndarray) -> torch.Tensor:
        """Rows at positions ``rows`` (sorted) of this stream, in memory."""
        return self.subset(rows).materialise()

    def _derive(self, **changes: object) -> RowStream:
        s = copy.copy(self)
        s.__dict__.update(changes)
        return s

    def subset(self, rows: np.ndarray) -> RowStream:
        """The stream of ``self.rows[rows]``."""
        return self._derive(rows=self.rows[rows])

    def with_scaler(self, scaler: tuple[np.ndarray, np.ndarray] | None, clip: bool = True) -> RowStream:
        """Same rows, scaled by ``(offset, span)`` (then clipped to [0, 1] unless not ``clip``)."""
        return self._derive(scaler=scaler, clip=clip)

    def to(self, device: torch.device | str) -> RowStream:
        """Same rows, chunks delivered on ``device``."""
        return self._derive(device=torch.device(device))

    def _read(self, rows: np.ndarray) -> np.ndarray:
        """File rows ``rows`` (sorted) as float32, mapping only the span they cover, or one by one
        where they lie far apart."""
        row_bytes = self.shape[1] * self.dtype.itemsize
        if len(rows) > 1 and float(np.median(np.diff(rows))) * row_bytes >= SPARSE_BYTES:
            out = self._read_apart(rows, row_bytes)
        else:
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            view = np.memmap(
                self.path,
                self.dtype,
                "r",
                offset=self.header_bytes + lo * row_bytes,
                shape=(hi - lo, self.shape[1]),
            )
            out = np.array(view[rows - lo], dtype=np.float32)
            del view  # unmaps: the pages no longer count as this process's memory
        # every read, not the training rows' scan alone: a trained run reads its other rows unscanned
        if self.dtype.kind == "f" and not (finite := np.isfinite(out)).all():  # before clipping hides inf
            row = int(rows[np.flatnonzero(~finite.all(1))[0]])
            raise UserError(
                f"{self.path} holds missing (NaN) or infinite values, the first in row {row}; fill them in "
                "(impute them) or drop those rows"
            )
        if self.dtype == np.uint8:
            out /= 255.0
        if self.scaler is not None:
            offset, span = self.scaler
            out = (out - offset) / span
        if self.clip:  # also without a scaling: rows beyond the training rows' [0, 1]
            np.clip(out, 0.0, 1.0, out=out)
        return out

    def _read_apart(self, rows: np.ndarray, row_bytes: int) -> np.ndarray:
        """File rows ``rows`` (sorted), read one by one: a mapping of their span would fault in the
        pages around each row too (the kernel reads ahead), all counted as this process's memory
        while mapped (10,000 rows sampled from 2.9 GiB of rows: 2.1 GiB resident)."""
        raw = np.empty((len(rows), self.shape[1]), self.dtype)
        with open(self.path, "rb", buffering=0) as f:
            for i, row in enumerate(rows.tolist()):
                f.seek(self.header_bytes + row * row_bytes)
                if f.readinto(raw[i]) != row_bytes:
                    raise UserError(f"{self.path} ends within row {row}: it is cut short; write it again")
        return raw.astype(np.float32, copy=False)

    def read(self, positions: np.ndarray) -> torch.Tensor:
        """Rows at ``positions`` of this stream, in that order, as a tensor on the stream's device."""
        order = np.argsort(positions, kind="stable")
        out = torch.empty(len(positions), self.shape[1], pin_memory=self._pinned)
        out[torch.from_numpy(order)] = torch.from_numpy(self._read(self.rows[positions[order]]))
        return self._deliver(out)

    @property
    def _pinned(self) -> bool:
        """Whether chunks are staged in page-locked memory: a GPU copies those asynchronously."""
        return self.device.type == "cuda"

    def _deliver(self, chunk: torch.Tensor) -> torch.Tensor:
        """``chunk`` on the stream's device; from pinned memory without waiting for the copy
        (the device's stream orders it before the kernels that use it)."""
        return chunk.to(self.device, non_blocking=self._pinned)

    def chunks(self) -> Iterator[torch.Tensor]:
        """All rows once, in order, in chunks of ``BLOCK_ROWS``."""
        for i in range(0, len(self), BLOCK_ROWS):
            chunk = torch.from_numpy(self._read(self.rows[i : i + BLOCK_ROWS]))
            yield self._deliver(chunk.pin_memory() if self._pinned else chunk)

    def materialise(self) -> torch.Tensor:
        """All rows as one in-memory tensor (filled chunk by chunk: no second copy)."""
        out = torch.empty(len(self), self.shape[1], device=self.device)
        for i, chunk in zip(range(0, len(self), BLOCK_ROWS), self.chunks()):
            out[i : i + len(chunk)] = chunk
        return out

    def scan(self) -> tuple[np.ndarray, np.ndarray, str]:
        """Per-feature (min, max) over the rows and the SHA-256 of their values as read, in one
        pass; refuses NaN or infinite values."""
        lo = np.full(self.shape[1], np.inf, np.float32)
        hi = np.full(self.shape[1], -np.inf, np.float32)
        digest = hashlib.sha256()
        for i in range(0, len(self), BLOCK_ROWS):
            x = self._read(self.rows[i : i + BLOCK_ROWS])  # refuses NaN or infinite values
            np.minimum(lo, x.min(0), out=lo)
            np.maximum(hi, x.max(0), out=hi)
            digest.update(x)
        return lo, hi, digest.hexdigest()


def write_stream(
    fn: Callable[[torch.Tensor], torch.Tensor], source: RowStream | torch.Tensor, width: int
) -> RowStream:
    """``fn`` applied to every row of ``source``, in order, written to a temporary file as a stream.

    Written with plain sequential file writes, so nothing of it stays resident. Where the system
    names a process's open files (Linux: /proc/self/fd), the file has no name of its own: it goes
    with the process however that ends, a kill too, where a named one would stay behind.
    """
    fds = Path("/proc/self/fd")
    if fds.is_dir():
        tmp = tempfile.TemporaryFile(prefix="ae-features-", suffix=".f32")
        path = str(fds / str(tmp.fileno()))
    else:
        tmp = tempfile.NamedTemporaryFile(prefix="ae-features-", suffix=".f32")
        path = tmp.name
    chunks = source.chunks() if isinstance(source, RowStream) else source.split(BLOCK_ROWS)
    n = 0
    for chunk in chunks:
        out = fn(chunk).float().cpu().numpy()
        tmp.write(out.tobytes())
        n += len(out)
    tmp.flush()
    stream = RowStream(path, 0, np.float32, (n, width))
    stream._keep = tmp
    return stream


Rows = torch.Tensor | RowStream


def rows_at(rows: Rows, positions: torch.Tensor) -> torch.Tensor:
    """The rows at ``positions`` (sorted, on the host) in memory on the rows' device: a stream's read
    from its file, a tensor's gathered."""
    if isinstance(rows, RowStream):
        return rows.read(positions.numpy())
    return rows[positions.to(rows.device)]


def in_order(rows: np.ndarray | RowStream, size: int = BLOCK_ROWS) -> Iterator[torch.Tensor]:
    """Rows in memory as one tensor (no copy), or a stream's rows in order, in chunks of ``size``
    (the last shorter): what is computed row by row then never holds the stream whole."""
    if not isinstance(rows, RowStream):
        yield torch.from_numpy(np.ascontiguousarray(rows))
        return
    for i in range(0, len(rows), size):
        yield rows.subset(np.arange(i, min(i + size, len(rows)))).materialise()


def map_rows(
    fn: Callable[[torch.Tensor], torch.Tensor], rows: np.ndarray | RowStream, size: int = BLOCK_ROWS
) -> torch.Tensor:
    """``fn`` of rows in memory, or of a stream's rows chunk by chunk (``in_order``), concatenated.

    A stream's results fill one tensor as they come: kept apart until the end, each small result
    would sit between the chunks' large blocks on the heap, which then grows by a chunk at a time
    (1,000,000 rows of 784: 3.2 GiB resident for 8 MB of scores)."""
    done, start = None, 0
    for chunk in in_order(rows, size):
        part = fn(chunk)
        if done is None:
            if len(part) == len(rows):  # rows in memory: one part, the result
                return part
            done = torch.empty((len(rows), *part.shape[1:]), dtype=part.dtype, device=part.device)
        done[start : start + len(part)] = part
        start += len(part)
    return done


def chunk_order(n: int, generator: torch.Generator) -> Iterator[np.ndarray]:
    """A shuffled pass over positions ``0..n-1`` in chunks that each touch few regions of a file.

    Blocks of ``BLOCK_ROWS`` consecutive positions are visited in random order,
    ``BLOCKS_PER_CHUNK`` at a time, and shuffled within their chunk.
    """
    starts = torch.randperm(-(-n // BLOCK_ROWS), generator=generator).numpy() * BLOCK_ROWS
    for i in range(0, len(starts), BLOCKS_PER_CHUNK):
        pos = np.concatenate([np.arange(a, min(a + BLOCK_ROWS, n)) for a in starts[i : i + BLOCKS_PER_CHUNK]])
        yield pos[torch.randperm(len(pos), generator=generator).numpy()]
