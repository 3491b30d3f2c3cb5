"""The variants are pieces on one interface, and each does what its name says.

Sparse (KL, squared, L1), k-sparse and winner-take-all codes, contractive, adversarial,
linear ≈ PCA, and their stacked (greedy) forms; combinations that make no sense are refused.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import FAST, ctrl_c_at_batch, on_cpu
from scipy.linalg import subspace_angles

import autoencoders
from autoencoders import Config, DataConfig, DenseAutoencoder, UserError
from autoencoders.errors import SettingWarning
from autoencoders.eval.metrics import encode_all
from autoencoders.eval.probes import PCA
from autoencoders.models.layers import CodeSelect
from autoencoders.models.objectives import jacobian_norm

SIGMOID_ALL = {"code_activation": "sigmoid", "activation": "sigmoid"}
SIGMOID = {"data": "digits", "layers": [64, 32], "code_activation": "sigmoid", **FAST}


@pytest.fixture(scope="module")
def digits():
    return autoencoders.load_dataset(DataConfig())


# ---------------------------------------------------------------- sparse


@pytest.mark.parametrize(("kind", "weight"), [("kl", 10.0), ("squared", 100.0)])
def test_sparse_code_units_average_the_target_activation(tmp_path, digits, kind, weight):
    run = autoencoders.train(
        **SIGMOID, sparsity=kind, sparsity_target=0.05, sparsity_weight=weight, epochs=40, out=str(tmp_path)
    )
    codes = encode_all(on_cpu(run.model), digits.x_test)
    assert abs(float(codes.mean()) - 0.05) <= 0.02
    assert abs(codes.mean(0) - 0.05).max() <= 0.05  # every unit, not only the average
    assert "train_sparsity" in run.history[-1]


def test_l1_sparsity_shrinks_activations_of_any_kind(tmp_path, digits):
    plain = autoencoders.train(data="digits", layers=[64, 32], epochs=15, out=str(tmp_path / "a"), **FAST)
    sparse = autoencoders.train(
        data="digits", layers=[64, 32], epochs=15, sparsity="l1", sparsity_weight=0.5,
        out=str(tmp_path / "b"), **FAST,
    )  # fmt: skip
    a, b = (encode_all(on_cpu(r.model), digits.x_test).abs().sum(1).mean() for r in (plain, sparse))
    assert b < 0.5 * a


def test_kl_sparsity_on_all_layers_penalises_each_encoder_layer():
    from autoencoders.models.objectives import Sparsity

    torch.manual_seed(0)
    model = DenseAutoencoder([64, 16, 8], activation_name="sigmoid", code_activation="sigmoid")
    out = model(torch.rand(20, 64))
    code_only = Sparsity("kl", 0.05, "code")(model, None, None, out)
    every = Sparsity("kl", 0.05, "all")(model, None, None, out)
    rho_hat = out.hidden["layer1"].mean(0)
    kl1 = (0.05 * torch.log(0.05 / rho_hat) + 0.95 * torch.log(0.95 / (1 - rho_hat))).sum()
    assert every.item() == pytest.approx((code_only + kl1).item(), rel=1e-5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sparsity": "kl"}, "sparsity kl compares mean activations in .0, 1.*code_activation sigmoid"),
        (
            {"sparsity": "squared", "code_activation": "sigmoid", "sparsity_layers": "all"},
            "code_activation and activation sigmoid",
        ),
        ({"sparsity": "kl", "code_activation": "sigmoid", "sparsity_target": 1.5}, "sparsity_target"),
        ({"top_k": 3, "top_k_start": 2}, "top_k_start 2 must be at least top_k 3"),
        ({"top_k_warmup": 3}, "give top_k too"),
        ({"top_k": 3, "top_k_start": 6}, "top_k_start and top_k_warmup go together"),
        ({"lifetime_sparsity": 1.0}, r"lifetime_sparsity must be in \[0, 1\)"),
        ({"model": "vae", "top_k": 2}, "top_k shapes a deterministic code"),
        ({"model": "vae", "contractive": 0.1, "sparsity": "l1"}, "sparsity, contractive shape"),
    ],
)
def test_combinations_that_make_no_sense_are_refused(settings, message):
    with pytest.raises(UserError, match=message):
        autoencoders.train(data="digits", **{**FAST, **settings})


def test_top_k_larger_than_the_code_is_refused(tmp_path):
    with pytest.raises(UserError, match="top_k 9 is more than the 8 code units"):
        autoencoders.train(data="digits", layers=[64, 8], top_k=9, out=str(tmp_path), **FAST)
    with pytest.raises(UserError, match="top_k_start 12 is more than the 8 code units"):
        autoencoders.train(
            data="digits", layers=[64, 8], top_k=2, top_k_start=12, top_k_warmup=2, out=str(tmp_path), **FAST
        )


def test_adversarial_autoencoder_with_a_k_sparse_code(tmp_path, digits):
    """It trains, and is warned of: a Gaussian prior draws no zeros for the sparse codes to match."""
    with pytest.warns(
        SettingWarning, match="^--top-k makes most code values 0, where the AAE's gaussian prior"
    ):
        run = autoencoders.train(
            data="digits", model="aae", layers=[64, 32, 8], top_k=3, epochs=2, out=str(tmp_path), **FAST
        )
    assert ((encode_all(on_cpu(run.model), digits.x_test) != 0).sum(1) <= 3).all()


def test_code_only_sparsity_applies_to_the_top_greedy_stage_only(tmp_path):
    run = autoencoders.train(
        data="digits", layers=[64, 32, 16], code_activation="sigmoid", sparsity="kl", pretrain="greedy",
        pretrain_epochs=1, epochs=1, compare=False, out=str(tmp_path), **FAST,
    )  # fmt: skip
    columns = {row["stage"]: "train_sparsity" in row for row in run.history}
    assert columns == {"pretrain layer 1": False, "pretrain layer 2": True, "fine-tune": True}


# ---------------------------------------------------------------- k-sparse and winner-take-all


def test_top_k_keeps_exactly_k_units_and_passes_gradient_only_through_them():
    torch.manual_seed(0)
    select = CodeSelect(k=3)
    h = torch.randn(6, 10, requires_grad=True)
    out = select(h)
    assert ((out != 0).sum(1) == 3).all()
    kept = out != 0
    assert torch.equal(out[kept], h[kept])
    largest = torch.zeros_like(kept).scatter_(1, h.detach().topk(3, dim=1).indices, True)
    assert torch.equal(kept, largest)  # the k largest units of each row are the kept ones
    out.sum().backward()
    assert torch.equal(h.grad, kept.float())


def test_top_k_schedule_falls_linearly_then_holds():
    select = CodeSelect(k=4, k_start=20, warmup=4)  # a new module is in training mode
    assert select.current_k() == 4  # no schedule runs until the loop sets an epoch (a loaded model)
    ks = []
    for epoch in range(1, 8):
        select.epoch = epoch
        ks.append(select.current_k())
    assert ks == [20, 16, 12, 8, 4, 4, 4]
    select.epoch = 2
    assert select.eval().current_k() == 4  # evaluation and use take the final k


def test_lifetime_sparsity_keeps_a_rate_of_the_batch_per_unit_while_training():
    torch.manual_seed(0)
    select = CodeSelect(lifetime=0.25)
    h = torch.rand(40, 6)
    out = select(h)
    assert ((out != 0).sum(0) == 10).all()  # 25 % of 40 rows, per unit
    assert torch.equal(out.max(0).values, h.max(0).values)
    select.eval()
    assert torch.equal(select(h), h)  # at use time every activation stays


def test_k_sparse_run_codes_have_k_units(tmp_path, digits):
    run = autoencoders.train(
        data="digits", layers=[64, 32], top_k=5, top_k_start=16, top_k_warmup=3, epochs=6, out=str(tmp_path),
        **FAST,
    )  # fmt: skip
    codes = encode_all(autoencoders.load(run.dir), digits.x_test)
    assert ((codes != 0).sum(1) <= 5).all() and ((codes != 0).sum(1) == 5).float().mean() > 0.9


def test_conv_with_k_sparse_code(tmp_path, digits):
    run = autoencoders.train(
        data="digits",
        model="conv",
        channels=[4],
        layers=[64, 12],
        top_k=3,
        epochs=2,
        out=str(tmp_path),
        **FAST,
    )
    assert ((encode_all(on_cpu(run.model), digits.x_test) != 0).sum(1) <= 3).all()


# ---------------------------------------------------------------- contractive


@pytest.mark.parametrize("code_activation", ["sigmoid", "tanh", "relu", "linear"])
def test_closed_form_contraction_and_its_gradient_equal_autograd(code_activation):
    """One dense layer's penalty from its code's slopes: the value autograd gives, and the same
    gradient for its weights and biases."""
    torch.manual_seed(0)
    model = DenseAutoencoder([10, 4], code_activation=code_activation)
    x = torch.rand(7, 10) - 0.5  # ReLU units on both sides of 0
    assert model.one_layer_encoder()[0] is model.encoder[0]
    closed = jacobian_norm(model, x)
    # a ReLU or linear layer's penalty does not depend on its bias: a zero gradient, both ways
    grads = {"allow_unused": True, "materialize_grads": True}
    closed_grads = torch.autograd.grad(closed, model.encoder.parameters(), **grads)
    model.one_layer_encoder = lambda: None  # force the autograd path on the same network
    exact = jacobian_norm(model, x)
    assert exact.item() == pytest.approx(closed.item(), rel=1e-5)
    for ours, autograd in zip(closed_grads, torch.autograd.grad(exact, model.encoder.parameters(), **grads)):
        torch.testing.assert_close(ours, autograd, rtol=1e-5, atol=1e-7)


def test_contraction_without_a_closed_form_takes_autograd():
    """GELU's slope is not a function of its output; a deeper encoder has no one layer."""
    for layers, code_activation in (([10, 4], "gelu"), ([10, 6, 4], "sigmoid")):
        assert DenseAutoencoder(layers, code_activation=code_activation).one_layer_encoder() is None


