"""The options of a run, section by section: each field's default, help text and accepted values.

Below everything but ``fields`` and ``errors``: the models, training and data read these
sections; ``config`` puts them together into a run's configuration, and the CLI makes its flags
from the same fields.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import UserError
from .fields import (
    AT_LEAST_0,
    AT_LEAST_1,
    FRACTION,
    POSITIVE,
    SEED,
    Range,
    flags,
    option,
)

ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear", "gelu")
IW_SAMPLES = 100  # a VAE's importance samples per row when scoring rows
CORRUPTIONS = ("none", "gaussian", "masking", "salt-and-pepper")

# how ``classify`` makes a classifier from a run (see ``classify.FewLabels``)
CLASSIFY_METHODS = ("finetune", "frozen", "knn", "semi", "ladder")


# how other data than a run's own is read (its label column, its images' size, ...): not its split
READING = (
    "label_column",
    "id_column",
    "columns",
    "image_size",
    "grayscale",
    "rgb",
    "skip_bad_images",
    "memory_budget",
)


def run_settings_refused(options: dict[str, Any], command: str, other_data: bool) -> None:
    """A UserError for options of a run's model or data given to ``command``, which trains on the
    run's encoder and rows as they are: of a config's options, only the training ones apply, and
    for ``other_data`` than the run's, how it is read."""
    allowed = {f.name for f in dataclasses.fields(TrainConfig)} | (set(READING) if other_data else set())
    other = sorted(k for k in options if k not in allowed)
    if other:
        reading = ", and how the data given is read (--label-column, ...)" if other_data else ""
        raise UserError(
            f"{command} works on the run's model and data as they are; leave out {flags(other)} "
            f"(training options such as --lr and --epochs apply{reading})"
        )


def scheduled_k(k: int, k_start: int, warmup: int, epoch: int) -> int:
    """k-sparse training's k in (1-based) ``epoch``: from ``k_start`` down to ``k`` linearly over
    ``warmup`` epochs, ``k`` from epoch ``warmup`` + 1 on."""
    done = min(1.0, (epoch - 1) / warmup)
    return round(k_start + (k - k_start) * done)


# data read from IDX files, whose test split is in files of its own
IDX_KINDS = ("mnist", "fashion-mnist", "idx")


@dataclass
class DataConfig:
    data: str = option(
        "digits", "dataset: digits | fashion-mnist | mnist | idx:DIR | npy:FILE | csv:FILE | images:DIR"
    )
    labels: str | None = option(None, "labels file (.npy) for npy: data")
    label_column: str | int | None = option(
        None,
        "label column for csv: data: its header name, or its 0-based index (negative: from the end); a "
        "run trained on a data frame with named columns records its label column's name",
    )
    id_column: str | int | None = option(
        None,
        "a column of csv: data that names each row (an id, a file name), by its header name or 0-based "
        "index: no feature; predict, score, cluster and encode (to a .csv) write it beside each row, and "
        "a run records it",
    )
    classes: list[str] | None = option(
        None,
        "class names in the order of their numbers, for labels that are names (numbered in sorted "
        "order without it); it must hold every name the labels do, and a run records it",
        shown_default="sorted",
    )
    columns: list[str] | None = option(
        None,
        "the feature columns' names, in order (the label column is not one of them): a CSV with a header "
        "is read by these names, its other columns left out, and so is a data frame or such a CSV given "
        "to the trained run later (a run trained on a data frame or such a CSV records its columns)",
        shown_default="none",
    )
    hold_out: list[str] | None = option(
        None,
        "classes (numbers or names, as the labels hold them) whose rows training and validation leave "
        "out; the test split keeps them: the novel rows 'score --anomalous-class' then finds",
        shown_default="none",
    )
    val_fraction: float = option(
        0.1, "fraction of the training split held out for validation", range=FRACTION
    )
    test_fraction: float = option(
        0.2,
        "test fraction for datasets without their own test split (train measures its model on those "
        "rows: it needs at least one)",
        range=FRACTION,
    )
    split_seed: int = option(0, "seed of the train/validation/test split", range=SEED)
    image_shape: list[int] | None = option(
        None,
        "view flat rows as images of this shape, C,H,W or H,W (e.g. 1,28,28); IDX and N×H×W data know it",
    )
    image_size: list[int] | None = option(
        None, "images: data: resize every image to H,W (without it all must share one size)"
    )
    grayscale: bool = option(False, "images: data: one channel, even for colour images")
    rgb: bool = option(False, "images: data: three channels, even for grayscale images")
    skip_bad_images: bool = option(
        False,
        "images: data: leave out files that are not readable images (and say how many) instead of refusing",
    )
    memory_budget: float = option(
        2.0,
        "GiB of rows or cached features kept in RAM; larger npy data streams from disk, in parts",
        range=POSITIVE,
    )


