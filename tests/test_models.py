"""Models and building blocks: tied weights, corruption, freezing, losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autoencoders import Config, DenseAutoencoder, TrainConfig, UserError, kinds
from autoencoders.models.layers import (
    gaussian_noise,
    make_corruption,
    masking_noise,
    salt_and_pepper,
    set_trainable,
)
from autoencoders.run import as_config
from autoencoders.training.steps import autoencoder_step, make_optimizer

LAYERS = [64, 32, 8]


def _model(tied: bool, **kw) -> DenseAutoencoder:
    torch.manual_seed(0)
    return DenseAutoencoder(LAYERS, tied=tied, **kw)


def _loss(model: DenseAutoencoder, x: torch.Tensor) -> torch.Tensor:
    """The reconstruction term the gradient step minimises (mean over the batch)."""
    return model.nll(model(x).logits, x).mean()


# ---------------------------------------------------------------- shapes


def test_dense_shapes_and_mirrored_decoder():
    model = _model(tied=False)
    x = torch.rand(5, 64)
    assert model.encode(x).shape == (5, 8)
    out = model.reconstruct(x)
    assert out.shape == (5, 64) and model(x).logits.shape == (5, 64)
    assert out.min() >= 0 and out.max() <= 1  # sigmoid output
    assert [layer.out_features for layer in model.decoder] == [32, 64]
    assert model.code_size == 8 and model.depth == 2


def test_from_config_defaults_to_d_256_64_16_with_a_code_narrower_than_the_input():
    assert DenseAutoencoder.from_config(Config().model, None, (784,)).layers == [784, 256, 64, 16]
    assert DenseAutoencoder.from_config(Config().model, None, (30,)).layers == [30, 256, 64, 15]
    assert DenseAutoencoder.from_config(Config().model, None, (6,)).layers == [6, 256, 64, 3]


def test_bce_needs_sigmoid_output():
    with pytest.raises(UserError, match="sigmoid"):
        DenseAutoencoder(LAYERS, output_activation="linear", loss="bce")


# ---------------------------------------------------------------- tied weights


def test_tied_decoder_weight_is_the_encoder_tensor_transposed():
    model = _model(tied=True)
    for k, dec in enumerate(model.decoder):
        enc = model.encoder[model.depth - 1 - k]
        assert torch.equal(dec.weight, enc.weight.t())
        assert dec.weight.data_ptr() == enc.weight.data_ptr()  # same storage, not a copy
    # an in-place change of the encoder weight is seen by the decoder
    with torch.no_grad():
        model.encoder[-1].weight.mul_(0).add_(0.25)
    assert torch.all(model.decoder[0].weight == 0.25)
    assert model.decoder[0].weight.shape == (32, 8)


def test_tied_state_dict_and_parameter_count():
    tied, untied = _model(tied=True), _model(tied=False)
    assert set(tied.state_dict()) == {
        "encoder.0.weight",
        "encoder.0.bias",
        "encoder.1.weight",
        "encoder.1.bias",
        "decoder.0.bias",
        "decoder.1.bias",
    }
    assert "decoder.0.weight" in untied.state_dict()
    n_tied = sum(p.numel() for p in tied.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - n_tied == 64 * 32 + 32 * 8  # exactly the decoder weights are shared


def test_tied_gradient_flows_into_the_shared_weight_from_both_sides():
    model = _model(tied=True)
    x = torch.rand(4, 64)
    model.decoder[-1](torch.rand(4, 32)).sum().backward()  # decoder use only
    assert model.encoder[0].weight.grad is not None
    assert model.encoder[0].weight.grad.abs().sum() > 0
    model.zero_grad()
    _loss(model, x).backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0


def test_tied_model_moves_and_loads_state_as_one():
    a, b = _model(tied=True), DenseAutoencoder(LAYERS, tied=True)
    b.load_state_dict(a.state_dict())
    x = torch.rand(3, 64)
    assert torch.equal(a.reconstruct(x), b.reconstruct(x))
    assert b.decoder[0].weight.data_ptr() == b.encoder[-1].weight.data_ptr()


# ---------------------------------------------------------------- corruption


def test_masking_zeroes_about_the_requested_fraction():
    torch.manual_seed(0)
    x = torch.rand(200, 500) + 0.5  # no zeros to start with
    y = masking_noise(x, 0.3)
    zeroed = (y == 0).float().mean().item()
    assert zeroed == pytest.approx(0.3, abs=0.01)
    kept = y != 0
    assert torch.equal(y[kept], x[kept])  # the rest is untouched


def test_salt_and_pepper_sets_values_to_their_lowest_or_highest():
    torch.manual_seed(0)
    x = torch.full((200, 500), 0.5)
    y = salt_and_pepper(x, 0.2)
    assert set(torch.unique(y).tolist()) == {0.0, 0.5, 1.0}
    hit = y != 0.5
    assert hit.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert (y[hit] == 1).float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert set(torch.unique(salt_and_pepper(x, 0.2, low=-1.0, high=3.0)).tolist()) == {-1.0, 0.5, 3.0}


def test_gaussian_noise_changes_values_with_the_given_std():
    torch.manual_seed(0)
    x = torch.rand(200, 500)
    y = gaussian_noise(x, 0.3)
    diff = y - x
    assert (diff != 0).all()
    assert diff.std().item() == pytest.approx(0.3, rel=0.02)
    assert diff.mean().item() == pytest.approx(0.0, abs=0.01)


def test_make_corruption_dispatches_and_none_or_zero_level_changes_nothing():
    x = torch.rand(10, 10) + 0.5
    assert make_corruption("none", 0.5) is None
    assert make_corruption("masking", 0.0) is None
    torch.manual_seed(1)
    assert (make_corruption("masking", 0.5)(x) == 0).any()
    torch.manual_seed(1)
    noisy = make_corruption("salt-and-pepper", 0.5)(torch.full((50, 50), 0.5))
    assert set(torch.unique(noisy).tolist()) == {0.0, 0.5, 1.0}
    torch.manual_seed(1)
    assert (make_corruption("gaussian", 0.2)(x) - x).std().item() == pytest.approx(0.2, rel=0.2)


def test_denoising_step_corrupts_training_inputs_only_and_keeps_the_target_clean():
    torch.manual_seed(0)
    model = DenseAutoencoder(LAYERS)
    step = autoencoder_step(model, TrainConfig(lr=1e-9), 1, make_corruption("masking", 0.5))
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    x = torch.rand(16, 64) + 0.01  # no zeros of its own
    values = step.train_batch((x,))
    zeroed = (seen[0] == 0).float().mean()
    assert 0.4 < zeroed < 0.6 and torch.equal(seen[0][seen[0] != 0], x[seen[0] != 0])
    # the loss compares the reconstruction of the corrupted input with the clean rows
    expected = model.nll(model(seen[0]).logits, x).mean().item()
    assert values["recon"].item() == pytest.approx(expected, rel=1e-4)
    step.eval_batch((x,))
    assert torch.equal(seen[-1], x)  # evaluation sees clean inputs


# ---------------------------------------------------------------- losses


def test_bce_loss_is_per_example_sum_on_logits():
    model = _model(tied=False)
    x = torch.rand(7, 64)
    model.eval()
    pre = model.decode_logits(model.encode(x))
    expected = F.binary_cross_entropy(torch.sigmoid(pre), x, reduction="sum") / 7
    assert _loss(model, x).item() == pytest.approx(expected.item(), rel=1e-4)


def test_mse_loss_applies_output_activation():
    torch.manual_seed(0)
    model = DenseAutoencoder(LAYERS, loss="mse", output_activation="sigmoid")
    model.eval()
    x = torch.rand(7, 64)
    expected = (model.reconstruct(x) - x).pow(2).sum() / 7
    assert _loss(model, x).item() == pytest.approx(expected.item(), rel=1e-6)


# ---------------------------------------------------------------- freezing


def test_set_trainable_freezes_and_unfreezes_everything():
    model = _model(tied=False)
    set_trainable(model, False)
    assert all(not p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="frozen"):
        make_optimizer(model.parameters(), TrainConfig())
    # a frozen module gets no gradients
    x = torch.rand(4, 64, requires_grad=True)
    _loss(model, x).backward()
    assert all(p.grad is None for p in model.parameters())
    set_trainable(model, True)
    assert all(p.requires_grad for p in model.parameters())


def test_set_trainable_on_part_of_a_model_leaves_the_rest_alone():
    model = _model(tied=False)
    set_trainable(model.encoder, False)
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())
    before = [p.detach().clone() for p in model.encoder.parameters()]
    opt = make_optimizer(model.parameters(), TrainConfig(lr=0.1))
    _loss(model, torch.rand(8, 64)).backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, model.encoder.parameters()))


def _rates(decay: str, steps: int, updates: int) -> list[float]:
    """The learning rate before each of ``updates`` updates under ``make_schedulers(decay, steps)``
    at a base rate of 0.1."""
    from autoencoders.training.steps import make_schedulers

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedulers = make_schedulers({"main": opt}, decay, steps=steps)
    rates = []
    for _ in range(updates):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        for scheduler in schedulers.values():
            scheduler.step()
    return rates


def test_cosine_decay_brings_the_learning_rate_to_zero_over_the_stage():
    lrs = _rates("cosine", steps=10, updates=12)
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.05)
    assert lrs[10] == pytest.approx(0.0) and lrs[11] == pytest.approx(0.0)  # stays at zero
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert _rates("none", steps=10, updates=6) == pytest.approx([0.1] * 6)


def test_onecycle_rises_to_the_peak_over_its_first_30_percent_then_falls_to_zero():
    lrs = _rates("onecycle", steps=100, updates=102)
    assert lrs[0] == pytest.approx(0.1 / 25)
    assert max(lrs) == pytest.approx(0.1) and lrs.index(max(lrs)) == 30
    assert all(a < b for a, b in zip(lrs[:30], lrs[1:31]))  # rising
    assert all(a >= b for a, b in zip(lrs[30:], lrs[31:]))  # then falling
    assert lrs[65] == pytest.approx(0.05)  # half-way down the cosine
    assert lrs[100] == pytest.approx(0.0) and lrs[101] == pytest.approx(0.0)


def test_a_rate_held_as_a_tensor_is_scheduled_in_place():
    """A CUDA graph replaying Adam reads its rate from one tensor: the schedule writes into it."""
    from types import SimpleNamespace

    from autoencoders.training.steps import Schedule, lr_factor

    rate = torch.tensor(0.1)
    schedule = Schedule(SimpleNamespace(param_groups=[{"lr": rate}]), "cosine", steps=10)
    for n in range(12):
        assert schedule.optimizer.param_groups[0]["lr"] is rate
        assert rate.item() == pytest.approx(0.1 * lr_factor("cosine", n, 10), abs=1e-7)
        schedule.step()


def test_a_schedule_resumes_from_the_torch_lambdalr_state_earlier_versions_saved():
    from autoencoders.training.steps import lr_factor, make_schedulers

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    old = torch.optim.lr_scheduler.LambdaLR(opt, lambda n: lr_factor("onecycle", n, 100))
    for _ in range(37):
        opt.step()
        old.step()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    make_schedulers({"main": opt}, "onecycle", 100)["main"].load_state_dict(old.state_dict())
    assert opt.param_groups[0]["lr"] == 0.1 * lr_factor("onecycle", 37, 100) == old.get_last_lr()[0]


def test_a_resumed_step_keeps_the_optimizer_as_it_was_built_with_the_saved_rate():
    """A state saved without CUDA graphs (a float rate, not capturable) resumes into a step built
    for them: the rate stays the tensor a graph would read, holding the saved value."""
    cfg = TrainConfig(lr=1e-2, lr_decay="cosine")
    saved = autoencoder_step(DenseAutoencoder([16, 8]), cfg, steps=10)
    for _ in range(4):
        saved.train_batch((torch.rand(8, 16),))
        saved.end_batch()
    step = autoencoder_step(DenseAutoencoder([16, 8]), cfg, steps=10)
    group = step.optimizers["main"].param_groups[0]
    rate = group["lr"] = torch.tensor(group["lr"])  # as built where graphs may replay the update
    group["capturable"] = True
    step.load_state_dict(saved.state_dict())
    group = step.optimizers["main"].param_groups[0]
    assert group["lr"] is rate and group["capturable"] is True
    assert rate.item() == pytest.approx(saved.optimizers["main"].param_groups[0]["lr"])
    state = step.optimizers["main"].state[group["params"][0]]
    assert int(state["step"]) == 4  # the moments and counts are the saved ones


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_scaled_init_keeps_the_signal_through_the_depth_and_survives_a_reset(kind):
    extra = {"channels": [8, 8, 8]} if kind == "conv" else {}
    x = torch.rand(256, 1, 16, 16).flatten(1)
    spread = {}
    for init in ("torch", "scaled"):
        cfg = as_config(model=kind, layers=[256, 128, 64, 32, 8], init=init, **extra)
        torch.manual_seed(0)
        model = kinds.build(cfg.model, cfg.kind_options, (1, 16, 16) if kind == "conv" else (256,))
        with torch.no_grad():
            spread[init] = model(x).logits.std(0).mean().item()  # does the output depend on the input?
    assert spread["scaled"] > 100 * spread["torch"]  # PyTorch's default: a near-constant output
    biases = [m.bias for m in model.modules() if getattr(m, "bias", None) is not None]
    weights = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()  # the from-scratch baseline starts the same way
    assert model.init == "scaled" and all(not b.any() for b in biases)
    assert not any(torch.equal(a, b) for a, b in zip(weights, model.parameters()) if a.dim() > 1)


@pytest.mark.parametrize(
    "kind, tied, loss",
    [
        ("dense", False, "bce"),
        ("dense", True, "bce"),
        ("conv", False, "bce"),
        ("conv", True, "bce"),
        ("vae", False, "bce"),
        ("vae", False, "mse"),  # its learned decoder std too
        ("aae", False, "bce"),
    ],
)
def test_a_reset_leaves_no_trained_parameter_behind(kind, tied, loss):
    """The from-scratch baseline is the network without its training: a tied decoder's own biases too."""
    extra = {"channels": [4]} if kind == "conv" else {}
    cfg = as_config(model=kind, layers=[64, 32, 8], tied=tied, loss=loss, **extra)
    model = kinds.build(cfg.model, cfg.kind_options, (1, 8, 8) if kind == "conv" else (64,))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.123)
    model.reset_parameters()
    assert [n for n, p in model.named_parameters() if (p == 0.123).all()] == []