def test_projected_contraction_is_an_unbiased_estimate_of_the_exact_one():
    """Each estimate is the mean of ‖uᵀJ‖² over random sign vectors u; their mean over many draws
    (as training makes them: new ones each time) is the exact ‖J‖²_F (a deep net, where there is no
    closed form), and its spread shrinks as 1/√K with K projections a draw."""
    torch.manual_seed(0)
    model = DenseAutoencoder([20, 16, 12, 6])
    x = torch.rand(5, 20)
    exact = jacobian_norm(model, x).item()
    one = torch.tensor([jacobian_norm(model, x, projections=1).item() for _ in range(4000)])
    four = torch.tensor([jacobian_norm(model, x, projections=4).item() for _ in range(1000)])
    for draws in (one, four):  # within 4 standard errors of the mean
        assert abs(draws.mean().item() - exact) < 4 * draws.std().item() / len(draws) ** 0.5
    assert one.std().item() > 0  # the draws differ: an estimate, not the exact value again
    assert four.std().item() == pytest.approx(one.std().item() / 2, rel=0.15)


def test_the_projections_asked_for_are_the_ones_trained_with_and_validation_draws_the_same():
    """The option reaches the term; training draws new directions each batch from the default
    generator, evaluation the same ones each time from its own, leaving the default stream alone."""
    from autoencoders.models.objectives import regularisers

    (term,) = regularisers(Config().replace(contractive=0.1, contractive_projections=3).model)
    assert term.term.projections == 3 and term.weight == 0.1
    torch.manual_seed(0)
    model = DenseAutoencoder([20, 16, 6])
    x = torch.rand(5, 20)
    with torch.no_grad():
        state = torch.random.get_rng_state()
        evaluated = {jacobian_norm(model, x, projections=1).item() for _ in range(3)}
        assert len(evaluated) == 1 and torch.equal(state, torch.random.get_rng_state())
    trained = {jacobian_norm(model, x, projections=1).item() for _ in range(3)}
    assert len(trained) == 3 and not torch.equal(state, torch.random.get_rng_state())


