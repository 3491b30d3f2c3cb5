"""scikit-learn faces: estimator checks, pipelines, grid search, outlier scores, safe save/load."""

from __future__ import annotations

import stat
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import autoencoders
from autoencoders.io.checkpoint import UMASK
from autoencoders.sklearn import (
    AutoencoderClassifier,
    AutoencoderClusterer,
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
)

SMALL = {"layers": (16, 4), "epochs": 5, "batch_size": 16, "random_state": 0}


@parametrize_with_checks(
    [
        AutoencoderTransformer(**SMALL),
        AutoencoderClassifier(**SMALL, head_epochs=60, head_lr=1e-2),
        AutoencoderOutlierDetector(**SMALL),
        AutoencoderClusterer(**SMALL),
        AutoencoderClusterer(**SMALL, method="dec", cluster_options={"epochs": 3}),
    ],
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)


def test_default_transformer_pipeline_beats_pca_of_the_same_size(digits):
    x_train, x_test, y_train, y_test = digits
    scores = [
        make_pipeline(AutoencoderTransformer(random_state=seed), LogisticRegression(max_iter=2000))
        .fit(x_train, y_train)
        .score(x_test, y_test)
        for seed in range(3)
    ]
    pca = make_pipeline(MinMaxScaler(), PCA(16, random_state=0), LogisticRegression(max_iter=2000))
    assert np.mean(scores) > pca.fit(x_train, y_train).score(x_test, y_test)  # 16 codes, 16 components


def test_same_random_state_same_result_and_clone(digits):
    x_train, x_test, _, _ = digits
    a = AutoencoderTransformer(**SMALL).fit(x_train)
    b = clone(a).fit(x_train)
    np.testing.assert_array_equal(a.transform(x_test), b.transform(x_test))
    c = AutoencoderTransformer(**{**SMALL, "random_state": 1}).fit(x_train)
    assert not np.array_equal(a.transform(x_test), c.transform(x_test))
    assert a.get_params()["layers"] == (16, 4) and "autoencoder_" not in clone(a).__dict__


def test_inverse_transform_and_score(digits):
    x_train, x_test, _, _ = digits
    ae = AutoencoderTransformer(layers=(64, 16), epochs=30, random_state=0).fit(x_train)
    recon = ae.inverse_transform(ae.transform(x_test))
    assert recon.shape == x_test.shape and 0 <= recon.min() and recon.max() <= 16  # back in pixel units
    codes = ae.transform(x_test)  # decoded in float64: a row's result whatever rows are beside it
    np.testing.assert_allclose(ae.inverse_transform(codes[:7]), recon[:7], rtol=1e-12, atol=1e-12)
    assert ae.inverse_transform(codes.astype(np.float32)).dtype == np.float32  # as transform keeps it
    untrained = AutoencoderTransformer(layers=(64, 16), epochs=1, random_state=0).fit(x_train)
    assert ae.score(x_test) > untrained.score(x_test)  # higher is better: less reconstruction error
    # the score is measured in the [0, 1] units of the per-feature scaling fitted on the training rows:
    # the rows as the model takes them (clipped to the training range), plus how far beyond it they lie
    offset, span = ae.scaler_
    scaled = (x_test - offset) / span
    clipped = np.clip(scaled, 0, 1)
    assert (scaled != clipped).any()  # test rows beyond the training range: the case is tested
    expected = -((((recon - offset) / span - clipped) ** 2).sum(1) + ((scaled - clipped) ** 2).sum(1)).mean()
    assert ae.score(x_test) == pytest.approx(expected, rel=1e-4)


