"""Data: image files, preprocessing, dataset layouts and the built-in demo set."""

from .datasets import AlignedDataset, ImageFolderDataset, PairSampler, UnalignedDataset, build_train_dataset
from .images import DatasetError, ImageLoadError, list_images, list_inputs, load_image, to_pil, to_tensor
from .transforms import TransformParams, apply_transform, eval_transform, sample_params

__all__ = [
    "AlignedDataset", "DatasetError", "ImageFolderDataset", "ImageLoadError", "PairSampler", "TransformParams",
    "UnalignedDataset", "apply_transform", "build_train_dataset", "eval_transform", "list_images", "list_inputs",
    "load_image", "sample_params", "to_pil", "to_tensor",
]