def test_projections_leave_a_closed_form_contraction_exact():
    torch.manual_seed(0)
    model = DenseAutoencoder([10, 4], code_activation="relu")
    x = torch.rand(7, 10)
    assert torch.equal(jacobian_norm(model, x, projections=1), jacobian_norm(model, x))


@pytest.mark.parametrize(
    ("layers", "code_activation", "weight", "projections"),
    [([64, 32], "sigmoid", 0.1, 0), ([64, 32, 16], "linear", 0.01, 0), ([64, 32, 16], "linear", 0.01, 1)],
    ids=["closed form", "autograd", "one projection"],
)
def test_contractive_lowers_the_jacobian_at_comparable_error(
    tmp_path, digits, layers, code_activation, weight, projections
):
    settings = {"data": "digits", "layers": layers, "code_activation": code_activation, "epochs": 30, **FAST}
    plain = autoencoders.train(**settings, out=str(tmp_path / "a"))
    cae = autoencoders.train(
        **settings, contractive=weight, contractive_projections=projections, out=str(tmp_path / "b")
    )
    with torch.no_grad():
        jac_plain, jac_cae = (
            jacobian_norm(on_cpu(r.model).eval(), digits.x_test).item() for r in (plain, cae)
        )
    assert jac_cae < 0.5 * jac_plain
    assert cae.metrics["test_sse_per_image"] < 1.25 * plain.metrics["test_sse_per_image"]