def test_set_output_pandas_and_feature_names_also_after_save_and_load(digits, tmp_path):
    pd = pytest.importorskip("pandas")
    x_train, x_test, _, _ = digits
    frame = pd.DataFrame(x_train, columns=[f"pixel{i}" for i in range(64)])
    ae = AutoencoderTransformer(**SMALL).set_output(transform="pandas").fit(frame)
    out = ae.transform(frame)
    assert list(out.columns) == [f"autoencodertransformer{i}" for i in range(4)]
    assert list(ae.feature_names_in_) == list(frame.columns)
    ae.save(tmp_path / "ae")
    again = AutoencoderTransformer.load(tmp_path / "ae")
    assert list(again.feature_names_in_) == list(frame.columns)
    pd.testing.assert_frame_equal(again.transform(frame), out)  # a frame still, the same codes
    with pytest.raises(ValueError, match="feature names should match"):
        again.transform(frame.rename(columns={"pixel0": "other"}))
    # the saved run, used as any run, reads later frames by these names too
    shuffled = frame[frame.columns[::-1]]
    np.testing.assert_array_equal(
        autoencoders.encode(tmp_path / "ae", shuffled), autoencoders.encode(tmp_path / "ae", frame)
    )
    with pytest.raises(autoencoders.UserError, match=r"lacks 1 of the run's columns \('pixel3'\)"):
        autoencoders.encode(tmp_path / "ae", frame.drop(columns="pixel3"))
    # names that cannot identify columns (one empty) are not recorded: the run reads rows in order
    unnamed = frame.rename(columns={"pixel5": " "})
    AutoencoderTransformer(**SMALL).fit(unnamed).save(tmp_path / "unnamed")
    assert AutoencoderTransformer.load(tmp_path / "unnamed").n_features_in_ == 64
    assert autoencoders.encode(tmp_path / "unnamed", unnamed).shape == (len(frame), 4)


def test_grid_search_with_two_workers(digits):
    x_train, x_test, y_train, y_test = digits
    grid = GridSearchCV(
        # five epochs of training leave small codes: standardised, logistic regression reads them
        make_pipeline(AutoencoderTransformer(**SMALL), StandardScaler(), LogisticRegression(max_iter=500)),
        {"autoencodertransformer__layers": [(16, 4), (16, 8)]},
        cv=2,
        n_jobs=2,
    )
    grid.fit(x_train[:300], y_train[:300])
    assert grid.best_params_["autoencodertransformer__layers"] in [(16, 4), (16, 8)]
    assert grid.score(x_test, y_test) > 0.3


def test_classifier_and_frozen_encoder(digits):
    x_train, x_test, y_train, y_test = digits
    settings = {"layers": (64, 16), "epochs": 20, "head_epochs": 30, "random_state": 0}
    clf = AutoencoderClassifier(**settings).fit(x_train, y_train)
    assert clf.score(x_test, y_test) > 0.85
    proba = clf.predict_proba(x_test)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    frozen = AutoencoderClassifier(**settings, freeze_encoder=True).fit(x_train, y_train)
    # the frozen classifier's encoder is exactly the pretrained one
    for name, value in frozen.autoencoder_.state_dict().items():
        assert np.array_equal(frozen.classifier_.autoencoder.state_dict()[name].numpy(), value.numpy()), name
    assert frozen.score(x_test, y_test) > 0.85  # its head starts at the codes' logistic regression