@dataclass
class ModelConfig:
    model: str = option("dense", "model kind (each has its own options below)")
    layers: list[int] | None = option(
        None,
        "layer widths from the input (D: the data's width) to the code, e.g. 784,1000,500,250,30; "
        "by default a code of at most D/2",
        shown_default="D,256,64,16",
    )
    activation: str = option("relu", "hidden-layer activation", ACTIVATIONS)
    code_activation: str = option("linear", "code-layer activation", ACTIVATIONS)
    output_activation: str = option("sigmoid", "output-layer activation", ACTIVATIONS)
    tied: bool = option(False, "tie decoder weights to the transposed encoder weights")
    loss: str = option("bce", "reconstruction loss", ("bce", "mse"))
    init: str = option(
        "torch",
        "weight initialisation: torch (each layer's PyTorch default) or scaled (He et al. 2015 for "
        "layers feeding a ReLU or GELU, Glorot for the others; zero biases)",
        ("torch", "scaled"),
    )
    corruption: str = option("none", "input corruption while training (denoising)", CORRUPTIONS)
    noise: float = option(
        0.3,
        "corruption level: std of the gaussian noise (0 to 10), or the fraction of inputs masked or "
        "set to their lowest or highest value, 0 or 1 for the data (0 to 1)",
    )
    sparsity: str = option("none", "sparsity penalty on code activations", ("none", "kl", "squared", "l1"))
    sparsity_target: float = option(
        0.05, "target mean activation of each unit over a batch (kl, squared)", range=Range(0, 1, True, True)
    )
    sparsity_weight: float = option(3.0, "weight of the sparsity penalty", range=AT_LEAST_0)
    sparsity_layers: str = option("code", "layers the sparsity penalty applies to", ("code", "all"))
    contractive: float = option(
        0.0, "weight of the contractive penalty: squared Frobenius norm of dcode/dx", range=AT_LEAST_0
    )
    contractive_projections: int = option(
        0,
        "contractive: estimate the penalty from K random projections of dcode/dx, unbiased, with K "
        "backward passes in place of one per code unit (0: exact; an encoder of one dense layer is "
        "always exact: its closed form is cheaper still)",
        range=AT_LEAST_0,
    )
    top_k: int = option(
        0, "k-sparse code: keep the K largest code units of each sample (0: off)", range=AT_LEAST_0
    )
    top_k_start: int = option(
        0, "k-sparse: start with this larger k (0: --top-k from the start)", range=AT_LEAST_0
    )
    top_k_warmup: int = option(
        0, "k-sparse: epochs over which k falls linearly from --top-k-start to --top-k", range=AT_LEAST_0
    )
    lifetime_sparsity: float = option(
        0.0,
        "winner-take-all: while training each code unit keeps this fraction of its largest batch activations",
        range=FRACTION,
    )


@dataclass
class PretrainConfig:
    pretrain: str = option("none", "pretraining schedule", ("none", "greedy"))
    pretrain_epochs: int = option(3, "epochs per layer of greedy pretraining", range=AT_LEAST_0)
    schedule: str = option("stagewise", "greedy schedule", ("stagewise", "phased"))
    compare: bool = option(
        True, "with greedy pretraining, also train the stack from random init (same epochs) and report both"
    )

    @property
    def greedy(self) -> bool:
        """Whether greedy layer-wise pretraining runs (schedule on, at least one epoch)."""
        return self.pretrain == "greedy" and self.pretrain_epochs > 0


