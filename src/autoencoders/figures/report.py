"""One self-contained HTML page per run: settings, metrics beside PCA and the raw rows, every figure.

The figures are embedded as PNG data, so ``report.html`` can be mailed or archived alone; it
holds no script and loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import tempfile
import threading
import warnings
from importlib import metadata
from pathlib import Path

import torch

from ..clustering.methods import how_training_ended
from ..config import Config
from ..data.shapes import holds_images, sample_noun
from ..errors import DataWarning, UserError, user_stacklevel
from ..eval.metrics import ACTIVE_VARIANCE, PROBE_ROWS, pca_name
from ..io import rundir
from ..io.checkpoint import file_sha256, write_text
from ..trained import TrainedRun, check_own_data, open_run
from ..version import __version__
from .run_figures import FigureRows, draw, test_rows

REPORT = "report.html"
# the page's note of what its drawn figures were drawn from (``_drawn_from``): a report written
# again as a clustering or classifier is added to the run, with the same weights, settings and
# versions, takes them from the page instead of drawing them again, seconds of work
DRAWN_FROM = "autoencoders-drawn-from"
PNG = b"\x89PNG\r\n\x1a\n"

# (label, model key, PCA key, raw-pixel key): what the codes are measured against
COMPARED = [
    ("test SSE per {item} (lower is better)", "test_sse_per_image", "pca_sse_per_image", None),
    ("test PSNR, dB", "test_psnr", "pca_psnr", None),
    (
        "linear probe accuracy",
        "linear_probe_accuracy",
        "pca_linear_probe_accuracy",
        "pixels_linear_probe_accuracy",
    ),
    ("5-NN accuracy", "knn_accuracy", "pca_knn_accuracy", "pixels_knn_accuracy"),
    ("k-means accuracy, test {item}s", "kmeans_accuracy", "pca_kmeans_accuracy", "pixels_kmeans_accuracy"),
    ("k-means NMI, test {item}s", "kmeans_nmi", "pca_kmeans_nmi", "pixels_kmeans_nmi"),
]
# figures drawn for the report from the trained model, with their captions
DRAWN = {
    "latent": "Test codes in 2-D (PCA of the codes unless the code is 2-D), coloured by label where the "
    "rows have labels.",
    "filters": "First-layer weights drawn as {item}s, one per unit or convolution kernel, each scaled to "
    "its own largest |weight| ({zero} is zero).",
    "top": "For each of the first code units, the test {item}s with its largest value (and, where codes "
    "can be negative, its smallest: a sign means nothing).",
    "maximize": "For each of the first code units, the input in the data's range, of at most the data's "
    "mean norm, that excites it most (gradient ascent), drawn on the data's scale.",
    "traverse": "One code dimension varied at a time around a test {item}'s code.",
}
SAVED = {
    rundir.RECONSTRUCTIONS: "Test {item}s and their reconstructions.",
    rundir.LOSS: "Loss per epoch, one panel per training stage.",
    rundir.PRETRAINING: "Fine-tuning after greedy pretraining against the same stack from random init.",
    rundir.SAMPLES: "{Item}s decoded from samples of the prior.",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; font-size: 0.9em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def write_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    run: TrainedRun | None = None,
    metrics: dict | None = None,
    drawn: list[tuple[str, bytes]] | None = None,
    keep_drawn: bool = False,
) -> Path:
    """Write the run's report (default ``RUN/report.html``); return its path. ``run``, ``metrics``
    and ``drawn`` (``draw_figures``): the trained run, its metrics and figures as training holds
    them in memory, so nothing is read back from disk; by default the run directory is opened and
    read, and the figures drawn from its test rows. ``keep_drawn``: take them from the run's page
    instead where it notes the same weights, settings and versions (a clustering or classifier
    added changes none of them)."""
    run_dir = Path(run_dir)
    run = run if run is not None else open_run(run_dir)
    path = Path(out) if out is not None else run_dir / REPORT
    if path.suffix.lower() != ".html":
        raise UserError(f"--out {path}: report writes an .html file; give a file name ending in .html")
    metrics = metrics if metrics is not None else rundir.read_metrics(run_dir)
    words = _words(run)
    item = words["item"]  # in every caption and label
    figures = [
        (SAVED[name].format(**words), (run_dir / name).read_bytes())
        for name in SAVED
        if (run_dir / name).is_file()
    ]
    drawn_from = _drawn_from(run_dir)
    if drawn is None and keep_drawn:
        drawn = _drawn_before(run_dir / REPORT, drawn_from, _drawn_captions(run, words))
    if drawn is None:
        check_own_data(
            run_dir,
            run.cfg.data,
            ": the report draws the run's test rows",
            "; the report draws the run's test rows, and cannot without them: draw its figures with "
            "visualize, giving the rows again (--data, or data= in Python)",
        )
        drawn = draw_figures(run, test_rows(run, run.cfg.data.data))
    figures += drawn
    snapshots = sorted((run_dir / rundir.SNAPSHOTS).glob("*.png"))
    figures += [(_snapshot_caption(p.stem, item), p.read_bytes()) for p in snapshots]
    clusters, classifiers = _clusters(run_dir), _classifiers(run_dir)
    variant = _variant(run.cfg)
    title = f"{run.manifest['kind']} autoencoder{f', {variant},' if variant else ''} on {run.cfg.data.data}"
    raw = "raw pixels" if holds_images(tuple(run.manifest["input_shape"])) else "raw features"
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        _drawn_note(drawn_from),
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Run directory <code>{html.escape(str(run_dir))}</code>; input shape "
        f"{tuple(run.manifest['input_shape'])}, code size {run.manifest['code_size']}.</p>",
        f"<h2>Against PCA and {raw}</h2>",
        _comparison(metrics, raw, item),
        *classifiers,
        *clusters,
        "<h2>Figures</h2>",
        *(_figure(caption, png) for caption, png in figures),
        "<h2>All metrics</h2>",
        "<p>The numbers of <code>metrics.json</code> as this page was written; the README's table of "
        "what a run directory holds says what each means.</p>",
        _table(["metric", "value"], [(k, v) for k, v in metrics.items()]),
        "<h2>Settings</h2>",
        *_settings(Config.load_json(run_dir / rundir.CONFIG)),
        "</body></html>",
    ]
    write_text(path, "\n".join(page) + "\n")
    return path


def draw_figures(
    run: TrainedRun, rows: FigureRows, stop: threading.Event | None = None
) -> list[tuple[str, bytes]]:
    """The report's figures of ``run`` drawn from ``rows`` (its test rows, labels and perhaps codes,
    shared by every figure), with their captions; once ``stop`` is set, the one in progress is the
    last."""
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for what, caption in _drawn_captions(run, _words(run)).items():
            if stop is not None and stop.is_set():
                break
            drawn = Path(tmp) / f"{what}.png"
            draw(run, Path(tmp), what, drawn, run.cfg.data.data, rows=rows)
            figures.append((caption, drawn.read_bytes()))
    return figures


def _drawn_captions(run: TrainedRun, words: dict[str, str]) -> dict[str, str]:
    """The figures the report draws of ``run``, with their captions: a 1-D code has no 2-D map
    and nothing to traverse beside the one dimension."""
    skipped = ("traverse", "latent") if run.model.code_size < 2 else ()
    return {what: caption.format(**words) for what, caption in DRAWN.items() if what not in skipped}


def _drawn_from(run_dir: Path) -> str:
    """What a report's drawn figures depend on: the run's weights and settings (its data among
    them), and the versions of the code that drew them."""
    versions = [__version__, torch.__version__, metadata.version("matplotlib")]  # matplotlib not loaded
    digest = hashlib.sha256(" ".join(versions).encode())
    digest.update(file_sha256(run_dir / rundir.WEIGHTS).encode())
    digest.update((run_dir / rundir.CONFIG).read_bytes())
    return digest.hexdigest()


def _drawn_note(drawn_from: str) -> str:
    """The page's note of what its drawn figures were drawn from."""
    return f'<meta name="{DRAWN_FROM}" content="{drawn_from}">'