def test_rows_marked_unlabelled_train_the_autoencoder_only(digits):
    x_train, x_test, y_train, y_test = digits
    y = np.full(len(y_train), -1)
    few = np.concatenate([np.flatnonzero(y_train == c)[:5] for c in range(10)])  # 5 labels per class
    y[few] = y_train[few]
    # 50 labelled rows make one batch: an epoch of the head is one update
    settings = {"layers": (64, 16), "epochs": 20, "head_epochs": 300, "random_state": 0}
    semi = AutoencoderClassifier(**settings, unlabelled=-1).fit(x_train, y)
    assert semi.classes_.tolist() == list(range(10))  # -1 is no class
    # the autoencoder trained on every row, as it does when all are labelled: the same weights
    every = AutoencoderClassifier(**settings).fit(x_train, y_train).autoencoder_.state_dict()
    for name, value in semi.autoencoder_.state_dict().items():
        assert torch.equal(value, every[name]), name
    alone = AutoencoderClassifier(**settings).fit(x_train[few], y[few])  # its autoencoder on 50 rows
    assert semi.score(x_test, y_test) > max(0.75, alone.score(x_test, y_test))  # 0.848 against 0.809
    by_default = {k: v for k, v in settings.items() if k != "head_epochs"}  # 1,000 updates, as classify
    assert AutoencoderClassifier(**by_default, unlabelled=-1).fit(x_train, y).score(x_test, y_test) > 0.75
    with pytest.raises(autoencoders.UserError, match="every label is unlabelled=-1; label some rows"):
        AutoencoderClassifier(**settings, unlabelled=-1).fit(x_train, np.full(len(y_train), -1))
    with pytest.raises(ValueError, match=r"unlabelled=-1 and the labels \(<U\d+\) are not of one kind"):
        AutoencoderClassifier(**settings, unlabelled=-1).fit(x_train, y.astype(str))  # '-1' is text


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (
            AutoencoderTransformer(activation="rel"),
            r"^activation must be one of .* \(did you mean 'relu'\?\)",
        ),
        (
            AutoencoderTransformer(model="vea"),
            r"^model must be one of dense, conv, vae, aae, not 'vea' \(did you mean 'vae'\?\)",
        ),
        (
            AutoencoderClusterer(cluster_options={"gamma": 0.5}),
            "^gamma weighs IDEC's .* give method idec too",
        ),
        (
            AutoencoderTransformer(options={"kl_warmup": 2}),
            r"^kl_warmup \(section \[vae\]\): options of model vae",
        ),
    ],
)
def test_estimators_name_options_as_python_does(estimator, message):
    with pytest.raises(autoencoders.UserError, match=message):
        estimator.fit(load_digits().data[:50])


def test_outlier_detector_beats_pca_reconstruction_error():
    x, y = load_digits(return_X_y=True)
    normal, anomalous = x[y != 7], x[y == 7]
    x_train, x_normal_test = train_test_split(normal, test_size=0.2, random_state=0)
    x_test = np.concatenate([x_normal_test, anomalous])
    truth = np.r_[np.zeros(len(x_normal_test)), np.ones(len(anomalous))]
    det = AutoencoderOutlierDetector(layers=(64, 8), epochs=60, contamination=0.05, random_state=0)
    det.fit(x_train)
    auc = roc_auc_score(truth, -det.score_samples(x_test))
    scaler = MinMaxScaler().fit(x_train)
    pca = PCA(8, random_state=0).fit(scaler.transform(x_train))
    z = scaler.transform(x_test)
    pca_auc = roc_auc_score(truth, ((pca.inverse_transform(pca.transform(z)) - z) ** 2).sum(1))
    assert auc > pca_auc
    labels = det.predict(x_train)
    assert set(labels) == {-1, 1} and abs((labels == -1).mean() - 0.05) < 0.01


@pytest.mark.parametrize(
    "klass", [AutoencoderTransformer, AutoencoderClassifier, AutoencoderOutlierDetector, AutoencoderClusterer]
)
def test_save_and_load_without_pickle(klass, digits, tmp_path):
    x_train, x_test, y_train, _ = digits
    est = klass(**SMALL).fit(x_train, y_train)
    est.save(tmp_path / "est")
    again = klass.load(tmp_path / "est")
    method = {
        "AutoencoderTransformer": "transform",
        "AutoencoderClassifier": "predict_proba",
        "AutoencoderClusterer": "predict",
    }.get(klass.__name__, "decision_function")
    np.testing.assert_array_equal(getattr(again, method)(x_test), getattr(est, method)(x_test))
    assert again.get_params() == est.get_params()
    est.set_params(layers=[16, 4]).save(tmp_path / "listed")  # given as a list, it comes back one
    assert klass.load(tmp_path / "listed").get_params()["layers"] == [16, 4]
    # the directory is a run directory the rest of the toolkit reads
    model = autoencoders.load(tmp_path / "est")
    assert model.code_size == 4
    if klass in (AutoencoderClassifier, AutoencoderClusterer):  # predicting is the estimator's own
        with pytest.raises(
            autoencoders.UserError, match=rf"scikit-learn {klass.__name__}, which predicts in Python"
        ):
            autoencoders.predict(tmp_path / "est", x_test[:3])
    if klass is AutoencoderTransformer:  # and takes rows as it does, beyond the training range too
        far = x_test[:5].copy()
        far[:, 10] = 40.0
        with pytest.warns(UserWarning, match="far outside the range the run was trained on"):
            codes = autoencoders.encode(tmp_path / "est", far)
        np.testing.assert_allclose(est.transform(far), codes, atol=1e-5)


