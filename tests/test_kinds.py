"""A new model kind is one class and one line in the kinds table: a kind defined in this file alone
trains, saves, reloads, reports and classifies through the toolkit's own paths."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from helpers import FAST
from torch import nn

import autoencoders
from autoencoders import DenseAutoencoder, kinds
from autoencoders.fields import POSITIVE, option
from autoencoders.options import ModelConfig


@dataclass
class ShallowConfig:
    """The throw-away kind's own section: ``[shallow]`` in TOML, ``--gain`` on the command line."""

    gain: float = option(1.0, "scale of the initial weights", range=POSITIVE)


class Shallow(DenseAutoencoder):
    """One sigmoid code layer between input and output: a kind no module of the package knows."""

    kind = "shallow"

    @classmethod
    def from_config(cls, m: ModelConfig, own: ShallowConfig, input_shape: tuple[int, ...]) -> Shallow:
        model = cls(
            [math.prod(input_shape), (m.layers or [0, 6])[-1]],
            code_activation="sigmoid",
            input_shape=input_shape,
        )
        with torch.no_grad():
            for layer in model.modules():
                if isinstance(layer, nn.Linear):
                    layer.weight.mul_(own.gain)
        return model


@pytest.fixture
def shallow(monkeypatch):
    """The kind, in the table for this test only."""
    kind = kinds.Kind(
        "shallow", "one code layer", "autoencoders train --model shallow", Shallow.from_config, ShallowConfig
    )
    monkeypatch.setitem(kinds.KINDS, "shallow", kind)
    return kind


def test_a_kind_defined_in_a_test_file_trains_saves_loads_reports_and_classifies(shallow, tmp_path):
    run = autoencoders.train(
        data="digits", model="shallow", layers=[64, 6], epochs=3, gain=0.5, out=str(tmp_path / "run"), **FAST
    )
    assert isinstance(run.model, Shallow) and run.config.kind_options.gain == 0.5
    losses = [row["train_loss"] for row in run.history]
    assert losses[-1] < losses[0]
    assert (run.dir / "report.html").is_file() and "linear_probe_accuracy" in run.metrics
    loaded = autoencoders.load(run.dir)
    x = torch.rand(5, 64)
    assert isinstance(loaded, Shallow)
    assert torch.equal(loaded.encode(x), run.model.cpu().eval().encode(x))
    result = autoencoders.classify(run.dir, n_labels=10, method="frozen", epochs=2, quiet=True)
    assert 0.1 < result.metrics["test_accuracy"] <= 1.0  # ten classes: chance is 0.1


def test_a_kind_is_named_once(shallow):
    with pytest.raises(ValueError, match="registered twice"):
        kinds.register(shallow)
    assert kinds.sections()["shallow"] is ShallowConfig