def _drawn_before(page: Path, drawn_from: str, captions: dict[str, str]) -> list[tuple[str, bytes]] | None:
    """The drawn figures of the report at ``page``, with ``captions``, if it has every one of them
    and was drawn from ``drawn_from``; else None."""
    try:
        text = page.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # none yet, or not a page this toolkit wrote
        return None
    if _drawn_note(drawn_from) not in text:
        return None
    found = {  # as ``_figure`` writes them
        html.unescape(alt): data
        for alt, data in re.findall(r'<figure><img alt="([^"]*)" src="data:image/png;base64,([^"]*)">', text)
    }
    try:
        pngs = [base64.b64decode(found[caption], validate=True) for caption in captions.values()]
    except (KeyError, ValueError):  # a figure missing, or damaged: all are drawn again
        return None
    if not all(png.startswith(PNG) for png in pngs):
        return None
    return list(zip(captions.values(), pngs, strict=True))


def _words(run: TrainedRun) -> dict[str, str]:
    """What captions call ``run``'s rows (image, example) and its zero weight's colour."""
    shape = tuple(run.manifest["input_shape"])
    item = sample_noun(shape)
    return {"item": item, "Item": item.capitalize(), "zero": "gray" if holds_images(shape) else "white"}


def _variant(cfg: Config) -> str:
    """The pieces a run composes beyond a plain autoencoder of its kind, in words: "stacked
    (greedy), denoising (masking 0.2), k-sparse (k = 10)", or ""."""
    m = cfg.model
    pieces = [
        "stacked (greedy)" if cfg.pretrain.pretrain == "greedy" else "",
        "tied" if m.tied else "",
        f"denoising ({m.corruption} {m.noise:g})" if m.corruption != "none" else "",
        f"sparse ({m.sparsity} on {'every layer' if m.sparsity_layers == 'all' else 'the code'})"
        if m.sparsity != "none"
        else "",
        f"contractive ({m.contractive:g}{_projections(m.contractive_projections)})" if m.contractive else "",
        f"k-sparse (k = {m.top_k})" if m.top_k else "",
        f"winner-take-all (lifetime {m.lifetime_sparsity:g})" if m.lifetime_sparsity else "",
    ]
    return ", ".join(p for p in pieces if p)


