"""The two datasets that need no files: scikit-learn's digits and synthetic images.

They let a search, a test or a benchmark run anywhere, offline and in
seconds: digits is real data small enough for CPU runs, synthetic is any
shape or size for throughput and device checks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nas.data.splits import Splits, seed_int, split_three_way


def load_digits(seed: int) -> Splits:
    """scikit-learn's 1,797 real 8×8 digits, scaled to [0, 1] and upsampled to 16×16.

    Bundled with scikit-learn, so it needs no download, yet deep plain nets
    already fail on it where residual ones do not.
    """
    pixels, targets = _digits_table()
    images = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    images = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
    labels = torch.as_tensor(targets, dtype=torch.int64)
    return split_three_way("digits", images, labels, 10, "crop", seed)


def _digits_table() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``digits.csv.gz`` (64 pixel columns, then the label), read directly.

    ``sklearn.datasets.load_digits`` reads the same file, but importing
    ``sklearn.datasets`` (SciPy with it) takes over a second, paid by every search
    worker and every ``nas train``; finding the installed package does not import it.
    """
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("digits needs scikit-learn: pip install scikit-learn")
    with gzip.open(Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz", "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_synthetic(
    seed: int, *, channels: int, image_size: int, classes: int, samples: int
) -> Splits:
    """Class prototypes (smooth random images) plus per-sample noise.

    Any shape or size, no files, learnable by a network: meant for
    throughput benchmarks and device checks, not for accuracy claims.
    """
    gen = torch.Generator().manual_seed(seed_int(seed))
    low = max(2, image_size // 4)
    protos = torch.randn(classes, channels, low, low, generator=gen)
    protos = F.interpolate(
        protos, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    protos = protos / protos.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    labels = (torch.arange(samples) % classes)[torch.randperm(samples, generator=gen)]
    images = protos[labels] + torch.randn(samples, channels, image_size, image_size, generator=gen)
    augment = "crop-flip" if channels == 3 else "crop"
    return split_three_way("synthetic", images, labels, classes, augment, seed)
