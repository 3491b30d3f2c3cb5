"""The published experiments ``autoencoders reproduce`` runs: what each trains, on every budget.

A table of settings alone (``reproduce`` runs them and compares with the published values), so
that the command line lists them without loading what trains them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Experiment:
    title: str
    settings: dict[str, Any]  # training options for every budget
    budgets: dict[str, dict[str, Any]]  # "quick" / "full": options that set the schedule
    classify_epochs: dict[str, int] | None = None  # supervised fine-tuning after pretraining
    clusters: tuple[str, ...] = ()  # cluster methods run on all rows (train and test) after training
    scored_by_labels: bool = True  # every number it compares is scored against the data's classes


# the stacked denoising autoencoder DEC starts from, layer-wise pretrained with masking noise
DEC_STACK = {
    "layers": [784, 500, 500, 2000, 10],
    "activation": "relu",
    "code_activation": "linear",
    "corruption": "masking",
    "noise": 0.2,
    "pretrain": "greedy",
    "compare": False,
}
DEC_BUDGETS = {"quick": {"pretrain_epochs": 1, "epochs": 10}, "full": {"pretrain_epochs": 20, "epochs": 100}}

EXPERIMENTS = {
    "hinton2006": Experiment(
        "Hinton & Salakhutdinov (2006), deep autoencoder 784-1000-500-250-30 with a linear code",
        {
            "layers": [784, 1000, 500, 250, 30],
            "activation": "sigmoid",
            "code_activation": "linear",
            "pretrain": "greedy",
            "compare": False,
        },
        {"quick": {"pretrain_epochs": 1, "epochs": 5}, "full": {"pretrain_epochs": 10, "epochs": 50}},
        scored_by_labels=False,
    ),
    "sda": Experiment(
        "Vincent et al. (2010), stacked denoising autoencoder 784-1000-1000-1000 + softmax",
        {
            "layers": [784, 1000, 1000, 1000],
            "activation": "sigmoid",
            "code_activation": "sigmoid",
            "corruption": "masking",
            "noise": 0.25,
            "pretrain": "greedy",
            "compare": False,
        },
        {"quick": {"pretrain_epochs": 1, "epochs": 0}, "full": {"pretrain_epochs": 15, "epochs": 0}},
        classify_epochs={"quick": 5, "full": 50},
    ),
    "dec-init": Experiment(
        "Xie et al. (2016) DEC initialisation: stacked AE 784-500-500-2000-10 codes + k-means",
        DEC_STACK,
        DEC_BUDGETS,
    ),
    "dec": Experiment(
        "Xie et al. (2016) deep embedded clustering: the DEC initialisation, then DEC on all rows",
        DEC_STACK,
        DEC_BUDGETS,
        clusters=("kmeans", "dec"),
    ),
}