def _projections(k: int) -> str:
    """How a contractive penalty was computed, after its weight: "" (exact) or ", 4 projections"."""
    return f", {k} projection{'s' if k > 1 else ''}" if k else ""


def _readable(read, path: Path, what: str, needs: tuple[str, ...] = ()) -> dict | None:
    """``read(path)``, holding the keys ``needs``, or None with a warning naming the damaged ``what``:
    the page is written without it."""
    try:
        m = read(path)
        missing = [key for key in needs if key not in m]
        if missing:
            raise UserError(f"it lacks {', '.join(missing)}")
        return m
    except UserError as e:
        warnings.warn(
            f"the report leaves out the {what} {path}: {e}", DataWarning, stacklevel=user_stacklevel()
        )
        return None


def _classifiers(run_dir: Path) -> list[str]:
    """The section on the classifiers saved in the run directory (``autoencoders classify``), if any."""
    found = sorted(p.parent for p in run_dir.glob(f"*/{rundir.CLASSIFIER_CONFIG}"))
    rows = []
    for path in found:
        m = _readable(rundir.read_metrics, path, "classifier")
        if m is None:
            continue
        scratch = " (from scratch)" if m.get("from_scratch") else ""  # earlier versions lack some keys
        keys = ("labelled_examples", "validation_labels", "test_accuracy", "pixels_linear_probe_accuracy")
        rows.append(
            [path.name, f"{m.get('method', '?')}{scratch}", *map(m.get, keys), m.get("train_seconds")]
        )
    if not rows:
        return []
    header = ["directory", "method", "labels", "validation labels", "test accuracy"]
    return [
        "<h2>Classifiers</h2>",
        "<p>Test accuracy of each classifier made from this run's encoder by 'autoencoders classify', "
        "beside logistic regression on the same labelled rows without the encoder.</p>",
        _table([*header, "without the encoder", "seconds"], rows),
    ]


def _clusters(run_dir: Path) -> list[str]:
    """The section on the clusterings saved in the run directory (``autoencoders cluster``), if any."""
    found = sorted(p.parent for p in run_dir.glob(f"*/{rundir.CLUSTERS_JSON}"))
    if not found:
        return []
    rows, figures = [], []
    for path in found:
        m = _readable(rundir.read_clusters_summary, path, "clustering", ("method", "k", "rows", "seconds"))
        if m is None:
            continue
        names = ("accuracy", "nmi", "ari", "pixels_kmeans_accuracy", "pca_kmeans_accuracy")
        trained = how_training_ended(m)  # DEC and IDEC's
        scores = [m.get(k) for k in names]
        bic = None if m.get("gmm_bic") is None else round(m["gmm_bic"])  # whole nats: the digits that tell
        data = m.get("data", "")  # clusterings of other data or splits sit in the same table
        data += "" if m.get("split", "all") == "all" else f" ({m['split']} split)"
        counted = m["rows"]
        if "labelled_rows" in m:  # the scores count these
            counted = f"{counted} ({m['labelled_rows']} with a class)"
        rows.append([path.name, data, m["method"], m["k"], counted, *scores, bic, trained])
        rows[-1].append(m["seconds"])
        for name, what in (
            (rundir.CLUSTER_MEMBERS, "most confident rows per cluster"),
            (rundir.CLUSTER_MAP, "map"),
        ):
            if (path / name).is_file():
                figures.append(_figure(f"{path.name}: {what}.", (path / name).read_bytes()))
    if not rows:
        return []
    header = [
        "directory",
        "data",
        "method",
        "k",
        "rows",
        "accuracy",
        "NMI",
        "ARI",
        "k-means, raw rows",
        "k-means, PCA",
        "BIC (GMM)",
        "training (DEC, IDEC)",
    ]
    return [
        "<h2>Clusters</h2>",
        "<p>Accuracy is that of the best one-to-one matching of clusters to classes; NMI and ARI compare "
        "the partitions; the k-means baselines cluster the same rows. These are the rows each clustering "
        "was given (by default all of the run's data; k-means restarts: --n-init, 10 by default), "
        "where the k-means rows of the table above cluster the test rows alone (4 restarts): the two "
        "can differ. A GMM's "
        "BIC (lower is better) compares mixtures of different k on the same rows. DEC and IDEC train "
        "until fewer than --tol of the assignments change between checks (settled), or for "
        "--epochs.</p>",
        _table([*header, "seconds"], rows),
        *figures,
    ]