def test_a_perfect_reconstruction_has_the_loss_floor_and_scores_zero():
    """BCE of grey values never reaches 0: its floor is the rows' own binary entropy, which ``score``
    subtracts so that 0 is a perfect reconstruction whatever a row's brightness."""
    x = torch.rand(6, 16, generator=torch.Generator().manual_seed(0))
    x[0] = 0.0  # a black row: its floor is 0
    bce, sse = DenseAutoencoder([16, 4]), DenseAutoencoder([16, 4], loss="mse")
    perfect = torch.logit(x.clamp(1e-7, 1 - 1e-7))
    torch.testing.assert_close(bce.nll(perfect, x), bce.loss_floor(x), atol=1e-4, rtol=1e-5)
    assert bce.loss_floor(x)[0] == 0 and (bce.loss_floor(x)[1:] > 1).all()
    assert torch.equal(sse.loss_floor(x), torch.zeros(6))


def test_every_activation_and_corruption_the_options_offer_is_built():
    """The options' lists (what --help offers) and the builders' tables name the same things."""
    from autoencoders.models.layers import CORRUPTION, activation
    from autoencoders.options import ACTIVATIONS, CORRUPTIONS

    assert all(isinstance(activation(name), torch.nn.Module) for name in ACTIVATIONS)
    assert set(CORRUPTIONS) == {"none", *CORRUPTION}
    with pytest.raises(UserError, match="unknown activation 'swish'"):
        activation("swish")
