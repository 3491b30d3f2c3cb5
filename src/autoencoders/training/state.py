"""Resumable training: the stages of a run, each through the loop, saved as it goes.

After an epoch that ends ``save_every`` seconds of training or more after the last save, and after
each stage's last epoch, the whole state (model(s), optimizers, schedules, RNG, stage, epoch and
counters) goes into one state file (``io.state``): a run killed at any moment leaves the last
complete state, and resuming from it continues bit-identically (same RNG draws, same batches).
Saving after every short epoch took a quarter of the training time on small data. On a GPU the
state is copied to page-locked host memory without waiting and written to disk by a thread of its
own while the next epoch trains: a run killed then resumes from the state before.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..io.checkpoint import state_mismatch
from ..io.state import STATE_FORMAT, host_copies, join_tensors, split_tensors, write_state
from ..options import TrainConfig
from .capture import RECORDING
from .loop import LoopState, Tensors, fit
from .steps import Step


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global RNG states corruption noise, sampling and dropout draw from, training on
    ``device``: the CPU's and that GPU's. Not every visible GPU's: a run resumed where fewer are
    visible (another ``CUDA_VISIBLE_DEVICES``) would have more states than GPUs to put them on."""
    out = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Put back what ``rng_state`` saved, training on ``device``."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        saved = state.get("cuda", state.get(f"cuda{index}"))  # older states kept each GPU's by number
        if saved is not None:
            torch.cuda.set_rng_state(saved, device)


def _device(step: Step) -> torch.device:
    """Where ``step`` trains."""
    return next(step.module.parameters()).device