def _snapshot_caption(stem: str, item: str) -> str:
    """A snapshot's caption from its name, ``STAGE-epoch-NNNN``."""
    stage, _, epoch = stem.rpartition("-epoch-")
    return f"Stage {stage}, epoch {int(epoch)}: test {item}s and their reconstructions."


# what each number of the comparison measures (its name, its definition), by the model's key
MEANING = {
    "test_sse_per_image": (
        "test SSE",
        "the squared differences between a test {item} and its reconstruction, summed over its values "
        "(on the [0, 1] scale the model trained on) and averaged over the test {item}s; {pca} "
        "reconstructs from that many principal components of the training rows",
    ),
    "test_psnr": (
        "PSNR",
        "10 log<sub>10</sub>(1 / the mean squared error per value): the same error in decibels",
    ),
    "linear_probe_accuracy": (
        "linear probe",
        "logistic regression (C = 1, on standardised features) fitted to the features of a fixed sample "
        "of at most {probe} training {item}s, scored on the test {item}s: how well a linear read-out "
        "tells the classes apart",
    ),
    "knn_accuracy": (
        "5-NN",
        "each test {item} takes the commonest label among its 5 nearest (Euclidean) in that sample",
    ),
    "kmeans_accuracy": (
        "k-means accuracy",
        "k-means with k = the number of classes on the test {item}s' features, its clusters matched one to "
        "one to the classes (Hungarian) so that the most {item}s agree: the labels only score it",
    ),
    "kmeans_nmi": (
        "k-means NMI",
        "the normalised mutual information of those clusters and the classes: 0 when independent, 1 when "
        "the same partition",
    ),
}
LOWER_IS_BETTER = ("test_sse_per_image",)  # of the rows of COMPARED; the others: higher is better


def _comparison(metrics: dict, raw: str, item: str) -> str:
    """The model's numbers beside PCA's and the raw rows', the best of each row in bold, and below
    them what each measures."""
    code = pca_name(metrics)
    rows = [
        (label.format(item=item), *(metrics.get(key) if key else None for key in keys))
        for label, *keys in COMPARED
        if keys[0] in metrics
    ]
    lower = [key in LOWER_IS_BETTER for _, key, *_ in COMPARED if key in metrics]
    if "test_nll" in metrics:
        scored = metrics.get("nll_rows")
        sample = (
            f", {metrics['iw_samples']} samples each on {scored} test {item}{'s' * (scored != 1)}, "
            + (f"± {metrics['test_nll_se']:.2f}" if "test_nll_se" in metrics else "no error bar")
            if scored is not None
            else ""
        )
        # grey levels under a Bernoulli decoder: part of it no model lowers (on the NLL's rows)
        whole = metrics.get("nll_rows") == metrics.get("n_test")
        floor = metrics.get("test_bce_floor" if whole else "nll_rows_bce_floor")
        if floor is not None and "nll_rows" in metrics:
            sample += f"; the {item}s' own binary entropy, below which no model goes: {floor:.2f}"
        rows.append(
            (f"test NLL, nats per {item} (importance-sampled{sample})", metrics["test_nll"], None, None)
        )
        lower.append(True)  # a negative log-likelihood
    best = [_best(values, low) for (_, *values), low in zip(rows, lower, strict=True)]
    table = _table(["", "this model", code, raw], rows, best)
    words = {"item": item, "pca": html.escape(code), "probe": f"{PROBE_ROWS:,}"}
    meant = [MEANING[key] for _, key, *_ in COMPARED if key in metrics]
    table += f"<p>The best of each row is in bold.{_accuracy_noise(metrics, item)}</p><ul>" + "".join(
        f"<li><b>{name}</b>: {text.format(**words)}</li>" for name, text in meant
    )
    table += "</ul>"
    if "majority_class_accuracy" in metrics:  # the accuracy to beat: above 1/classes if imbalanced
        table += (
            f"<p>Always guessing the commonest training class is right for "
            f"{metrics['majority_class_accuracy']:.4g} of the test {item}s"
            + (" with a class" if "labelled_test_rows" in metrics else "")
            + ".</p>"
        )
    if "active_units" in metrics:  # a VAE's units that the prior swallowed carry nothing
        table += f"<p>{_active(metrics['active_units'], metrics['code_size'], item)}</p>"
    return table


