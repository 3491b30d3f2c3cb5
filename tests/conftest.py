"""Shared fixtures: small data files written by the tests and one tiny trained digits run.

Everything here is deterministic (fixed seeds, fp32) and small enough for a 2-core CPU.
"""

from __future__ import annotations

# isort: off
import autoencoders  # before torch, as a user should: idle OpenMP threads then sleep (wait_policy)

# isort: on
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FAST, IDX_STEMS, tiny_idx_arrays, write_idx

# Tiny models gain nothing from intra-op threads, and oversubscribed cores (parallel jobs,
# other processes) make multi-threaded torch very slow; one thread is also reproducible.
torch.set_num_threads(1)
# cached baselines go to a fresh directory, never the user's cache
os.environ["AUTOENCODERS_CACHE"] = tempfile.mkdtemp(prefix="autoencoders-cache-")


@pytest.fixture(autouse=True, scope="session")
def timed_choices_are_kept_at_once():
    """A ``--precision auto`` choice is kept the first time it is timed, as on a quiet machine: under
    parallel tests every timing is busy, and a later quiet one could change the choice between two
    runs a test compares (tests of the provisional choice set ``measured_alone`` themselves)."""
    from autoencoders.training import precision

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "measured_alone", lambda measure: (measure(), True))
        yield


@pytest.fixture(autouse=True)
def global_generators_seeded():
    """Each test starts from the same global random state, whichever tests ran before it in its
    worker: unseeded draws (``torch.rand``, an estimator's ``random_state=None``) are then the same
    in every run, alone or under ``-n logical``."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def idx_dir(tmp_path):
    """Factory: a directory holding the four standard IDX files (gzipped or not)."""

    def make(gz: bool = False, name: str = "idx") -> tuple[Path, dict[str, np.ndarray]]:
        directory = tmp_path / name
        directory.mkdir()
        arrays = tiny_idx_arrays()
        for stem in IDX_STEMS:
            write_idx(directory / stem, arrays[stem], gz)
        return directory, arrays

    return make


@pytest.fixture
def npy_data(tmp_path):
    """A 60x6 float array in [0, 1] and labels 0..59 (the row ids) as .npy files."""
    x = np.random.default_rng(1).random((60, 6)).astype(np.float32)
    xp, yp = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(xp, x)
    np.save(yp, np.arange(60, dtype=np.int64))
    return xp, yp, x


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """One tiny run on digits ([64, 32, 8], 3 epochs), shared read-only by many tests."""
    out = tmp_path_factory.mktemp("digits") / "run"
    return autoencoders.train(data="digits", layers=[64, 32, 8], epochs=3, out=str(out), **FAST)
