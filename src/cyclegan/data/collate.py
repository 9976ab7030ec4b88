"""Batches of images that keep their own size (--preprocess none / scale_width): one line, not a stack error."""

from __future__ import annotations

from torch.utils.data import default_collate

from .images import DatasetError


def collate_same_size(batch: list) -> object:
    """default_collate, with images of different sizes in one batch reported as a DatasetError."""
    try:
        return default_collate(batch)
    except RuntimeError as err:
        if "stack expects each tensor to be equal size" not in str(err):
            raise
        sizes = sorted({"x".join(map(str, item[key].shape[-1:-3:-1])) for item in batch for key in ("a", "b")
                        if hasattr(item.get(key), "shape")})
        raise DatasetError(f"images of different sizes ({', '.join(sizes)}) met in one batch: --preprocess "
                           "none/scale_width keep each image's size; use --batch-size 1, or a cropping "
                           "--preprocess such as resize_and_crop") from None