def _active(active: int, units: int, item: str) -> str:
    """How many of a VAE's ``units`` code units are active, in a sentence that says what that means."""
    varies = f"posterior mean varying over the test {item}s with variance above {ACTIVE_VARIANCE:g}"
    prior = f"near the prior for every {item}"
    if units == 1:
        return (
            f"The code unit is active (its {varies})."
            if active
            else f"The code unit stays {prior}: not active."
        )
    if active == 0:
        return f"None of the {units} code units is active: each stays {prior}."
    if active == units:
        return f"All {units} code units are active (each one's {varies})."
    rest = units - active
    counted = f"{active} of the {units} code units {'is' if active == 1 else 'are'} active ({varies})"
    return f"{counted}; the other{'s stay' if rest > 1 else ' stays'} {prior}."


def _accuracy_noise(metrics: dict, item: str) -> str:
    """How far an accuracy of the table moves by chance: its binomial standard error on the test
    rows near the model's linear-probe accuracy (Agresti and Coull's, which a perfect score does not
    bring to 0); "" without one."""
    p, n = metrics.get("linear_probe_accuracy"), metrics.get("labelled_test_rows", metrics.get("n_test"))
    if p is None or not n:
        return ""
    near = (n * p + 2) / (n + 4)
    with_class = " with a class" if "labelled_test_rows" in metrics else ""
    return (
        f" By chance alone, an accuracy on {n} test {item}{'s' * (n != 1)}{with_class} moves by about "
        f"{math.sqrt(near * (1 - near) / (n + 4)):.3f} (its binomial standard error near {p:.3f}), and "
        "k-means' also with its random starts."
    )


def _settings(cfg: Config) -> list[str]:
    """The run's settings as config.json holds them (``auto`` stays auto; the metrics say what it
    chose): those that differ from a default run of its kind first, beside the default, then the
    rest."""
    defaults = Config.from_dict({"model": {"model": cfg.model.model}}).flat()
    values = sorted(cfg.flat().items())
    changed = [(k, v, defaults[k]) for k, v in values if v != defaults[k]]
    return [
        "<p>Set for this run (data, widths and class names as training recorded them):</p>",
        _table(["option", "value", "default"], changed),
        "<p>Left at their defaults:</p>",
        _table(["option", "value"], [(k, v) for k, v in values if v == defaults[k]]),
    ]


def _best(values: list, lower: bool) -> set[int]:
    """Which of a row's ``values`` (None: not measured) are best as the table shows them (4
    significant digits), lower or higher being better; none when fewer than two were measured."""
    shown = {i: float(f"{v:.4g}") for i, v in enumerate(values) if isinstance(v, float) and not math.isnan(v)}
    if len(shown) < 2:
        return set()
    top = min(shown.values()) if lower else max(shown.values())
    return {i + 1 for i, v in shown.items() if v == top}  # + 1: the row's label comes first


def _table(header: list[str], rows: list, bold: list[set[int]] | None = None) -> str:
    """An HTML table; ``bold``: for each row, the columns whose values are drawn in bold."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    bold = bold or [set()] * len(rows)
    body = "".join(
        "<tr>" + "".join(_cell(v, j in b) for j, v in enumerate(row)) + "</tr>"
        for row, b in zip(rows, bold, strict=True)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: object, bold: bool = False) -> str:
    if value is None:
        return "<td>–</td>"
    if isinstance(value, float):
        shown = f"{value:.4g}"
        return f'<td class="num">{f"<b>{shown}</b>" if bold else shown}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(json.dumps(value) if isinstance(value, list | dict) else str(value))}</td>"


def _figure(caption: str, png: bytes) -> str:
    """A figure as the page holds it (``_drawn_before`` reads the drawn ones back)."""
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'
    )
