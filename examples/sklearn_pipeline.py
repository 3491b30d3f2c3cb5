"""The scikit-learn face: codes as features in a Pipeline, a grid search, an outlier detector.

Run from the repository root: python examples/sklearn_pipeline.py  (digits; about 13–14 s on 2 cores)
"""

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from autoencoders.sklearn import AutoencoderOutlierDetector, AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

# codes as features for a linear classifier; the code size is searched with 2 worker processes
pipe = make_pipeline(
    AutoencoderTransformer(layers=(128, 16), epochs=30, random_state=0), LogisticRegression(max_iter=2000)
)
search = GridSearchCV(pipe, {"autoencodertransformer__layers": [(128, 8), (128, 16)]}, cv=2, n_jobs=2)
search.fit(X_train, y_train)
print(f"best {search.best_params_}: test accuracy {search.score(X_test, y_test):.3f}")

# anomaly detection: train on every digit but 7, score the test set; 7s should look least normal
normal = y_train != 7
detector = AutoencoderOutlierDetector(layers=(64, 8), epochs=60, contamination=0.05, random_state=0)
detector.fit(X_train[normal])
auc = roc_auc_score(y_test == 7, -detector.score_samples(X_test))
flagged = (detector.predict(X_test) == -1).mean()
print(f"held-out digit 7 vs the rest: ROC-AUC {auc:.3f}; {flagged:.1%} of the test set flagged")

# save in the run-directory format (safetensors + JSON, no pickle) and load it back
detector.save("runs/sklearn-detector", overwrite=True)  # replaced when run again
same = AutoencoderOutlierDetector.load("runs/sklearn-detector")
assert (same.score_samples(X_test) == detector.score_samples(X_test)).all()
