"""Work in a thread beside the one that trains or evaluates: the data's baselines on the CPUs
training leaves idle, a run's figures while its metrics are computed."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

# Python's thread switch interval while a thread runs alongside (its default is 5 ms): a training
# step or the metrics give up Python's lock at every tensor operation and wait for it back while the
# other thread holds it, so each wait is at most this long
SWITCH_SECONDS = 5e-4
_switching = {"threads": 0, "interval": 0.0}  # threads alongside running, the interval before them
_switching_lock = threading.Lock()


def _switch_fast(on: bool) -> None:
    """Count a thread alongside in (``on``) or out: the first in sets ``SWITCH_SECONDS``, the last
    out restores the interval from before, however runs overlap."""
    with _switching_lock:
        if on and _switching["threads"] == 0:
            _switching["interval"] = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_SECONDS)
        _switching["threads"] += 1 if on else -1
        if not on and _switching["threads"] == 0:
            sys.setswitchinterval(_switching["interval"])


class Alongside:
    """``work(stop)`` run in a thread while this one goes on: the data's baselines
    (``eval.metrics.baselines``) on the CPUs training leaves idle, the figures while the
    metrics are computed. ``result`` waits for what it returns; ``close`` sets ``stop``, after which
    the work ends with the part in progress (a run that failed or was interrupted), and waits for that.

    A thread, not a process: its tensor work runs outside Python's lock, it shares the rows in
    memory, and nothing it does draws from the global random state that training uses. Not a daemon:
    a process that exits while a thread is inside torch aborts.
    """

    def __init__(self, work: Callable[[threading.Event], Any], name: str):
        self.done: Future = Future()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, args=(work,), name=name)
        _switch_fast(True)
        try:
            self.thread.start()
        except BaseException:  # never started: its end will not count it out
            _switch_fast(False)
            raise

    def _work(self, work: Callable[[threading.Event], Any]) -> None:
        try:
            result = work(self.stop)
        except BaseException as e:  # raised where the result is asked for
            self.done.set_exception(e)
        else:
            self.done.set_result(result)
        finally:
            _switch_fast(False)

    def result(self) -> Any:
        """What the work returned, once it ends (what it raised, raised here)."""
        return self.done.result()

    def wait(self) -> None:
        """Wait for the work to end, without asking it to stop."""
        self.thread.join()

    def close(self) -> None:
        """Ask the work to stop after the part in progress, and wait for it to end."""
        self.stop.set()
        self.thread.join()