# ---------------------------------------------------------------- stacked forms


@pytest.mark.parametrize(
    ("variant", "column"),
    [
        (
            {**SIGMOID_ALL, "sparsity": "kl", "sparsity_layers": "all", "sparsity_weight": 1.0},
            "sparsity",
        ),
        ({"contractive": 0.05}, "contractive"),
        ({"corruption": "masking", "noise": 0.2}, None),
    ],
    ids=["stacked-sparse", "stacked-contractive", "stacked-denoising"],
)
def test_stacked_forms_use_the_same_piece_in_every_stage(tmp_path, variant, column):
    run = autoencoders.train(
        data="digits", layers=[64, 32, 16], pretrain="greedy", pretrain_epochs=2, epochs=1, compare=False,
        out=str(tmp_path), **variant, **FAST,
    )  # fmt: skip
    stages = {row["stage"] for row in run.history}
    assert stages == {"pretrain layer 1", "pretrain layer 2", "fine-tune"}
    if column:
        assert all(f"train_{column}" in row for row in run.history)


# ---------------------------------------------------------------- linear AE and PCA


def test_linear_autoencoder_reaches_pca(tmp_path, digits):
    run = autoencoders.train(
        data="digits", layers=[64, 4], activation="linear", code_activation="linear",
        output_activation="linear", loss="mse", epochs=800, lr=0.05, lr_decay="cosine", batch_size=2048,
        val_fraction=0.0, out=str(tmp_path), **FAST,
    )  # fmt: skip
    m = run.metrics
    assert m["test_sse_per_image"] <= 1.02 * m["pca_sse_per_image"]
    pca = PCA(autoencoders.load_dataset(DataConfig(val_fraction=0.0)).x_train, 4)
    decoder = run.model.decoder[0].weight.detach().cpu().numpy()  # 64 × 4: the span of the reconstructions
    assert np.degrees(subspace_angles(decoder, pca.components.T.numpy())).max() < 5


# ---------------------------------------------------------------- adversarial


def _mmd(a: torch.Tensor, b: torch.Tensor) -> float:
    """Squared maximum mean discrepancy with a Gaussian kernel of width sqrt(d)."""

    def k(x, y):
        return torch.exp(-torch.cdist(x, y).pow(2) / (2 * x.shape[1])).mean()

    return float(k(a, a) + k(b, b) - 2 * k(a, b))


