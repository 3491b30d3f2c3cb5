"""The VAE: the importance-sampled NLL against a closed-form likelihood, the ELBO, KL warm-up,
scale heads, sampling and interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import FAST

import autoencoders
from autoencoders import VAE, Config, UserError
from autoencoders.cli import run as cli_run
from autoencoders.eval.likelihood import elbo_parts, importance_sampled_nll
from autoencoders.models.objectives import GaussianKL, Weighted
from autoencoders.trained import open_run

D, K, SIGMA = 6, 2, 0.5


def _ppca(shrink: float = 1.0, widen: float = 0.0) -> tuple[VAE, torch.distributions.MultivariateNormal]:
    """A linear-Gaussian VAE that *is* probabilistic PCA, and PPCA's exact marginal p(x).

    x = W z + mu + eps, z ~ N(0, I), eps ~ N(0, sigma² I). W has orthogonal columns, so the
    exact posterior is diagonal: mean M⁻¹Wᵀ(x − mu), variance sigma² / diag(M), M = WᵀW + sigma² I.
    ``shrink``/``widen`` make the encoder worse (a shrunk mean, a log-variance off by ``widen``).
    """
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(D, K, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 1.0], dtype=torch.float64)
    mu = torch.rand(D, generator=g, dtype=torch.float64)
    m_diag = (w * w).sum(0) + SIGMA**2
    enc_w = (w / m_diag).t()  # M⁻¹Wᵀ
    model = VAE([D, K], output_activation="linear", loss="mse", decoder_std=str(SIGMA)).double()
    with torch.no_grad():
        head = model.encoder[0]
        head.weight.copy_(torch.cat([shrink * enc_w, torch.zeros(K, D, dtype=torch.float64)]))
        head.bias.copy_(torch.cat([-shrink * enc_w @ mu, torch.log(SIGMA**2 / m_diag) + widen]))
        model.decoder[0].weight.copy_(w)
        model.decoder[0].bias.copy_(mu)
    exact = torch.distributions.MultivariateNormal(
        mu, w @ w.t() + SIGMA**2 * torch.eye(D, dtype=torch.float64)
    )
    return model.eval(), exact


def test_iw_nll_equals_the_exact_ppca_likelihood_with_the_exact_posterior():
    torch.manual_seed(0)
    model, exact = _ppca()
    x = exact.sample((200,))
    truth = -exact.log_prob(x)
    for k in (1, 10, 100):
        torch.testing.assert_close(importance_sampled_nll(model, x, k).double(), truth, rtol=1e-6, atol=1e-6)
    # with the exact posterior the ELBO is tight too (KL(q ‖ p(z|x)) = 0): its one-sample
    # estimate is unbiased, so the mean difference is within three standard errors of zero
    recon, kl = elbo_parts(model, x)
    diff = (recon + kl).double() - truth
    assert abs(float(diff.mean())) < 3 * float(diff.std()) / math.sqrt(len(diff))


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_one_target_row_stands_for_each_importance_sample_of_it(loss):
    """The NLL of every sample's decoding against its row, without a copy of the rows per sample:
    the same numbers as the loss on the rows repeated."""
    model = VAE([12, 3], loss=loss)
    g = torch.Generator().manual_seed(0)
    logits = (4 * torch.randn(5, 7, 12, generator=g)).requires_grad_(True)
    rows = torch.rand(7, 12, generator=g)
    repeated = model.nll(logits.reshape(35, 12), rows.repeat(5, 1)).view(5, 7)
    broadcast = model.nll(logits, rows)
    torch.testing.assert_close(broadcast, repeated, rtol=1e-6, atol=1e-5)
    weights = torch.rand(5, 7, generator=g)  # and the gradient, should it be trained through
    torch.testing.assert_close(
        *(torch.autograd.grad((v * weights).sum(), logits)[0] for v in (broadcast, repeated))
    )


def test_iw_nll_with_a_worse_encoder_is_a_bound_that_tightens_with_k():
    # an off-centre, too narrow posterior: the bound stays loose long enough to watch it tighten
    torch.manual_seed(0)
    model, exact = _ppca(shrink=0.5, widen=-1.5)
    x = exact.sample((300,))
    truth = float(-exact.log_prob(x).mean())
    gaps = [float(importance_sampled_nll(model, x, k).mean()) - truth for k in (1, 10, 100, 1000)]
    assert all(g > 1.0 for g in gaps)  # above the exact NLL (log p is bounded from below)
    assert gaps == sorted(gaps, reverse=True)  # tighter with every K
    assert gaps[-1] < 0.6 * gaps[0]
    recon, kl = elbo_parts(model, x)
    assert float((recon + kl).mean()) - truth > gaps[1]  # the ELBO is looser than K = 10


def test_gaussian_kl_term_is_the_closed_form():
    mean, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.3]])
    out = autoencoders.Output(torch.zeros(1, 1), mean, posterior=(mean, logvar))
    expected = sum(0.5 * (m**2 + math.exp(v) - 1 - v) for m, v in zip([0.5, -1.0], [0.2, -0.3]))
    assert GaussianKL()(None, None, None, out).item() == pytest.approx(expected, rel=1e-6)


def test_kl_warmup_rises_linearly_to_beta():
    term = Weighted(GaussianKL(), weight=2.0, warmup=4)
    assert [term.weight_at(e) for e in range(1, 7)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert Weighted(GaussianKL(), 0.5).weight_at(1) == 0.5


def test_warmup_weighs_training_but_validation_is_the_full_objective(tmp_path):
    run = autoencoders.train(
        data="digits", model="vae", layers=[64, 32, 4], epochs=4, kl_warmup=4, beta=2.0, iw_samples=0,
        out=str(tmp_path / "w"), **FAST,
    )  # fmt: skip
    for row in run.history:
        weight = 2.0 * row["epoch"] / 4
        assert row["train_loss"] == pytest.approx(row["train_recon"] + weight * row["train_kl"], rel=1e-5)
        # early stopping compares validation losses of one objective, whatever the epoch
        assert row["val_loss"] == pytest.approx(row["val_recon"] + 2.0 * row["val_kl"], rel=1e-5)


def test_std_head_parametrisation():
    torch.manual_seed(0)
    model = VAE([8, 6, 3], scale="std")
    x = torch.rand(4, 8)
    mean, logvar = model.posterior(x)
    raw = model.encode_hidden(x)[0][:, 3:]
    torch.testing.assert_close(logvar, 2 * torch.log(torch.nn.functional.softplus(raw) + 1e-6))
    assert torch.equal(mean, model.encode(x))


@pytest.mark.parametrize("scale, raw", [("logvar", math.log(0.25)), ("std", math.log(math.expm1(0.5)))])
def test_the_sampled_code_has_the_posteriors_mean_and_standard_deviation(scale, raw):
    """The reparameterised z = μ + σ·ε that training decodes: a code layer giving μ = 1 and σ = 0.5
    for every row (log σ² = log 0.25, or softplus⁻¹(0.5)) samples codes of that mean and spread."""
    torch.manual_seed(0)
    model = VAE([4, 2], scale=scale).train()
    code = [m for part in model.encoder_modules() for m in part.modules() if isinstance(m, torch.nn.Linear)][
        -1
    ]
    with torch.no_grad():
        code.weight.zero_()
        code.bias.copy_(torch.tensor([1.0, 1.0, raw, raw]))
    with torch.no_grad():
        z = model(torch.rand(20_000, 4)).hidden["z"]
    assert z.mean(0).tolist() == pytest.approx([1.0, 1.0], abs=0.02)
    assert z.std(0).tolist() == pytest.approx([0.5, 0.5], rel=0.03)


def test_training_reports_nll_below_the_negative_elbo(tmp_path):
    run = autoencoders.train(
        data="digits",
        model="vae",
        layers=[64, 64, 8],
        epochs=8,
        iw_samples=50,
        out=str(tmp_path / "v"),
        **FAST,
    )
    m = run.metrics
    assert m["test_nll"] < m["test_neg_elbo"]
    assert m["nll_rows"] == m["n_test"] and 0 < m["test_nll_se"] < 5  # fewer test rows than --nll-rows
    assert m["test_neg_elbo"] == pytest.approx(m["test_recon_nll"] + m["test_kl"], rel=1e-6)
    assert 0 < m["active_units"] <= 8
    rows = run.history
    assert rows[-1]["val_loss"] < rows[0]["val_loss"]
    assert rows[-1]["train_loss"] == pytest.approx(rows[-1]["train_recon"] + rows[-1]["train_kl"], rel=1e-5)
    assert (run.dir / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_a_vae_whose_every_posterior_is_the_prior_is_warned_about(tmp_path):
    from autoencoders.errors import SettingWarning

    with pytest.warns(
        SettingWarning,
        match=r"none of the 8 code units is active: .*collapse, KL .*lower --beta.* --kl-warmup$",
    ):
        run = autoencoders.train(
            data="digits", model="vae", layers=[64, 32, 8], beta=50, epochs=5, iw_samples=2,
            out=str(tmp_path / "v"), **FAST,
        )  # fmt: skip
    assert run.metrics["active_units"] == 0 and run.metrics["dead_code_units"] == 0  # collapsed, not dead


def test_a_vae_whose_encoder_gives_every_input_one_code_far_from_the_prior_is_told_to_lower_lr():
    """No unit active, but not collapse: a diverged encoder's posteriors are far from the prior (a
    digits VAE at --lr 0.2: KL 74.7 nats)."""
    from autoencoders.errors import SettingWarning
    from autoencoders.outcome import warn_codes_inactive

    cfg = Config().replace(model="vae", lr=0.2)
    diverged = r"^none of the 8 code units is active, yet .*KL 74.7 nats per image.*a lower --lr than 0.2$"
    with pytest.warns(SettingWarning, match=diverged):
        warn_codes_inactive(8, 74.7, cfg, "image")
    with pytest.warns(SettingWarning, match=r"collapse, KL 0.3 nats.*longer training$"):  # a warm-up given
        warn_codes_inactive(8, 0.3, cfg.replace(kl_warmup=5), "image")


def test_a_vae_s_validation_loss_is_its_weights_alone_not_a_fresh_draw_s():
    """Early stopping and --keep best compare epochs by it: in eval mode the sampled code's noise
    comes from a fixed seed, and training's stream is left as it was."""
    torch.manual_seed(0)
    model, x = VAE([64, 16, 4]), torch.rand(10, 64)
    model.eval()
    before = torch.random.get_rng_state()
    assert torch.equal(model(x).logits, model(x).logits)
    assert torch.equal(before, torch.random.get_rng_state())
    model.train()
    assert not torch.equal(model(x).logits, model(x).logits)


