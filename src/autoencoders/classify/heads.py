"""The classifiers made from an autoencoder's encoder: a softmax head or the k nearest labelled codes
on the encoder's own layers, started, built and rebuilt from their saved settings."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.stream import RowStream
from ..eval import probes
from ..eval.metrics import encode_all
from ..models import Autoencoder
from ..models.layers import codes_as_in_use, set_trainable
from ..runtime.device import gpu_math
from .ladder import Ladder

# vote weights exp(cosine similarity / T) of the k nearest labelled codes
KNN_TEMPERATURE = 0.1


class KNNHead(nn.Module):
    """The labelled rows' codes vote: the ``k`` nearest by cosine similarity decide a code's class.

    Cosine, not Euclidean: code units have unequal scales, and on Fashion-MNIST codes with
    100 or 600 labels it was 4–6 points more accurate. Each neighbour's vote weighs
    exp(similarity / ``temperature``) (Wu et al. 2018), so nearer neighbours count more: on the
    Fashion-MNIST SDAE's codes 0.7, 1.1 and 0.4 points more accurate than equal votes with 100,
    600 and 6,000 labels. ``temperature`` None gives equal votes, a tie going to the class of
    the nearest (classifiers saved before weighting). Returns the log of each class's vote
    share, so a softmax of the output is the share.
    """

    def __init__(
        self,
        codes: torch.Tensor,
        labels: torch.Tensor,
        n_classes: int,
        k: int,
        temperature: float | None = KNN_TEMPERATURE,
    ):
        super().__init__()
        self.register_buffer("codes", F.normalize(codes.float(), dim=1))
        self.register_buffer("labels", labels.long())
        self.n_classes, self.k, self.temperature = n_classes, k, temperature

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        similarity = F.normalize(z.float(), dim=1) @ self.codes.t()
        nearest = similarity.topk(self.k)
        votes = F.one_hot(self.labels[nearest.indices], self.n_classes).float()
        if self.temperature is None:
            share = votes.mean(1) + 1e-3 * votes[:, 0] / self.k  # the nearest breaks ties
        else:
            # shifted by the largest possible similarity (1): the same shares, no overflow
            weight = torch.exp((nearest.values - 1) / self.temperature).unsqueeze(2)
            share = (votes * weight).sum(1) / weight.sum(1)
        return torch.log(share + 1e-6)


class EncoderClassifier(nn.Module):
    """``autoencoder.encode`` followed by a head over ``n_classes``: a linear softmax layer,
    or a given one (k nearest labelled codes)."""

    def __init__(self, autoencoder: Autoencoder, n_classes: int, head: nn.Module | None = None):
        super().__init__()
        self.autoencoder = autoencoder  # registered: its encoder is trained, not copied
        self.head = head if head is not None else nn.Linear(autoencoder.code_size, n_classes)

    @property
    def n_features(self) -> int:
        return math.prod(self.autoencoder.input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the codes as the encoder gives them in use: a winner-take-all
        autoencoder's training-only selection would hand the head codes it never sees in use."""
        with codes_as_in_use(self.autoencoder):
            return self.head(self.autoencoder.encode(x))


@torch.no_grad()
def predict_classes(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Predicted class index of every row (eval mode; fp32 on a GPU too)."""
    model.eval()
    with gpu_math("fp32", x.device):
        return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def make_classifier(
    autoencoder: Autoencoder, n_classes: int, freeze_encoder: bool = False, copy_encoder: bool = True
) -> EncoderClassifier:
    """A softmax head on (a copy of) ``autoencoder``'s encoder; the decoder is frozen, and so is
    the encoder with ``freeze_encoder`` (then only the head learns)."""
    if copy_encoder:
        autoencoder = copy.deepcopy(autoencoder)  # the caller's autoencoder stays as it was
    set_trainable(autoencoder, False)  # the decoder takes no part in the classifier's loss
    if not freeze_encoder:
        for part in autoencoder.encoder_modules():
            set_trainable(part, True)
    device = next(autoencoder.parameters()).device
    return EncoderClassifier(autoencoder, n_classes).to(device)


def fit_head(model: EncoderClassifier, x: torch.Tensor | RowStream, y: torch.Tensor) -> None:
    """Start a head on frozen codes at the L2-regularised logistic regression of the standardised
    codes, folded into the linear layer: a few hundred Adam steps from random weights leave it
    far from that optimum when labels are few."""
    z = encode_all(model.autoencoder, x)
    mean, std = probes.feature_scale(z)
    coef, intercept = probes.logistic_regression((z - mean) / std, y.to(z.device), model.head.out_features)
    with torch.no_grad():
        model.head.weight.copy_(coef.double() / std)
        model.head.bias.copy_(intercept.double() - (coef.double() * mean / std).sum(1))


def build_classifier(
    settings: dict[str, Any], autoencoder: Autoencoder, tensors: dict[str, torch.Tensor]
) -> nn.Module:
    """An empty classifier of ``settings``' method, shaped to take ``tensors`` (its saved weights)."""
    n_classes = len(settings["classes"])
    method = settings.get("method", "finetune")
    if method == "ladder":
        return Ladder(**settings["ladder"])
    head = None
    if method == "knn":
        codes = torch.zeros_like(tensors["head.codes"])
        knn = settings["knn"]  # no temperature: saved when the votes were equal
        head = KNNHead(
            codes, torch.zeros(len(codes), dtype=torch.long), n_classes, knn["k"], knn.get("temperature")
        )
    return EncoderClassifier(autoencoder, n_classes, head)