def test_save_takes_numpy_parameters_keeps_other_work_and_names_no_data_of_its_own(
    digits, tmp_path, monkeypatch
):
    x_train, x_test, _, _ = digits
    grid = {"layers": np.array([16, 4]), "epochs": np.int64(2), "noise": np.float32(0.25)}  # a search's
    est = AutoencoderTransformer(**(SMALL | grid)).fit(x_train)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("mine")
    with pytest.raises(autoencoders.UserError, match="is not empty; save to a new or empty directory"):
        est.save(tmp_path / "work")
    with pytest.raises(autoencoders.UserError, match="replaces a saved estimator; .* holds none: it is kept"):
        est.save(tmp_path / "work", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]  # nothing written beside it either

    est.save(tmp_path / "est")
    saved = AutoencoderTransformer.load(tmp_path / "est")
    assert saved.get_params()["layers"] == (16, 4) and saved.get_params()["epochs"] == 2
    np.testing.assert_array_equal(saved.transform(x_test), est.transform(x_test))
    with pytest.raises(autoencoders.UserError, match="is not empty"):
        est.save(tmp_path / "est")
    (tmp_path / "est" / "notes.txt").write_text("mine")  # beside a saved estimator: kept, and so is it
    with pytest.raises(autoencoders.UserError, match=r"also holds what save did not write \(notes.txt\)"):
        AutoencoderTransformer(**SMALL).fit(x_train).save(tmp_path / "est", overwrite=True)
    (tmp_path / "est" / "notes.txt").unlink()
    AutoencoderTransformer(**SMALL).fit(x_train).save(tmp_path / "est", overwrite=True)
    assert AutoencoderTransformer.load(tmp_path / "est").get_params()["epochs"] == SMALL["epochs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["est", "work"]

    with pytest.raises(autoencoders.UserError, match="fitted on rows in memory .* which it does not keep"):
        autoencoders.evaluate_run(tmp_path / "est")
    assert autoencoders.encode(tmp_path / "est", x_test[:3]).shape == (3, 4)  # given its data, it works
    config = tmp_path / "est" / "config.json"  # as earlier versions saved it: digits named
    config.write_text(config.read_text().replace('"memory"', '"digits"'))
    with pytest.raises(autoencoders.UserError, match="fitted on rows in memory"):
        autoencoders.evaluate_run(tmp_path / "est")
    assert stat.S_IMODE((tmp_path / "est").stat().st_mode) == 0o777 & ~UMASK  # as mkdir would make it

    monkeypatch.chdir(tmp_path / "est")  # saved over where it is: written beside, moved in whole
    est.save(".", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["est", "work"]
    (tmp_path / "link").symlink_to(tmp_path / "est")
    est.save(tmp_path / "link", overwrite=True)  # into the directory the link names
    assert (tmp_path / "link").is_symlink() and (tmp_path / "est" / "estimator.json").is_file()
    with pytest.raises(ValueError, match="options may not hold data: an estimator fits the rows given"):
        AutoencoderTransformer(**SMALL, options={"data": "digits"}).fit(x_train)


def test_outlier_scores_do_not_saturate_outside_the_training_range(digits):
    x_train, x_test, _, _ = digits
    det = AutoencoderOutlierDetector(**SMALL).fit(x_train)
    row = x_test[:1].copy()
    far, farther = row.copy(), row.copy()
    far[0, 10], farther[0, 10] = 32.0, 1e4
    scores = det.score_samples(np.concatenate([row, far, farther]))
    assert scores[0] > scores[1] > scores[2]


def test_feature_names_survive_fit_and_the_callers_rng_is_untouched(digits):
    pd = pytest.importorskip("pandas")
    import torch

    x_train, x_test, y_train, _ = digits
    columns = [f"pixel{i}" for i in range(64)]
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clf = AutoencoderClassifier(**SMALL, head_epochs=2).fit(pd.DataFrame(x_train, columns=columns), y_train)
    assert torch.equal(torch.rand(3), expected)  # fitting drew from its own seeded stream
    assert list(clf.feature_names_in_) == columns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(pd.DataFrame(x_test, columns=columns))
        AutoencoderOutlierDetector(**SMALL).fit(pd.DataFrame(x_train, columns=columns))


def test_loading_a_classifier_keeps_its_pretrained_autoencoder_and_its_classes(digits, tmp_path):
    x_train, x_test, y_train, _ = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    y_named = names[y_train].astype(object)  # as a data frame's string column holds them
    clf = AutoencoderClassifier(**SMALL, head_epochs=3).fit(x_train, y_named)
    clf.save(tmp_path / "clf")
    again = AutoencoderClassifier.load(tmp_path / "clf")
    for name, value in clf.autoencoder_.state_dict().items():
        assert np.array_equal(again.autoencoder_.state_dict()[name].numpy(), value.numpy()), name
    assert clf.classes_.dtype == again.classes_.dtype == object
    predicted = again.predict(x_test)
    assert predicted.dtype == object and np.array_equal(predicted, clf.predict(x_test))


def test_clusterer_in_a_pipeline_beats_kmeans_on_the_pixels_and_manifold_is_not_saved(digits, tmp_path):
    from sklearn.cluster import KMeans

    from autoencoders.eval.agreement import clustering_accuracy

    x_train, _, y_train, _ = digits
    est = AutoencoderClusterer(10, method="gmm", layers=(128, 10), epochs=60, random_state=0)
    labels = make_pipeline(MinMaxScaler(), est).fit_predict(x_train)
    assert np.array_equal(labels, est.labels_) and np.array_equal(
        est.predict(MinMaxScaler().fit_transform(x_train)), labels
    )
    proba = est.predict_proba(MinMaxScaler().fit_transform(x_train))
    assert proba.shape == (len(x_train), 10) and np.array_equal(proba.argmax(1), labels)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    pixels = KMeans(10, n_init=10, random_state=0).fit_predict(x_train)
    assert clustering_accuracy(y_train, labels) > clustering_accuracy(y_train, pixels)
    from sklearn.mixture import GaussianMixture

    offset, span = est.scaler_  # the mixture's BIC, on the training rows' codes
    rows = torch.from_numpy(((MinMaxScaler().fit_transform(x_train) - offset) / span).astype(np.float32))
    with torch.no_grad():
        codes = est.autoencoder_.encode(rows).double().numpy()
    mixture = GaussianMixture(10, n_init=10, random_state=0, reg_covar=1e-5).fit(codes)
    assert est.bic_ == pytest.approx(mixture.bic(codes), rel=0.01)
    est.save(tmp_path / "gmm")
    assert AutoencoderClusterer.load(tmp_path / "gmm").bic_ == est.bic_
    assert not hasattr(est.set_params(method="kmeans").fit(MinMaxScaler().fit_transform(x_train)), "bic_")
    manifold = AutoencoderClusterer(3, method="manifold", **SMALL).fit(x_train[:200])
    assert manifold.predict(x_train[200:260]).shape == (60,)
    with pytest.raises(autoencoders.UserError, match="UMAP embedding, which is not saved"):
        manifold.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("estimator", "methods"),
    [
        (AutoencoderTransformer, ["transform", "inverse_transform", "score", "save"]),
        (AutoencoderClassifier, ["predict", "predict_proba", "score", "save"]),
        (AutoencoderClusterer, ["predict", "predict_proba", "save"]),
        (AutoencoderOutlierDetector, ["score_samples", "decision_function", "predict", "save"]),
    ],
)
def test_every_method_of_an_unfitted_estimator_says_it_is_not_fitted(estimator, methods, tmp_path):
    from sklearn.exceptions import NotFittedError

    rows = np.zeros((4, 64))
    calls = {"save": lambda method: method(tmp_path / "saved"), "score": lambda method: method(rows, None)}
    for name in methods:
        method = getattr(estimator(), name)
        with pytest.raises(NotFittedError):
            calls.get(name, lambda method: method(rows))(method)


def test_the_default_code_of_a_narrow_table_is_narrower_than_its_rows(tmp_path):
    """As the CLI's: six columns get a 3-unit code (PCA at the same size is then no exact copy), and
    rows off the 2-D surface the training rows lie on are flagged."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(2, 6))
    normal = np.tanh(rng.uniform(-1, 1, (600, 2)) @ mixing)
    odd = rng.uniform(-1, 1, (30, 6))
    det = AutoencoderOutlierDetector(epochs=40, random_state=0).fit(normal[:500])
    assert det.autoencoder_.layers == [6, 256, 64, 3]
    truth = np.r_[np.zeros(100), np.ones(30)]
    assert roc_auc_score(truth, -det.score_samples(np.concatenate([normal[500:], odd]))) > 0.9
    assert (
        AutoencoderTransformer(epochs=1, random_state=0).fit(load_digits().data[:100]).autoencoder_.code_size
        == 16
    )
    det.save(tmp_path / "det")  # the default (None) saved as such
    again = AutoencoderOutlierDetector.load(tmp_path / "det")
    assert again.layers is None and again.autoencoder_.layers == [6, 256, 64, 3]
    np.testing.assert_array_equal(again.score_samples(odd), det.score_samples(odd))


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (AutoencoderTransformer(layers=8), r"layers must be the widths after the input, e.g. \(64, 16\)"),
        (AutoencoderTransformer(layers=()), r"layers must be the widths after the input, .* got \(\)"),
        (AutoencoderTransformer(epochs=1, options={"epochs": 3}), "options may not hold epochs: set the "),
        (AutoencoderTransformer(options={"seed": 3}), "parameter random_state instead"),
        (AutoencoderOutlierDetector(contamination="auto"), r"contamination must be a fraction in \(0, 0.5\]"),
        (
            AutoencoderClusterer(cluster_options={"gama": 1}),
            r"unknown option 'gama' \(did you mean 'gamma'\?\)",
        ),
        (
            AutoencoderClusterer(cluster_options={"n_clusters": 3}),
            r"cluster_options may not hold n_clusters: set the estimator's own parameters",
        ),
        (AutoencoderClusterer(n_clusters="3"), r"^n_clusters must be a whole number, not '3'$"),
        (
            AutoencoderTransformer(options="weight_decay=0"),
            r"^options must be a dict of train's options, e\.g\.",
        ),
        (AutoencoderTransformer(options=[]), r"^options must be a dict of train's options, .* not list$"),
        (
            AutoencoderClusterer(cluster_options=""),
            r"^cluster_options must be a dict of cluster's .* not str$",
        ),
        (AutoencoderTransformer(verbose="no"), r"^verbose must be True or False, not 'no'$"),
        (AutoencoderClusterer(n_clusters=None), r"^n_clusters must be a whole number, not None$"),
        (AutoencoderClusterer(n_clusters=True), r"^n_clusters must be a whole number, not True$"),
        (AutoencoderClusterer(n_clusters=0), r"^n_clusters must be at least 1, got 0$"),
        (AutoencoderClusterer(n_clusters=21), r"^n_clusters=21 must be at least 1 and at most n_samples=20$"),
        (
            AutoencoderTransformer(model="conv"),
            r"model='conv' needs .* options=\{'image_shape': \[C, H, W\]\}",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_in_words_before_training(estimator, message):
    """As the functions refuse them: a UserError, which is a ValueError as scikit-learn's own are."""
    with pytest.raises(autoencoders.UserError, match=message):
        estimator.fit(np.random.default_rng(0).random((20, 6)))


def test_a_classifier_s_switch_is_true_or_false_not_a_word_that_reads_as_true():
    x, y = np.random.default_rng(0).random((20, 6)), np.arange(20) % 2
    with pytest.raises(autoencoders.UserError, match=r"^freeze_encoder must be True or False, not 'no'$"):
        AutoencoderClassifier(layers=(4, 2), epochs=1, freeze_encoder="no", random_state=0).fit(x, y)
    with pytest.raises(autoencoders.UserError, match=r"^head_epochs=0 trains no classifier: its head would"):
        AutoencoderClassifier(layers=(4, 2), epochs=1, head_epochs=0, random_state=0).fit(x, y)
    frozen = AutoencoderClassifier(
        layers=(4, 2), epochs=1, head_epochs=0, freeze_encoder=True, random_state=0
    )
    assert frozen.fit(x, y).score(x, y) > 0.5  # its head fitted to the codes


def test_a_seeded_fit_leaves_numpy_s_global_random_state_as_it_was():
    """As KMeans(random_state=0) does: only the estimator's own generator is drawn from."""
    x = np.random.default_rng(0).random((30, 6))
    np.random.seed(0)
    AutoencoderTransformer(layers=(4, 2), epochs=1, random_state=0).fit(x)
    drawn = np.random.rand()
    np.random.seed(0)
    assert drawn == np.random.rand()


def test_a_classifier_given_one_class_is_refused_as_scikit_learn_refuses_it():
    x = np.random.default_rng(0).random((20, 6))
    for y, shown in ((np.zeros(20), "0.0"), (np.array(["a"] * 20, dtype=object), "'a'")):  # a Series' text
        with pytest.raises(ValueError, match=rf"^the labelled rows hold one class, {shown}; a classifier"):
            AutoencoderClassifier(layers=(4, 2), epochs=1, random_state=0).fit(x, y)


@pytest.mark.parametrize("klass", [AutoencoderTransformer, AutoencoderOutlierDetector, AutoencoderClusterer])
def test_settings_that_change_nothing_are_warned_of_as_train_does_but_not_the_defaults(klass):
    from autoencoders.errors import SettingWarning

    x = np.random.default_rng(0).random((40, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingWarning)  # the estimators' own settings are meant
        klass(layers=(4, 2), epochs=1, random_state=0).fit(x)
    with pytest.warns(SettingWarning) as caught:
        klass(
            layers=(4, 2), epochs=1, random_state=0, corruption="none", noise=0.5, options={"momentum": 0.5}
        ).fit(x)
    said = [str(w.message) for w in caught]
    assert any("--noise 0.5 has no effect without --corruption" in m for m in said), said
    assert any("--momentum 0.5 is SGD's" in m for m in said), said
    assert {w.filename for w in caught} == {__file__}  # the caller's line
    with pytest.warns(SettingWarning) as caught:  # scikit-learn's code in between: still the caller's
        make_pipeline(klass(layers=(4, 2), epochs=1, random_state=0, corruption="none", noise=0.5)).fit(x)
    assert {w.filename for w in caught} == {__file__}


def test_layers_may_be_an_array_of_widths():
    est = AutoencoderTransformer(layers=np.array([8, 3]), epochs=1, random_state=0).fit(
        load_digits().data[:50]
    )
    assert est.autoencoder_.layers == [64, 8, 3]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"head_epochs": -1}, "head_epochs must be >= 0, got -1"),
        (
            {"options": {"test_fraction": 0.3}},
            "options may not hold test_fraction: an estimator trains on every",
        ),
        ({"head_epochs": 2.5}, "head_epochs must be a whole number of epochs or None, got 2.5"),
        ({"head_lr": 0}, "head_lr must be a number > 0"),
    ],
)
def test_the_classifier_s_head_settings_are_named_as_given(setting, message):
    rows = np.random.default_rng(0).random((20, 6))
    with pytest.raises(ValueError, match=message):
        AutoencoderClassifier(**setting).fit(rows, np.arange(20) % 2)


