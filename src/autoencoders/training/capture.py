"""A training step replayed as one CUDA graph: forward, every loss term, backward and the optimizer
updates launched by one call instead of dozens of kernels driven from Python.

A small autoencoder's step on a GPU is bound by those launches (the GPU finishes each kernel
before Python issues the next), so replaying the recorded kernels is where its speed is.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import warnings
from collections.abc import Callable, Iterator

import torch

from ..errors import SettingWarning, UserError, say, user_stacklevel
from ..runtime.distributed import rank_and_size
from .steps import Batch, Step

WARMUP = 3  # eager batches before the first capture: kernels pick workspaces, optimizers make state
# held while a graph records: a CUDA call from another thread (a state's writer) could invalidate it
RECORDING = threading.Lock()
# an epoch with fewer full batches than this runs eagerly when it would need a graph of its own:
# recording and instantiating a graph costs several eager steps, which a few replays cannot repay
CAPTURE_WORTH = 8


class CudaGraphs:
    """The CUDA calls a captured step makes (tests stand a CPU double in for them)."""

    _side: torch.cuda.Stream | None = None

    def side(self) -> torch.cuda.Stream:
        """The one side stream the step's warm-ups and captures run on, as ``torch.cuda.graph`` keeps
        one: cuBLAS keeps a workspace for every stream it has run on."""
        if self._side is None:
            self._side = torch.cuda.Stream()
        return self._side

    @contextlib.contextmanager
    def warmup(self) -> Iterator[None]:
        """The context eager warm-up batches run in: a side stream, as capture requires."""
        side = self.side()
        side.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(side):
                yield
        finally:  # a batch that failed left work queued there too
            torch.cuda.current_stream().wait_stream(side)

    def capture(
        self, fn: Callable[[], dict[str, torch.Tensor]], generators: list[torch.Generator]
    ) -> tuple[Callable[[], None], dict[str, torch.Tensor]]:
        """Record ``fn``'s kernels, run them once, and return (replay, ``fn``'s outputs).

        ``torch.cuda.graph`` would do the recording, but when ``fn`` fails there, its exit raises
        the ended capture's own error instead of ``fn``'s and leaves the capture stream current;
        here ``fn``'s error is raised, on the stream the step runs on."""
        graph = torch.cuda.CUDAGraph()
        if generators and not hasattr(graph, "register_generator_state"):
            # replays would otherwise draw the same numbers every batch
            raise RuntimeError(
                f"torch {torch.__version__} cannot record a step's own random generator in a graph; "
                "a newer torch can"
            )
        for generator in generators:
            graph.register_generator_state(generator)
        side = self.side()
        side.wait_stream(torch.cuda.current_stream())
        # a garbage collection while recording could free another object's pinned memory or event,
        # CUDA calls that invalidate the capture: collect now (as ``torch.cuda.graph`` does), and
        # not during it
        gc.collect()
        collecting = gc.isenabled()
        gc.disable()
        try:
            with RECORDING, torch.cuda.stream(side):
                graph.capture_begin()
                try:
                    out = fn()
                except BaseException:
                    with contextlib.suppress(RuntimeError):  # the invalidated capture's own error
                        graph.capture_end()
                    raise
                graph.capture_end()
        finally:
            if collecting:
                gc.enable()
        torch.cuda.current_stream().wait_stream(side)
        graph.replay()  # capturing only records: this batch's update happens now
        return graph.replay, out


class Eager:
    """``step.train_batch`` as it is."""

    replayed: int | None = None  # batches run as graph replays (None: no graph is tried)

    def __init__(self, step: Step):
        self.step = step

    def new_epoch(self, full_batches: int) -> None:
        """Called before each epoch, which will have ``full_batches`` batches of the full size."""

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        return self.step.train_batch(batch)