def test_adversarial_codes_follow_the_prior(tmp_path, digits):
    settings = {"data": "digits", "layers": [64, 64, 4], "epochs": 30, **FAST}
    plain = autoencoders.train(**settings, out=str(tmp_path / "a"))
    # 630 steps on digits: a faster regularisation phase than the default, which suits larger data
    aae = autoencoders.train(**settings, model="aae", adversarial_lr=2e-3, out=str(tmp_path / "b"))
    prior = torch.randn(len(digits.x_test), 4, generator=torch.Generator().manual_seed(1))
    stats = {}
    for name, run in (("plain", plain), ("aae", aae)):
        z = encode_all(on_cpu(run.model), digits.x_test)
        stats[name] = (z.mean(0).abs().max(), (z.var(0) - 1).abs().max(), _mmd(z, prior))
    assert stats["aae"][0] < 0.25 * stats["plain"][0]
    assert stats["aae"][1] < 0.25 * stats["plain"][1]
    assert stats["aae"][2] < 0.25 * stats["plain"][2]
    assert {"train_disc", "train_gen"} <= set(aae.history[-1])


def test_adversarial_mixture_prior_and_sampling(tmp_path):
    run = autoencoders.train(
        data="digits", model="aae", layers=[64, 32, 4], prior="mixture", components=3, epochs=2,
        out=str(tmp_path), **FAST,
    )  # fmt: skip
    z = run.model.prior_sample(3000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(z, run.model.means).argmin(1)
    assert torch.bincount(nearest, minlength=3).min() > 800  # the three components are all drawn
    rows, shape = autoencoders.sample(run.dir, 5)
    assert rows.shape == (5, 64) and shape == (8, 8)


@pytest.mark.parametrize(
    ("components", "dims", "apart"), [(3, 4, 4.24), (10, 4, 3.0), (10, 2, 1.85), (3, 1, 3.0)]
)
def test_a_mixture_prior_s_means_are_far_apart_whatever_the_code_size(components, dims, apart):
    """Two means closer than a few unit variances make one mode: the prior has fewer than asked."""
    from autoencoders.models.aae import AdversarialAutoencoder

    means = AdversarialAutoencoder([8, dims], prior="mixture", components=components).means
    distances = torch.cdist(means, means) + 99 * torch.eye(components)
    assert means.shape == (components, dims) and distances.min() >= apart - 0.01


# ---------------------------------------------------------------- resuming a composed variant


def test_composed_variant_resumes_to_identical_weights(tmp_path, monkeypatch):
    settings = {
        "data": "digits", "layers": [64, 32, 16], "code_activation": "sigmoid", "corruption": "masking",
        "noise": 0.2, "sparsity": "squared", "sparsity_weight": 5.0, "contractive": 0.05,
        "contractive_projections": 2, "top_k": 4, "top_k_start": 12, "top_k_warmup": 3, "pretrain": "greedy",
        "pretrain_epochs": 1, "epochs": 4, "compare": False, **FAST,
    }  # fmt: skip
    whole = autoencoders.train(**settings, out=str(tmp_path / "whole"))
    with ctrl_c_at_batch(100), pytest.raises(KeyboardInterrupt):  # fine-tuning, with k still falling
        autoencoders.train(**settings, out=str(tmp_path / "cut"))
    resumed = autoencoders.resume(tmp_path / "cut")
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]


def test_codes_that_carry_nothing_are_warned_about_and_counted(tmp_path):
    settings = {"sparsity": "l1", "sparsity_weight": 0.1, "sparsity_layers": "all", "epochs": 20}
    with pytest.warns(
        SettingWarning, match="16 code units is constant .* lower --sparsity-weight or the lea"
    ):
        dead = autoencoders.train(out=str(tmp_path / "dead"), **settings, **FAST)
    assert dead.metrics["dead_code_units"] == 16 and dead.metrics["linear_probe_accuracy"] < 0.2
    alive = autoencoders.train(out=str(tmp_path / "alive"), epochs=3, **FAST)
    assert alive.metrics["dead_code_units"] < 16
