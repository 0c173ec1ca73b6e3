"""Datasets for resnas: load a named dataset into train/val/test tensors.

Every dataset ends up as one :class:`Splits` object holding whole-split
tensors (``N×C×H×W`` float32 images, int64 labels), normalised per channel
with statistics of the train split only, so nothing about val or test leaks
into training.  Keeping whole splits as tensors (on the GPU when one is
used, as airbench does) avoids a DataLoader and its per-image Python work,
which would dominate the cost of the small networks a search trains.
:func:`augment_batch` does the matching batched augmentation on whatever
device the batch lives on.

The on-disk datasets use torchvision's layout (so an existing ``data/``
folder works unchanged), but torchvision itself is not required: the idx and
CIFAR pickle formats are read here, one module per format.  This package's
top level is only the public API; callers write ``from nas import data`` and
``data.load(...)``.
"""

from __future__ import annotations

from nas.data.augment import AUGMENT_MODES, augment_batch
from nas.data.errors import DataError
from nas.data.loader import load, prepare
from nas.data.splits import Splits
from nas.names import DATASETS

load_data = load  # the name ``import nas`` gives it: nas.load_data("digits")

__all__ = ["AUGMENT_MODES", "DATASETS", "DataError", "Splits", "augment_batch", "load",
           "load_data", "prepare"]