@dataclass
class TrainConfig:
    optimizer: str = option("adam", "optimizer", ("adam", "sgd"))
    lr: float = option(2e-3, "learning rate", range=POSITIVE)
    lr_decay: str = option(
        "none",
        "learning-rate schedule over each training stage: none, cosine (from --lr to 0) or onecycle "
        "(rises from --lr/25 to --lr over the first 30 percent of the steps, then a cosine to 0)",
        ("none", "cosine", "onecycle"),
    )
    momentum: float = option(0.9, "SGD momentum", range=FRACTION)
    weight_decay: float = option(0.0, "L2 weight decay", range=AT_LEAST_0)
    batch_size: int = option(64, "mini-batch size", range=AT_LEAST_1)
    epochs: int = option(100, "epochs of end-to-end training", range=AT_LEAST_0)
    patience: int = option(
        10,
        "stop a stage after this many epochs without validation improvement (0: run every epoch)",
        range=AT_LEAST_0,
    )
    keep: str = option(
        "best", "weights a stage ends with: best (lowest validation loss) or last", ("best", "last")
    )
    seed: int = option(0, "random seed for initialisation and shuffling", range=SEED)
    precision: str = option(
        "auto",
        "compute precision: fp32, tf32 (fp32 with TF32 matrix products, GPUs from NVIDIA Ampere on) or bf16 "
        "autocast; auto times the run's training step at each (fp32 on a CPU without bf16 units, and under "
        "torchrun, where the processes must agree) and keeps fp32 unless another is measurably faster",
        ("auto", "fp32", "tf32", "bf16"),
    )
    cuda_graph: str = option(
        "auto",
        "replay each training step as one captured CUDA graph on a GPU (auto, on) or launch its kernels one "
        "by one (off); on a CPU there is nothing to capture: auto runs eagerly, on says so",
        ("auto", "on", "off"),
    )
    device: str = option("auto", "device", ("auto", "cpu", "cuda"))
    save_every: float = option(
        5.0,
        "seconds of training between the states --resume continues from; each stage's last epoch is "
        "always saved (0: after every epoch)",
        range=AT_LEAST_0,
    )
    threads: str = option("auto", "CPU threads: auto (CPUs this process may use; 1 for small layers) or N")
    quiet: bool = option(False, "no progress bars or notes")
    snapshots: int = option(
        0, "every N epochs, save test reconstructions to RUN/snapshots/ (0: off)", range=AT_LEAST_0
    )
    tensorboard: bool = option(
        False, "also write TensorBoard event files to RUN/tensorboard/ (needs the tensorboard package)"
    )

    def __post_init__(self) -> None:
        if isinstance(self.threads, int) and not isinstance(self.threads, bool):
            self.threads = str(self.threads)  # threads=2 from Python means "2"


def check_threads(setting: str) -> None:
    """A UserError unless ``setting`` is ``auto`` or a positive whole number."""
    if setting != "auto" and not (setting.isdigit() and int(setting) >= 1):
        raise UserError(f"--threads must be 'auto' or a positive whole number, not {setting!r}")


