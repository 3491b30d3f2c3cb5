"""scikit-learn estimators over the same core: a transformer, a classifier, a clusterer and an
outlier detector.

They follow scikit-learn's contract: ``__init__`` stores parameters only, validation happens
in ``fit``, learned attributes end in ``_``, ``random_state`` makes results identical, and they
work in ``Pipeline`` and ``GridSearchCV``. ``save(path)`` writes a run directory (weights as
safetensors, settings as JSON) that ``load(path)`` and ``autoencoders.load`` read back.
"""

from .classifier import AutoencoderClassifier
from .clusterer import AutoencoderClusterer
from .outlier import AutoencoderOutlierDetector
from .transformer import AutoencoderTransformer

__all__ = [
    "AutoencoderClassifier",
    "AutoencoderClusterer",
    "AutoencoderOutlierDetector",
    "AutoencoderTransformer",
]