class Progress:
    """The stages of one run, in order: runs each through the loop and saves its state.

    On resume, stages before the saved one are skipped (their effect is in the saved
    weights) and the saved one continues from its last saved epoch.
    """

    def __init__(self, path: Path | None, saved: tuple[dict, dict] | None = None):
        self.path = path  # None: this process does not write (a torchrun rank other than 0)
        self.tensors, self.info = saved if saved else ({}, {})
        self.resume_at = self.info.get("stage_index", -1)
        self.history: list[dict] = self.info.get("history", [])
        if type(self.resume_at) is not int or self.resume_at < -1:
            raise self._damaged(f"stage {self.resume_at!r}")
        if not (isinstance(self.history, list) and all(isinstance(row, dict) for row in self.history)):
            raise self._damaged("a history that is not a list of epochs")
        self.history = list(self.history)
        self.modules: dict[str, nn.Module] = {}
        self.count = 0  # stages met so far
        self.marks: dict[str, Any] = dict(self.info.get("marks", {}))  # run-level numbers kept across resumes
        self._elapsed, self._t0 = self.info.get("elapsed", 0.0), time.perf_counter()
        self.listeners: list[Callable[[dict], None]] = []  # told each new history row
        # told the history rows of each saved state once it is on disk, so a resumed run tells none twice
        self.loggers: list[Callable[[list[dict]], None]] = []
        self.unlogged: list[dict] = []  # rows of epochs in no saved state yet
        self.on_disk: list[dict] = []  # rows of the state written last, not logged yet
        self._logged = 0  # how many loggers have been given them
        self.writing: threading.Thread | None = None  # a state being written in the background
        self.write_error: BaseException | None = None  # what stopped it
        self.saved_at = time.perf_counter()  # when the last state was saved (or training began)

    @property
    def elapsed(self) -> float:
        """Training seconds so far, over every process that worked on this run."""
        return self._elapsed + time.perf_counter() - self._t0

    def attach(self, key: str, module: nn.Module) -> None:
        """Save ``module`` with every state; restore it now when the saved state holds it."""
        self.modules[key] = module
        own = {k[len(key) + 1 :]: v for k, v in self.tensors.items() if k.startswith(key + ".")}
        if own:
            device = next(module.parameters()).device
            try:
                module.load_state_dict({k: v.to(device) for k, v in own.items()})
            except RuntimeError as e:  # the shapes of another run's model
                raise UserError(
                    f"the saved training state does not fit this run's {key} ({state_mismatch(e)}): it is "
                    "another run's, or damaged; train again without --resume"
                ) from None

    def will_run(self, index: int) -> bool:
        """Whether stage ``index`` still has to run (it is not before the saved one)."""
        return index >= self.resume_at

    def run_stage(
        self,
        name: str,
        make_step: Callable[[], Step],
        train: Tensors,
        val: Tensors,
        cfg: TrainConfig,
        epochs: int,
    ) -> list[dict]:
        """Run stage ``name`` through the loop (or skip or continue it); return its new history rows."""
        index = self.count
        self.count += 1
        if not self.will_run(index):
            return []
        step, start = make_step(), None
        if index == self.resume_at:
            if self.info["stage"] != name:
                raise UserError(
                    f"the saved state is at stage '{self.info['stage']}' but this run's stage "
                    f"{index + 1} is '{name}'; was config.json edited? Train again without --resume"
                )
            # checksums written again over edited contents pass the file's own checks: what does not
            # fit is found here, where it is applied
            try:
                step.load_state_dict(join_tensors(self.info["step"], self.tensors))
                start = self._loop_state(step.module, epochs)
                saved = {k[4:]: v for k, v in self.tensors.items() if k.startswith("rng.")}
                set_rng_state(saved, _device(step))
            except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
                what = f"no {e.args[0]!r}" if isinstance(e, KeyError) and e.args else state_mismatch(e)
                raise self._damaged(what) from None

        def save(state: LoopState, row: dict) -> None:
            self.history.append(row)
            self.unlogged.append(row)
            last = state.epoch >= epochs or state.stopped
            if last or time.perf_counter() - self.saved_at >= cfg.save_every:
                self.save(index, name, step, state)
            for listener in self.listeners:
                listener(row)

        try:
            history = fit(step, train, val, cfg, epochs, stage=name, start=start, on_epoch=save)
        except BaseException:
            self._join()  # an interrupted run too leaves its last state whole, and no writer behind it
            self._log_written()
            raise
        self.written()
        return history

    def _damaged(self, what: str) -> UserError:
        """The error for a saved state that cannot be continued from, ``what`` saying why."""
        return UserError(
            f"{self.path} does not hold a state this run can continue from ({what}): it is damaged or "
            "another run's; train again without --resume"
        )

    def check_resumed(self) -> None:
        """A UserError where the saved state's stage was none of the run's stages, now all met."""
        if self.resume_at >= self.count:
            raise self._damaged(f"stage {self.resume_at + 1} of a run of {self.count}")

    def _loop_state(self, module: nn.Module, epochs: int) -> LoopState:
        """The saved loop's state of a stage of ``epochs`` epochs, checked against ``module`` (a
        ``ValueError`` names what is wrong)."""
        loop, t = self.info["loop"], self.tensors
        best = {k[10:]: v for k, v in t.items() if k.startswith("loop.best.")}
        state = LoopState(
            epoch=loop["epoch"],
            best=math.inf if loop["best"] is None else loop["best"],
            bad_epochs=loop["bad_epochs"],
            stopped=loop["stopped"],
            best_weights=best or None,
            shuffle=t["loop.shuffle"],
        )
        counts = (state.epoch, state.bad_epochs)
        if not (all(type(n) is int and n >= 0 for n in counts) and state.bad_epochs <= state.epoch <= epochs):
            raise ValueError(f"epoch {state.epoch!r} of {epochs}, bad epochs {state.bad_epochs!r}")
        if type(state.stopped) is not bool:
            raise ValueError(f"stopped {state.stopped!r}, not true or false")
        if type(state.best) not in (int, float) or math.isnan(state.best):
            raise ValueError(f"a best loss of {state.best!r}")
        if state.shuffle.dtype != torch.uint8:
            raise ValueError(f"a shuffling state of {state.shuffle.dtype}, not bytes")
        own = module.state_dict()
        if best and (best.keys() != own.keys() or any(v.shape != own[k].shape for k, v in best.items())):
            raise ValueError("best weights that do not fit this run's model")
        return state

    def save(self, index: int, name: str, step: Step, loop: LoopState) -> None:
        """Write the whole state after an epoch of stage ``index``; the loggers are told its rows
        once it is on disk."""
        self.written()  # one state in flight at a time
        rows, self.unlogged = self.unlogged, []
        if self.path is None:  # nothing to write: nothing to wait for
            self.on_disk = rows
            self._log_written()
            return
        tensors: dict[str, torch.Tensor] = {}
        for key, module in self.modules.items():
            split_tensors(module.state_dict(), key, tensors)
        split_tensors(rng_state(_device(step)), "rng", tensors)
        split_tensors(loop.shuffle, "loop.shuffle", tensors)
        if loop.best_weights is not None:
            split_tensors(loop.best_weights, "loop.best", tensors)
        info = {
            "format": STATE_FORMAT,
            "stage_index": index,
            "stage": name,
            "loop": {
                "epoch": loop.epoch,
                "best": None if math.isinf(loop.best) else loop.best,
                "bad_epochs": loop.bad_epochs,
                "stopped": loop.stopped,
            },
            "step": split_tensors(step.state_dict(), "step", tensors),
            "history": list(self.history),  # as they are now: the next epoch adds to them
            "marks": dict(self.marks),
            "elapsed": self.elapsed,
        }
        copies, copied = host_copies(tensors), []
        if any(t.is_cuda for t in tensors.values()):
            copied.append(torch.cuda.Event(blocking=True))  # its waiter sleeps: no core spins meanwhile
            copied[0].record()  # behind the copies just queued: the writer waits for it
        job = (self.path, copies, info, copied, rows)
        self.saved_at = time.perf_counter()
        if writes_in_background(tensors):
            self.writing = threading.Thread(target=self._write, args=job, name="state")
            self.writing.start()
        else:
            self._write(*job)
            self.written()

    def _write(
        self,
        path: Path,
        tensors: dict[str, torch.Tensor],
        info: dict[str, Any],
        copied: list[torch.cuda.Event],
        rows: list[dict],
    ) -> None:
        """Write a state once its copies are complete (``copied``: the event behind them, if on a
        GPU), its history ``rows`` to log once it is whole on disk; ``written`` raises what stopped
        it (the rows then belong to no saved state, and a resumed run logs them). Its CUDA calls
        (the wait, destroying the event, freeing page-locked memory) wait while a graph records:
        both are released here, not when the thread lets go of its arguments. Writing the file
        makes none, so a graph may record meanwhile."""
        try:
            try:
                with RECORDING:
                    for event in copied:
                        event.synchronize()
                write_state(path, tensors, info)
            finally:
                with RECORDING:
                    tensors.clear()
                    copied.clear()
            self.on_disk = rows
        except BaseException as e:
            self.write_error = e

    def _join(self) -> None:
        """Wait until the last state saved is on disk, or its writing has failed."""
        if self.writing is not None:
            self.writing.join()
            self.writing = None

    def written(self) -> None:
        """Wait until the last state saved is on disk, and tell the loggers its rows; raise what
        stopped its writing."""
        self._join()
        if self.write_error is not None:
            error, self.write_error = self.write_error, None
            raise error
        self._log_written()

    def _log_written(self) -> None:
        """Give each logger the rows of the state on disk, once: a logger that a Ctrl-C stops is not
        given them again when the stopped run logs what it wrote (it would log them twice); the
        loggers after it still are."""
        while self.on_disk and self._logged < len(self.loggers):
            logger = self.loggers[self._logged]
            self._logged += 1
            logger(self.on_disk)
        self.on_disk, self._logged = [], 0


def writes_in_background(tensors: dict[str, torch.Tensor]) -> bool:
    """Whether a state of ``tensors`` is written by a thread of its own: when they are on a GPU,
    whose epochs can be shorter than hashing and writing their state (0.2–0.35 s on a 2-core CPU
    for the 34 MB of a 784-1000-500-250-30 stack and its Adam moments) and whose host is idle while
    its kernels run. On a CPU, training's threads would share the cores with it."""
    return any(t.is_cuda for t in tensors.values())