# the model kinds' own sections, ``[conv]``, ``[vae]`` and ``[aae]`` (``kinds`` names each with its
# model): here with the rest, so that flags and help are made without loading the models
@dataclass
class ConvConfig:
    channels: list[int] = option([32, 64], "channels of the stride-2 convolutions, input side first")
    kernel_size: int = option(3, "convolution kernel size", range=Range(2))

    def validate(self) -> None:
        if not self.channels or any(c < 1 for c in self.channels):
            raise UserError("--channels needs one or more positive channel counts, e.g. 32,64")

    def check_shape(self, input_shape: tuple[int, ...]) -> None:
        """Refuse a kernel larger than the maps a convolution sees (most of it would only ever see
        the padding); a new run's check: runs trained before it was made still open."""
        if len(input_shape) != 3:
            return  # no images: building the model says so
        k, (h, w) = self.kernel_size, input_shape[1:]
        for i in range(len(self.channels)):
            if k > min(h, w):
                what = "images" if i == 0 else f"maps convolution {i + 1} sees (each one halves them)"
                # a kernel is at least 2 wide: maps of a side of 1 take none
                smaller = f"--kernel-size {min(h, w)} or less" if min(h, w) >= 2 else ""
                fewer = "" if i == 0 else "fewer --channels"
                fix = ", or ".join(f for f in (smaller, fewer) if f) or "--model dense (no kernel fits)"
                raise UserError(f"--kernel-size {k} is larger than the {h}×{w} {what}; give {fix}")
            h, w = ((n + 2 * (k // 2) - k) // 2 + 1 for n in (h, w))


@dataclass
class VAEConfig:
    beta: float = option(1.0, "weight of the KL term (beta-VAE when not 1)", range=AT_LEAST_0)
    kl_warmup: int = option(
        0,
        "epochs over which the KL weight grows linearly to --beta (validation: full weight)",
        range=AT_LEAST_0,
    )
    vae_scale: str = option("logvar", "what the encoder's scale head outputs", ("logvar", "std"))
    decoder_std: str | float = option(
        "learned", "std of the Gaussian decoder (--loss mse): 'learned' or a fixed positive number"
    )
    iw_samples: int = option(
        1000, "importance samples per test image for test_nll (0: skip it)", range=AT_LEAST_0
    )
    nll_rows: int = option(
        2000,
        "test images test_nll averages over: the same fixed sample for every model of a dataset (0: all)",
        range=AT_LEAST_0,
    )

    def validate(self) -> None:
        if self.decoder_std != "learned":
            try:
                ok = math.isfinite(float(self.decoder_std)) and float(self.decoder_std) > 0
            except ValueError:
                ok = False
            if not ok:
                raise UserError(
                    f"--decoder-std must be 'learned' or a positive number, not {self.decoder_std!r}"
                )


@dataclass
class AAEConfig:
    prior: str = option("gaussian", "distribution the codes are matched to", ("gaussian", "mixture"))
    components: int = option(
        10, "mixture prior: number of unit-variance Gaussian components", range=AT_LEAST_1
    )
    disc_layers: list[int] = option([256, 256], "hidden widths of the discriminator on codes")
    adversarial_lr: float = option(
        2e-4,
        "learning rate of the regularisation phase (discriminator and encoder as generator)",
        range=POSITIVE,
    )

    def validate(self) -> None:
        if any(w < 1 for w in self.disc_layers):
            raise UserError(f"every --disc-layers width must be at least 1, got {self.disc_layers}")


@dataclass
class ClassifyOptions:
    """How ``classify`` makes a classifier from a run: the method, how many labels, its training.

    Its fields are ``autoencoders.classify``'s keyword options and ``autoencoders classify``'s
    flags; ``lr``, ``batch_size`` and ``seed`` replace the run's own training settings.
    """

    method: str = option(
        "finetune",
        "finetune: softmax head, whole encoder trained on the labels; frozen: head alone on the codes; "
        "knn: k nearest labelled codes; semi: labels' cross-entropy + reconstruction of every training "
        "row; ladder: a ladder network over the encoder's widths",
        CLASSIFY_METHODS,
    )
    n_labels: int | None = option(
        None,
        "labelled training rows in all, the same number of every class",
        range=AT_LEAST_1,
        shown_default="all",
    )
    labels_fraction: float | None = option(
        None,
        "fraction of the training labels (stratified, at least one per class); not with --n-labels",
        range=Range(0, 1, low_open=True),
        shown_default="1",
    )
    from_scratch: bool = option(False, "re-initialise the encoder (a baseline)")
    unfreeze_epochs: int = option(
        0, "with --method frozen: then fine-tune encoder and head together this many epochs", range=AT_LEAST_0
    )
    unfreeze_lr: float | None = option(
        None, "learning rate of the unfrozen phase", range=POSITIVE, shown_default="--lr / 10"
    )
    recon_weight: float = option(
        1.0, "--method semi: weight of the reconstruction loss per input feature", range=AT_LEAST_0
    )
    ladder_noise: float = option(0.3, "--method ladder: std of the Gaussian noise", range=AT_LEAST_0)
    epochs: int | None = option(
        None,
        "training epochs (semi, ladder: passes over every training row)",
        range=AT_LEAST_1,
        shown_default="at least 1,000 updates and 10 epochs",
    )
    patience: int | None = option(
        None,
        "epochs without a better validation loss before stopping; 0 = never",
        range=AT_LEAST_0,
        shown_default="10 epochs or 100 updates",
    )
    lr: float = option(
        1e-3,
        "learning rate of Adam, constant, without weight decay, whatever the run trained with",
        range=POSITIVE,
    )
    batch_size: int | None = option(None, "mini-batch size", range=AT_LEAST_1, shown_default="the run's own")
    seed: int | None = option(
        None, "seed of the label subset and the head", range=SEED, shown_default="the run's own"
    )


CLUSTER_METHODS = ("kmeans", "gmm", "dec", "idec", "manifold")


@dataclass
class ClusterOptions:
    """How ``cluster`` groups the rows of a run's data by their codes.

    Its fields are ``autoencoders.cluster``'s keyword options and ``autoencoders cluster``'s flags.
    """

    method: str = option(
        "kmeans",
        "kmeans: k-means++ on the codes; gmm: a Gaussian mixture on the codes; dec: the encoder fine-tuned "
        "to sharpen Student's t assignments (Xie et al. 2016); idec: dec keeping the reconstruction loss "
        "(Guo et al. 2017); manifold: UMAP of the codes, then a Gaussian mixture (N2D)",
        CLUSTER_METHODS,
    )
    k: int | None = option(None, "number of clusters", range=Range(2), shown_default="the number of classes")
    seed: int | None = option(None, "seed of every random choice", range=SEED, shown_default="the run's own")
    n_init: int = option(
        10, "k-means restarts (and Gaussian mixture starts); the best is kept", range=AT_LEAST_1
    )
    epochs: int = option(
        100, "dec, idec: the most passes over the rows (they stop when assignments settle)", range=AT_LEAST_1
    )
    update_interval: int = option(
        140,
        "dec, idec: updates between refreshes of the target distribution (at least one a pass), and "
        "the fewest between checks that the assignments settled",
        range=AT_LEAST_1,
    )
    tol: float = option(
        0.001,
        "dec, idec: stop when fewer than this fraction of the assignments change between refreshes",
        range=Range(0, 1),
    )
    gamma: float = option(
        10.0,
        "idec: weight of the run's own reconstruction loss per input feature beside the clustering loss "
        "(with --loss mse, 10 is IDEC's 0.1 on the clustering loss beside the mean squared error; BCE's "
        "gradients are larger)",
        range=AT_LEAST_0,
    )
    lr: float = option(1e-3, "dec, idec: learning rate (Adam; IDEC's, Guo et al. 2017)", range=POSITIVE)
    batch_size: int = option(256, "dec, idec: mini-batch size", range=AT_LEAST_1)
    dims: int | None = option(
        None, "manifold: dimensions of the UMAP embedding", range=AT_LEAST_1, shown_default="k"
    )
    neighbors: int = option(20, "manifold: neighbours UMAP connects each row to", range=Range(2))


# which rows of a run's data a command reads: all of them, or a split of training's
SPLITS = ("all", "train", "val", "test")
# what ``export`` writes: a part of a run, in a format (by its file's suffix)
EXPORT_PARTS = ("encoder", "decoder", "autoencoder")
EXPORT_FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# images a .png grid holds at most: more make a picture no viewer shows whole, and take gigabytes to draw
MOST_IN_A_PNG = 1000


def names_flag(names: list[str]) -> str:
    """``names`` as a flag of names takes them (``--hold-out``, ``--columns``) and a shell passes
    them on: a name holding a comma in double quotes, as in a CSV line."""
    return shlex.quote(",".join(f'"{n}"' if "," in n or '"' in n else n for n in map(str, names)))


# the figures ``visualize`` draws, by name
FIGURE_KINDS = {
    "recon": "test images over their reconstructions",
    "denoise": "clean, corrupted and reconstructed test images",
    "loss": "training and validation loss per epoch, one panel per stage",
    "filters": "first-layer weights as images",
    "top": "for each code unit, the test images that excite it most",
    "maximize": "for each code unit, the input of fixed norm that excites it most (gradient ascent)",
    "latent": "the test codes in 2-D (the code itself, or its PCA or t-SNE), coloured by label where there "
    "are labels",
    "samples": "images decoded from samples of the prior (VAE, AAE)",
    "interpolate": "decodings along the line between two test images' codes",
    "traverse": "one code dimension varied at a time around a test image's code",
}


class RunOptions(Protocol):
    """The sections of a run's options that a training stage reads (a ``Config`` has them)."""

    data: DataConfig
    model: ModelConfig
    pretrain: PretrainConfig
    train: TrainConfig