class CapturedStep(Eager):
    """``step.train_batch`` recorded once as a CUDA graph and replayed for every full batch.

    The first ``WARMUP`` batches run eagerly; the batch after them is captured into static input
    buffers, which later batches of its shape are copied into before each replay. The graph
    lasts across epochs until the numbers it holds as constants change (``step.graph_constants``:
    loss weights during a warm-up, k during a k schedule); then the next epoch records its own,
    or runs eagerly when it has fewer than ``CAPTURE_WORTH`` full batches and its constants moved
    since the epoch before. A batch of fewer rows (the final partial batch of an epoch) runs
    eagerly on the same parameters and optimizer state, and is never recorded. The learning rate
    is a device tensor the schedule sets between replays. A step that fails to capture says why
    in one line and trains on eagerly; should the failed capture leave CUDA unable to run it
    eagerly, the run stops with one line naming the way out.
    """

    def __init__(self, step: Step, graphs: CudaGraphs | None = None, batch_rows: int | None = None):
        super().__init__(step)
        self.graphs = graphs or CudaGraphs()
        self.seen, self.failed, self.replayed = 0, False, 0
        self.replay: Callable[[], None] | None = None
        self.constants: tuple | None = None  # what the graph in ``replay`` holds fixed
        self.previous: tuple | None = None  # the last epoch's constants
        self.eager_epoch = False
        self.batch_rows = batch_rows  # a full batch's rows: only such batches are recorded
        self.inputs: Batch = ()
        self.outputs: dict[str, torch.Tensor] = {}

    def new_epoch(self, full_batches: int) -> None:
        constants = self.step.graph_constants()
        if constants != self.constants:
            self.replay, self.outputs = None, {}  # released: its constants are not this epoch's
        # a graph for a few batches pays only when later epochs replay it too: not while its constants move
        moved = self.previous is not None and constants != self.previous
        self.eager_epoch = self.replay is None and full_batches < CAPTURE_WORTH and moved
        self.previous = constants

    def __call__(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.batch_rows is None:
            self.batch_rows = len(batch[0])
        if self.failed or self.eager_epoch or len(batch[0]) != self.batch_rows:
            return self.step.train_batch(batch)  # a partial batch neither warms up nor is recorded
        if self.replay is not None:
            for static, rows in zip(self.inputs, batch):
                static.copy_(rows)
            self.replay()
            self.replayed += 1
            return self.outputs
        if self.seen < WARMUP:
            self.seen += 1
            with self.graphs.warmup():
                return self.step.train_batch(batch)
        return self._capture(batch)

    def _capture(self, batch: Batch) -> dict[str, torch.Tensor]:
        inputs = tuple(t.clone() for t in batch)
        for optimizer in self.step.optimizers.values():
            optimizer.zero_grad()  # gradients are allocated inside the graph
        why = None
        try:
            self.replay, self.outputs = self.graphs.capture(
                lambda: self.step.train_batch(inputs), self.step.generators()
            )
        except Exception as e:  # whatever stops a capture, the run trains on: never a crash
            why = _first_line(e)
        if why is not None:  # out of the handler: its traceback no longer holds the failed graph
            self.failed = True
            # a warning, not a note: --quiet silences notes, and the run is slower than it would be
            warnings.warn(
                f"this training step cannot be captured as a CUDA graph ({why}); it runs eagerly "
                "(--cuda-graph off skips trying)",
                SettingWarning,
                stacklevel=user_stacklevel(),
            )
            try:
                return self.step.train_batch(batch)
            except RuntimeError as after:  # a capture that failed midway can leave CUDA's state unusable
                raise UserError(
                    f"this training step cannot be captured as a CUDA graph ({why}), and after the failed "
                    f"capture it failed eagerly too ({_first_line(after)}); run again with --cuda-graph off"
                ) from None
        self.inputs, self.constants = inputs, self.step.graph_constants()
        self.replayed += 1  # the capture's own replay trained this batch
        return self.outputs


def _first_line(e: BaseException) -> str:
    """An exception's message in one line, or its type's name when it has none."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def batch_runner(
    step: Step, mode: str, device: torch.device, quiet: bool = False, batch_rows: int | None = None
) -> Eager:
    """What trains one batch: ``step.train_batch`` replayed as a CUDA graph (``mode`` auto or on,
    on a GPU) or run eagerly; a step that cannot be captured says why in one line. ``batch_rows``:
    the rows of a full batch (None: the first batch's)."""
    if mode == "off":
        return Eager(step)
    if device.type != "cuda":
        if mode == "on":
            say(f"--cuda-graph on: CUDA graphs need a GPU; training on {device} runs eagerly", quiet)
        return Eager(step)
    why = step.capture_refusal()
    if rank_and_size()[1] > 1:
        why = "under torchrun the gradients are averaged by hooks a graph does not record"
    if why is not None:
        say(f"training steps run eagerly, not as a CUDA graph: {why}", quiet)
        return Eager(step)
    return CapturedStep(step, batch_rows=batch_rows)