def test_the_nll_of_a_large_test_set_averages_over_a_fixed_sample():
    from autoencoders.eval.metrics import likelihood_metrics

    torch.manual_seed(0)
    model = VAE([64, 16, 4])
    model.nll_rows = 40
    x = torch.rand(100, 64)
    m = likelihood_metrics(model, x, 20)
    assert m["nll_rows"] == 40 and likelihood_metrics(model, x, 20) == m  # the same rows every time
    pick = torch.randperm(100, generator=torch.Generator().manual_seed(0))[:40].sort().values
    nll = importance_sampled_nll(model, x[pick], 20)
    recon, kl = elbo_parts(model, x)  # its bound on the same rows, their codes drawn as the split's
    assert m["nll_rows_neg_elbo"] == pytest.approx(float((recon + kl)[pick].mean())) != m["test_neg_elbo"]
    assert m["test_nll"] == pytest.approx(float(nll.mean()))
    assert m["test_nll_se"] == pytest.approx(float(nll.std()) / 40**0.5)
    model.nll_rows = 0  # all of them
    assert likelihood_metrics(model, x, 20)["nll_rows"] == 100


def test_gaussian_decoder_with_learned_std(tmp_path):
    run = autoencoders.train(
        data="digits", model="vae", layers=[64, 32, 4], loss="mse", epochs=6, iw_samples=10,
        out=str(tmp_path / "g"), **FAST,
    )  # fmt: skip
    assert run.model.log_std.requires_grad
    assert run.model.log_std.item() < 0  # data in [0, 1]: the learned noise shrinks below std 1
    assert math.isfinite(run.metrics["test_nll"])
    with pytest.raises(UserError, match="decoder_std must be 'learned' or a positive number"):
        autoencoders.train(data="digits", model="vae", loss="mse", decoder_std="-1", **FAST)


