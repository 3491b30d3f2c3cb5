"""TensorBoard event files of a run's history (optional: needs the ``tensorboard`` package)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def require() -> None:
    """A UserError naming the install command when TensorBoard cannot be written."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UserError(
            "--tensorboard needs the tensorboard package: pip install 'autoencoders[tensorboard]' "
            "(or pip install tensorboard)"
        ) from None


class EventLog:
    """Writes history rows as scalars tagged ``STAGE/COLUMN`` at step = epoch."""

    def __init__(self, directory: Path):
        require()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(directory))

    def __call__(self, rows: list[dict]) -> None:
        for row in rows:
            for key, value in row.items():
                if key not in ("stage", "epoch") and isinstance(value, int | float):
                    self.writer.add_scalar(f"{row['stage']}/{key}", value, row["epoch"])
        self.writer.flush()  # a run killed later keeps what was logged

    def close(self) -> None:
        self.writer.close()
