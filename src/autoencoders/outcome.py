"""What a trained run's numbers say when it learned little: one warning naming the likeliest cause
and the setting to change (codes that carry nothing, a VAE's inactive code, a reconstruction no
better than the mean row's)."""

from __future__ import annotations

import warnings

from .config import Config
from .errors import SettingWarning, user_stacklevel
from .training.loop import other_levers

# a training loss this many times its last epoch's, on the way: the rate blew training up
BLOWN_UP = 100

# KL to the prior per code unit, in nats, below which inactive units are collapsed onto the prior
COLLAPSED_KL = 0.1


def warn_of_outcome(
    metrics: dict, history: list[dict], updates: int, code_size: int, cfg: Config, noun: str
) -> None:
    """The warning, if any, a run's test ``metrics`` call for (``history``: its own stages' epochs,
    ``updates`` of its weights in them; ``noun``: what a row is, e.g. image)."""
    if metrics.get("mean_row_sse_per_image") == 0:  # no setting would help: the data does not vary
        warnings.warn(
            f"every test {noun} equals the training rows' mean row: the data does not vary, and its codes "
            "can carry nothing about it; train on data whose rows differ",
            SettingWarning,
            stacklevel=user_stacklevel(),
        )
    elif metrics.get("dead_code_units") == code_size:
        warn_codes_dead(code_size, cfg)
    elif metrics.get("active_units") == 0:
        warn_codes_inactive(code_size, metrics["test_kl"], cfg, noun)
    elif metrics["test_sse_per_image"] >= metrics["mean_row_sse_per_image"]:
        warn_learned_nothing(metrics, history, updates, cfg.train.lr, noun)


def warn_codes_dead(units: int, cfg: Config) -> None:
    """Warn that every one of the ``units`` code units is constant over the test rows, naming what
    the run set that can do that."""
    m = cfg.model
    given = (("--sparsity-weight", m.sparsity != "none"), ("--contractive", m.contractive > 0))
    lower = [name for name, on in given if on] + ["the learning rate"]
    warnings.warn(
        f"every one of the {units} code units is constant over the test rows: the codes carry nothing "
        f"about the inputs; lower {' or '.join(lower)}",
        SettingWarning,
        stacklevel=user_stacklevel(),
    )


def warn_learned_nothing(metrics: dict, history: list[dict], updates: int, lr: float, noun: str) -> None:
    """Warn that the model reconstructs the test rows no better than the training rows' mean row,
    and what to change: a higher rate or more epochs, unless the training loss blew up on the way
    (a rate too high, which leaves a model as useless as too few updates do)."""
    said = (
        f"the model reconstructs the test rows no better than the training rows' mean row does (SSE per "
        f"{noun} {metrics['test_sse_per_image']:.4g}, the mean row's {metrics['mean_row_sse_per_image']:.4g})"
    )
    # (a loss that is not finite has already stopped the run: Diverged)
    losses = [(h["train_loss"], h["stage"], h["epoch"]) for h in history if h.get("train_loss") is not None]
    worst = max(losses, default=None, key=lambda loss: loss[0])
    if worst is not None and worst[0] > BLOWN_UP * abs(losses[-1][0]):
        where = f"epoch {worst[2]}" + ("" if worst[1] in ("train", "fine-tune") else f" of {worst[1]}")
        terms = [k.removeprefix("train_") for k in history[-1] if k.startswith("train_")]
        said += (
            f": its training loss reached {worst[0]:.3g} in {where}, over {BLOWN_UP:g} times its last; a "
            f"rate or weight is too high for it: give a lower --lr than {lr:g}{other_levers(terms)}"
        )
    else:
        said += (
            f": it has learned next to nothing in {updates} updates of its weights; train longer (more "
            "--epochs) or with a higher --lr"
        )
    warnings.warn(said, SettingWarning, stacklevel=user_stacklevel())


def warn_codes_inactive(units: int, kl: float, cfg: Config, noun: str) -> None:
    """Warn that no unit of a VAE's code moves with the input: posterior collapse when the posteriors
    are the prior, else an encoder that gives every input one code far from it (too high a rate)."""
    which = "the code unit is not" if units == 1 else f"none of the {units} code units is"
    if kl < COLLAPSED_KL * units:
        warmup = getattr(cfg.kind_options, "kl_warmup", 0)
        fix = "a lower --beta or longer training" + ("" if warmup else ", or give --kl-warmup")
        said = (
            f"{which} active: every posterior stays near the prior (posterior collapse, KL {kl:.3g} nats "
            f"per {noun}), and the codes carry almost nothing about the inputs; try {fix}"
        )
    else:
        said = (
            f"{which} active, yet the posteriors are far from the prior (KL {kl:.3g} nats per {noun}): the "
            "encoder gives every input the same code, and the decoder reconstructs them all alike; training "
            f"most likely diverged: give a lower --lr than {cfg.train.lr:g}"
        )
    warnings.warn(said, SettingWarning, stacklevel=user_stacklevel())
