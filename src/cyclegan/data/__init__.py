"""Data: image files, preprocessing, dataset layouts and the built-in demo set."""

from .datasets import (
    AlignedDataset, ImageFolderDataset, PairSampler, UnalignedDataset, build_train_dataset, cache_if_it_fits,
)
from .images import (
    IMAGE_EXTENSIONS, DatasetError, ImageLoadError, list_images, list_inputs, load_image, to_pil, to_tensor,
)
from .transforms import TransformParams, apply_transform, sample_params, test_transform

__all__ = [
    "IMAGE_EXTENSIONS", "AlignedDataset", "DatasetError", "ImageFolderDataset", "ImageLoadError", "PairSampler",
    "TransformParams", "UnalignedDataset", "apply_transform", "build_train_dataset", "cache_if_it_fits", "list_images",
    "list_inputs",
    "load_image", "sample_params", "test_transform", "to_pil", "to_tensor",
]
