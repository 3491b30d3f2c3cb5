"""The training loop's contracts: a new order of the rows every epoch, per-example averages."""

from __future__ import annotations

import pytest
import torch
from helpers import FAST

import autoencoders
from autoencoders import DenseAutoencoder, TrainConfig
from autoencoders.data.batches import epoch_batches, shuffler
from autoencoders.training import loop
from autoencoders.training.steps import autoencoder_step

# a rate too small to move float32 weights: the model stays as it began, so every batch's loss is
# one model's, and an epoch's average can be checked against that model's loss on all rows at once
STILL = {"lr": 1e-30, "quiet": True, "precision": "fp32", "device": "cpu", "seed": 3}


def _rows(n: int) -> torch.Tensor:
    """``n`` rows of 4 features, each named by its first: row i holds i / n there."""
    x = torch.rand(n, 4, generator=torch.Generator().manual_seed(0))
    x[:, 0] = torch.arange(n) / n
    return x


def test_every_epoch_shuffles_the_rows_anew_from_one_generator(monkeypatch):
    x, epochs, seen = _rows(40), 3, []
    real = loop.epoch_batches

    def recorded(*args, **kwargs):
        order = []
        seen.append(order)
        for batch in real(*args, **kwargs):
            order.append(batch[0][:, 0])
            yield batch

    monkeypatch.setattr(loop, "epoch_batches", recorded)
    cfg = TrainConfig(batch_size=8, **STILL)
    loop.fit(autoencoder_step(DenseAutoencoder([4, 2]), cfg, 15), x, x[:0], cfg, epochs)
    orders = [torch.cat(order) for order in seen]
    assert all(torch.equal(order.sort().values, x[:, 0]) for order in orders)  # every row, once
    assert len({tuple(order.tolist()) for order in orders}) == epochs  # a new order each epoch
    generator = shuffler((x,), cfg.seed)  # the one generator, drawn epoch after epoch
    for order in orders:
        assert torch.equal(order, torch.cat([b[0][:, 0] for b in epoch_batches((x,), 8, generator)]))


def test_an_epochs_losses_are_per_example_means_over_every_row():
    x = _rows(100)  # batches of 32: the last holds 4 rows, and counts as 4, not as 32
    model = DenseAutoencoder([4, 2])
    cfg = TrainConfig(batch_size=32, **STILL)
    step = autoencoder_step(model, cfg, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = loop.fit(step, x, x[:0], cfg, epochs=1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing moved
    with torch.no_grad():
        whole = float(step.eval_batch((x,))["loss"])
    assert history[0]["train_loss"] == pytest.approx(whole, rel=1e-6)
    rows = _rows(2100)  # evaluated in batches of 1024: the last holds 52 rows
    with torch.no_grad():
        whole = float(step.eval_batch((rows,))["loss"])
    assert loop.evaluate_step(step, rows, 32)["loss"] == pytest.approx(whole, rel=1e-6)


def test_a_loss_that_blows_up_names_the_weights_of_its_terms_beside_the_rate(tmp_path):
    from autoencoders.training.loop import Diverged, other_levers

    assert other_levers(["loss", "recon"]) == ""
    assert other_levers(["recon", "kl", "disc", "gen"]) == ", or a lower --beta or --adversarial-lr"
    from autoencoders.training.steps import SemiSupervisedStep  # classify's: the run's --beta is not its flag

    assert other_levers(["recon", "kl", "ce"], SemiSupervisedStep.levers) == ", or a lower --recon-weight"
    from autoencoders.clustering.model import DECStep  # cluster's: IDEC's reconstruction, by --gamma

    assert other_levers(["kl", "recon"], DECStep.levers) == ", or a lower --gamma"
    with pytest.raises(
        Diverged, match=r"lower lr \(now 0\.002\), or a lower sparsity_weight, and overwrite=True"
    ):
        autoencoders.train(
            layers=[64, 16, 4], epochs=1, sparsity="l1", sparsity_weight=1e37, out=tmp_path / "r", **FAST
        )