@pytest.mark.parametrize(
    "klass", [AutoencoderTransformer, AutoencoderClassifier, AutoencoderOutlierDetector, AutoencoderClusterer]
)
def test_help_shows_every_parameter_with_its_default(klass):
    for name, value in klass().get_params().items():
        assert f"\n    {name} : default {value!r}\n" in klass.__doc__, name


def test_text_in_x_is_named_with_the_one_hot_advice(digits):
    pd = pytest.importorskip("pandas")
    x_train = digits[0][:60, :4]
    frame = pd.DataFrame(x_train, columns=list("abcd")).assign(size=["lo", "hi"] * 30)
    with pytest.raises(autoencoders.UserError, match=r"column 'size' of X is not numeric; .*get_dummies"):
        AutoencoderTransformer(**SMALL).fit(frame)
    with pytest.raises(ValueError, match=r"X holds text; .*OneHotEncoder"):
        AutoencoderTransformer(**SMALL).fit(np.array([["lo", "1.5"], ["hi", "2"]] * 30))
    numbers = pd.DataFrame(x_train, columns=list("abcd")).astype(object)  # objects that are numbers
    assert AutoencoderTransformer(**SMALL).fit(numbers).transform(numbers).shape == (60, 4)


def test_a_torch_tensor_of_rows_fits_and_transforms_as_the_same_array(digits):
    rows = digits[0].astype(np.float32)
    from_tensor = AutoencoderTransformer(**SMALL).fit(torch.from_numpy(rows))
    from_array = AutoencoderTransformer(**SMALL).fit(rows)
    codes = from_tensor.transform(torch.from_numpy(rows))
    assert codes.dtype == np.float32  # as for float32 rows
    np.testing.assert_array_equal(codes, from_array.transform(rows))
    np.testing.assert_array_equal(
        from_tensor.inverse_transform(torch.from_numpy(codes)), from_array.inverse_transform(codes)
    )
    halved = torch.from_numpy(rows).bfloat16()  # NumPy has no bfloat16: read as float32
    np.testing.assert_array_equal(from_array.transform(halved), from_array.transform(halved.float().numpy()))