def test_sample_and_interpolate_cli(tmp_path, capsys):
    run = autoencoders.train(data="digits", model="vae", layers=[64, 32, 4], epochs=2, iw_samples=0,
                             out=str(tmp_path / "v"), **FAST)  # fmt: skip
    assert cli_run(["sample", str(run.dir), "-n", "12", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert cli_run(["sample", str(run.dir), "-n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    rows = np.load(tmp_path / "s.npy")
    assert rows.shape == (5, 64) and rows.min() >= 0 and rows.max() <= 1
    strip, shape = autoencoders.interpolate(run.dir, "digits", (3, 7), steps=6)
    x = autoencoders.reconstruct(run.dir, "digits", "test")[0]
    assert strip.shape == (8, 64) and shape == (8, 8)
    assert np.array_equal(strip[0], x[3]) and np.array_equal(strip[-1], x[7])
    model = autoencoders.load(run.dir)
    with torch.no_grad():
        ends = model.decode(model.encode(torch.from_numpy(x[[3, 7]])))
    np.testing.assert_allclose(strip[[1, 6]], ends.numpy(), rtol=1e-5, atol=1e-6)
    out = tmp_path / "i.png"
    assert cli_run(["interpolate", str(run.dir), "--data", "digits", "--out", str(out), "--pair", "3,7"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_sample_and_interpolate_write_rows_in_the_data_units_too(tmp_path):
    """--units data: the rows as the data gives them (here 5 to 21), where the model works in [0, 1]."""
    x = (5 + 16 * np.random.default_rng(0).random((300, 64))).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    run = autoencoders.train(data=f"npy:{tmp_path / 'x.npy'}", model="vae", layers=[64, 16, 4], epochs=1,
                             iw_samples=0, out=str(tmp_path / "v"), **FAST)  # fmt: skip
    offset, span = open_run(run.dir).scaler
    sample = ["sample", str(run.dir), "-n", "5", "--out"]
    assert cli_run([*sample, str(tmp_path / "s.npy")]) == 0
    assert cli_run([*sample, str(tmp_path / "d.npy"), "--units", "data"]) == 0
    scaled, data = np.load(tmp_path / "s.npy"), np.load(tmp_path / "d.npy")
    assert scaled.max() <= 1 and data.max() > 1
    np.testing.assert_allclose(data, scaled * span + offset, rtol=1e-6)
    strip, _ = autoencoders.interpolate(run.dir, x[:4], (0, 3), steps=3, units="data")
    np.testing.assert_allclose(strip[[0, -1]], np.clip(x[[0, 3]], offset, offset + span), rtol=1e-6)
    with pytest.raises(UserError, match="units must be 'data' or 'scaled', not 'pixels'"):
        autoencoders.sample(run.dir, 2, units="pixels")


def test_sampling_a_model_without_a_prior_is_refused(digits_run, tmp_path):
    with pytest.raises(UserError, match="no prior to sample from"):
        autoencoders.sample(digits_run.dir, 4)
    with pytest.raises(UserError, match="steps must be at least 2"):
        autoencoders.interpolate(digits_run.dir, "digits", steps=1)


def test_the_nll_of_one_row_has_no_error_bar_and_the_metrics_are_standard_json(tmp_path, capsys):
    """A mean of one row has no standard error: none is written (JSON has no NaN) or shown."""
    import json

    out = tmp_path / "v"
    args = ["train", "--model", "vae", "--layers", "64,16,4", "--epochs", "1", "--nll-rows", "1"]
    assert cli_run([*args, "--iw-samples", "5", "--out", str(out), "--quiet", "--precision", "fp32"]) == 0
    said = capsys.readouterr().out
    assert "test NLL " in said and " nats on 1 test image " in said and "±" not in said

    def refuse(constant: str) -> None:
        raise AssertionError(f"metrics.json holds {constant}, which is not JSON")

    m = json.loads((out / "metrics.json").read_text(), parse_constant=refuse)
    assert m["nll_rows"] == 1 and "test_nll_se" not in m and math.isfinite(m["test_nll"])
    assert "samples each on 1 test image, no error bar" in (out / "report.html").read_text()


def test_json_files_hold_no_nan_or_infinity(tmp_path):
    from autoencoders.io.checkpoint import write_json

    write_json(tmp_path / "m.json", {"psnr": math.inf, "se": math.nan, "rows": [1.5, -math.inf], "n": 3})
    assert (tmp_path / "m.json").read_text().split() == (
        '{ "psnr": null, "se": null, "rows": [ 1.5, null ], "n": 3 }'.split()
    )
