"""Clustering a trained run's rows by their codes: ``autoencoders cluster`` and ``autoencoders.cluster``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .clustering.methods import Clustering, ClusterResult, find_clusters
from .config import option_names
from .data.classes import has_class, item_names, labelled, shown
from .data.specs import label_name, other_data_suffix
from .data.stream import RowStream
from .errors import SettingWarning, UserError, say, says_once, user_stacklevel
from .eval.agreement import cluster_scores
from .eval.clustering import kmeans_baselines
from .eval.probes import PCA
from .fields import split_options
from .figures import plots
from .figures.report import REPORT, write_report
from .io import rundir
from .io.checkpoint import replace_dir
from .options import ClusterOptions, run_settings_refused
from .runtime.device import resolve_device
from .runtime.threads import training_threads
from .trained import (
    Data,
    TrainedRun,
    check_own_data,
    given_reading,
    later_precision,
    open_run,
    rows_and_labels,
    writes_into_run,
)

# how far below the k-means it started from DEC or IDEC ends before it is warned of: a point of
# accuracy, not a row or two
BELOW_START = 0.01
MAP_POINTS = 5000  # rows drawn in the 2-D map (a sample: more only hide each other)


@says_once
def cluster(
    run_dir: str | Path,
    data: Data | None = None,
    method: str = "kmeans",
    k: int | None = None,
    split: str = "all",
    out: str | Path | None = None,
    labels: Any = None,
    **options: Any,
) -> ClusterResult:
    """Cluster the rows of ``data`` (a data spec, default the run's own, or rows in memory in the
    training data's units; ``split`` of a spec) by their codes under a trained run, with
    ``method`` ``kmeans``, ``gmm``, ``dec``, ``idec`` or ``manifold`` (see
    :class:`autoencoders.options.ClusterOptions` for every option; any training option of the run,
    such as ``quiet`` or ``device``, too). ``k`` defaults to the number of classes of the rows'
    ``labels`` (the data's own, or given), or of the run's named classes. With labels, the summary
    scores the clusters (accuracy of the best matching of clusters to classes, NMI, ARI) beside
    k-means on the raw rows and on PCA codes of the run's code size.

    Writes ``clusters.csv``, ``clusters.json``, the weights that assign new rows (not for
    ``manifold``) and two figures to ``out`` (default ``RUN_DIR/cluster-<method>-<k>``, then
    ``-seed<S>`` for a ``seed`` given, ``-<name>`` for ``data`` other than the run's own and
    ``-<split>`` for a split other than ``all``; a clustering already there is replaced, other files
    refuse it), and the run's report anew when it has one.
    """
    run = open_run(run_dir)
    if data is None:
        check_own_data(run_dir, run.cfg.data, ", or cluster other rows: --data")
    own, rest = split_options(options, ClusterOptions, option_names())
    reading = given_reading(rest, "cluster", data)
    run_settings_refused(rest, "cluster", other_data=data is not None)
    cfg = run.cfg.replace(**rest)
    how = Clustering(method=method, k=k, **own)
    seeded = "" if how.seed is None else f"-seed{how.seed}"  # a seed of its own: beside the run's
    # scaled as the run's training rows; labels: the data's, a labels file for npy: data, or in memory
    given = run.cfg.data.data if data is None else data
    # a file over --memory-budget streams
    read = rows_and_labels(run.reading(reading, "cluster", data), given, split, labels, stream=True)
    x, y, classes = read.x, read.y, read.classes
    if y is not None and not len(labelled(y)):  # a label column blank in these rows
        y = None
    if how.seed is None:
        how.seed = run.cfg.train.seed
    if how.k is None:
        if y is None and not run.cfg.data.classes:
            raise UserError(
                "these rows have no labels to count the classes of; give the number of clusters, --k"
            )
        # the classes among the rows that have one, or the run's named classes
        how.k = len(run.cfg.data.classes) if y is None else len(np.unique(y[labelled(y)]))
        if how.k < 2:
            raise UserError(
                f"the labels of these rows hold {how.k} class, so they give no number of clusters; "
                "give it, --k (2 or more)"
            )
        if y is not None and how.k < len(run.cfg.data.classes or ()):
            say(
                f"k = {how.k}, the classes among these rows' labels, of the {len(run.cfg.data.classes)} "
                "the run's data names; give --k to choose another",
                cfg.train.quiet,
            )
    how.check(len(x))
    split = split if data is None or isinstance(data, str) else "all"  # rows in memory: all of them
    if out is None:  # one split's, or other data's, clustering beside another's, not in its place
        suffix = seeded + other_data_suffix(data, run.cfg.data.data) + ("" if split == "all" else f"-{split}")
        out = Path(run_dir) / (how.name() + suffix)
    out = Path(out)
    rundir.check_output_dir(out, rundir.is_clustering(out), "clustering", rundir.CLUSTERING_FILES)
    device = resolve_device(cfg.train.device)
    cfg.train.precision = later_precision(run_dir, cfg.train.precision, device)
    rows = x.to(device) if isinstance(x, RowStream) else torch.from_numpy(np.ascontiguousarray(x)).to(device)
    model = run.model.to(device)
    with training_threads(cfg.train.threads, model, how.batch_size):
        result = find_clusters(model, rows, how, cfg.train)
    summary: dict[str, Any] = {
        "method": how.method,
        "k": how.k,
        "rows": len(x),
        "data": _name(run, data),
        "split": split,
        "seconds": result.seconds,
        "cluster_sizes": np.bincount(result.labels, minlength=how.k).tolist(),
    }
    if y is not None:
        if len(labelled(y)) < len(y):  # a label column blank in some rows: the scores count these
            summary["labelled_rows"] = len(labelled(y))
        summary |= cluster_scores(y, result.labels)
        if result.start is not None:  # DEC's claim is to improve on it: the numbers to judge that by
            start = cluster_scores(y, result.start)
            summary |= {f"kmeans_start_{name}": value for name, value in start.items()}
            if summary["accuracy"] < start["accuracy"] - BELOW_START:
                warnings.warn(
                    f"{how.method.upper()} ended below the k-means it started from (accuracy "
                    f"{summary['accuracy']:.4f} against {start['accuracy']:.4f}): its fine-tuning lost "
                    "what the codes held; try --method kmeans, another --lr or fewer --epochs",
                    SettingWarning,
                    stacklevel=user_stacklevel(),
                )
        code_size = run.model.code_size
        quiet = cfg.train.quiet
        summary |= kmeans_baselines(rows, y, how.k, code_size, how.seed, how.n_init, device, quiet)
    summary |= {
        "settings": how.used(),
        **result.details,
        "run_dir": str(Path(run_dir).resolve()),
        "kind": run.manifest["kind"],
        "input_shape": run.manifest["input_shape"],
        "autoencoder": run.cfg.to_dict(),
        "reading": reading,  # how that data was read where not as the run's: predict reads so too
    }
    if how.method in ("kmeans", "dec", "idec"):  # their Student's t assignment's degrees of freedom
        summary["alpha"] = result.clusterer.alpha
    result.summary, result.out = summary, out
    saved = None if result.clusterer.embed is not None else result.clusterer.state_dict()

    def write(new: Path) -> None:
        rundir.write_clusters(
            new, result.labels, shown(y, classes), summary, saved, run.scaler, read.columns()
        )
        _figures(new, run, x, shown(y, classes), result, classes, item_names(summary["data"]))

    # whole or not at all: the figures take seconds, and a stop while they were drawn left a
    # clustering without them
    inside = writes_into_run(run, run_dir, out, "clustering")
    replace_dir(out.resolve(), write)  # a link's target: the directory it names
    if inside and (Path(run_dir) / REPORT).is_file():
        write_report(run_dir, keep_drawn=True)  # with this clustering's section
    return result


def _name(run: TrainedRun, data: Data | None) -> str:
    """How the summary names the rows: their data spec, or that they were given in memory."""
    if data is None:
        return run.cfg.data.data
    return data if isinstance(data, str) else "rows in memory"


def _figures(
    out: Path,
    run: TrainedRun,
    x: np.ndarray | RowStream,
    y: np.ndarray | None,
    result: ClusterResult,
    classes: list[str] | None,
    names: tuple[str, ...] | None,
) -> None:
    """The most confident members of every cluster, and the rows' 2-D map by cluster and by label
    (``y`` as shown, ``classes`` the order of their names, ``names`` those of class numbers)."""
    confidence = result.confidence
    has = np.ones(len(x), bool) if y is None else has_class(y)
    # over every row with a class, as the accuracy
    matched = None if y is None else plots.matched_classes(result.labels[has], np.asarray(y[has].tolist()))
    groups = []
    for j in range(result.clusterer.k):
        members = np.flatnonzero(result.labels == j)
        if not len(members):
            continue
        best = members[np.argsort(-confidence[members], kind="stable")[:10]]
        name = f"{j} ({len(members)})"
        if y is not None and has[members].any():
            values, counts = np.unique(y[members[has[members]]].tolist(), return_counts=True)
            commonest = values[counts.argmax()]
            share = counts.max() / has[members].sum()  # of the members with a class
            name += f"\n{100 * share:.0f}% {plots.class_label(commonest, names)}"
            if j not in matched:  # more clusters than classes: the accuracy counts it wrong
                name += "\nmatched: no class"
            elif matched[j] != commonest:  # the map and the accuracy name it so
                name += f"\nmatched: {plots.class_label(matched[j], names)}"
        groups.append((name, x.read(best).numpy() if isinstance(x, RowStream) else x[best]))
    title = "Most confident rows of each cluster (cluster, size" + (
        ", commonest label; the class matched to it, where another)" if y is not None else ")"
    )
    plots.labelled_rows(groups, out / rundir.CLUSTER_MEMBERS, run.display_shape, title, run.features)
    keep = np.random.default_rng(0).permutation(len(x))[:MAP_POINTS]
    space = torch.from_numpy(result.space[keep])
    tuned = "fine-tuned " if result.start is not None else ""  # DEC's and IDEC's, not the run's
    where = "UMAP embedding" if result.clusterer.embed is not None else f"{tuned}codes"
    if space.shape[1] > 2:
        points = PCA(space, 2).transform(space).numpy()
        axes = (f"principal component 1 of the {where}", f"principal component 2 of the {where}")
    elif space.shape[1] == 2:
        dimension = "UMAP dimension" if result.clusterer.embed is not None else f"{tuned}code"
        points, axes = space.numpy(), (f"{dimension} 0", f"{dimension} 1")
    else:  # one dimension: spread along it, the rows' order down the other axis
        points = np.stack([space[:, 0].numpy(), np.arange(len(space))], 1)
        axes = (f"{where} 0", "row (a sample, in no order)")
    split = "" if result.summary["split"] == "all" else f" {result.summary['split']}"
    title = f"{len(keep)} of {len(x)}{split} rows: {result.summary['method']}, k = {result.clusterer.k}"
    labels = None if y is None else y[keep]
    plots.cluster_map(
        points,
        result.labels[keep],
        labels,
        out / rundir.CLUSTER_MAP,
        axes,
        title,
        classes,
        names,
        label_name(run.cfg.data),
        matched,
    )