def test_a_classifier_fits_the_same_whatever_the_callers_thread_count():
    """The head trains on the threads the autoencoder chose, not the caller's: a sum over threads
    rounds differently, and a narrow head's gradients did."""
    x, y = load_digits(return_X_y=True)
    fitted = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            clf = AutoencoderClassifier(layers=(64, 16), epochs=2, head_epochs=40, random_state=0)
            fitted.append(clf.fit(x[:600], y[:600]).predict_proba(x[600:]))
            assert torch.get_num_threads() == threads  # the caller's count comes back
    finally:
        torch.set_num_threads(1)  # the suite's own setting (conftest)
    assert np.array_equal(*fitted)


def test_a_saved_estimators_directory_splits_new_data_as_train_would(digits, tmp_path, capsys):
    """Fitted on all its rows, it records no test split; data given to it later gets train's, and
    commands that would read its own rows say to give some."""
    from autoencoders.cli import run as cli_run

    x_train, x_test, y_train, y_test = digits
    AutoencoderTransformer(**SMALL).fit(x_train).save(tmp_path / "est")
    np.save(tmp_path / "x.npy", x_test)
    np.save(tmp_path / "y.npy", y_test)
    spec, est = f"npy:{tmp_path / 'x.npy'}", str(tmp_path / "est")
    assert np.isfinite(autoencoders.evaluate_run(est, spec, quiet=True)["test_mse"])  # of a test split
    argv = ["classify", est, "--data", spec, "--labels", str(tmp_path / "y.npy"), "--method", "knn"]
    assert cli_run([*argv, "--quiet", "--out", str(tmp_path / "clf")]) == 0
    with pytest.raises(
        autoencoders.UserError, match=r"^this run was fitted on rows in memory .* give the data"
    ):
        autoencoders.cluster(est, k=3, quiet=True)
    assert autoencoders.visualize(est, "filters").is_file()  # of the weights alone: no rows needed


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.pop("class"),
        lambda s: s["params"].update(evil=1),
        lambda s: s.update(classes="abc"),
        lambda s: s.update(classes_dtype="S400000000"),
        lambda s: s.pop("n_features_in"),
    ],
    ids=["no-class", "extra-param", "classes-text", "huge-dtype", "no-width"],
)
def test_a_damaged_estimator_json_is_named_in_one_line(digits, tmp_path, edit):
    import json

    x_train, _, y_train, _ = digits
    AutoencoderClassifier(**SMALL).fit(x_train, y_train).save(tmp_path / "est")
    saved = json.loads((tmp_path / "est" / "estimator.json").read_text())
    edit(saved)
    (tmp_path / "est" / "estimator.json").write_text(json.dumps(saved))
    with pytest.raises(
        autoencoders.UserError, match=r"estimator\.json is damaged|holds an estimator of class None"
    ):
        AutoencoderClassifier.load(tmp_path / "est")
