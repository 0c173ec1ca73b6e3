"""imagefolder: any folder of images, one subfolder per class.

Lets a user search on their own pictures without writing a loader; Pillow
decodes and resizes them (imported lazily, since only this dataset needs it),
and every unreadable image is named in a one-line error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nas.data.errors import DataError, not_found
from nas.data.splits import Splits, split_three_way
from nas.errors import one_line, option

_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})


def imagefolder_classes(root: Path) -> list[str]:
    how = f"pass {option('data_dir')} DIR holding one subfolder of images per class"
    if not root.is_dir():
        raise not_found("imagefolder", root, how)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"imagefolder {root} has {len(classes)} class subfolder(s); "
            f"it needs at least 2 (one subfolder of images per class)"
        )
    return classes


def load_imagefolder(root: Path, seed: int, *, channels: int, image_size: int) -> Splits:
    """One subfolder per class (sorted names give the label), images resized square."""
    from PIL import Image, UnidentifiedImageError  # lazy: only this dataset needs Pillow

    classes = imagefolder_classes(root)
    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        files = sorted(
            p
            for p in (root / cls).rglob("*")
            if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise DataError(
                f"imagefolder class folder {root / cls} has no images "
                f"({', '.join(sorted(_IMAGE_SUFFIXES))})"
            )
        for path in files:
            try:
                with Image.open(path) as img:
                    img = img.convert(mode).resize(
                        (image_size, image_size), Image.Resampling.BILINEAR
                    )
                    array = np.asarray(img, dtype=np.uint8)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise DataError(f"cannot read image {path}: {one_line(exc)}") from None
            images.append(array.reshape(image_size, image_size, channels))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.tensor(labels, dtype=torch.int64)
    augment = "crop-flip" if channels == 3 else "crop"
    return split_three_way("imagefolder", x, y, len(classes), augment, seed)
