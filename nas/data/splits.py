"""The Splits every dataset becomes, and how one is cut and normalised.

Kept apart from the readers so every format splits the same way: stratified
by class, deterministic for a seed, and normalised with statistics of the
train split only, so nothing about val or test leaks into training.  The test
split is never used for selection (the search only reads val).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from nas.data.errors import DataError

#: Train/val/test fractions where we make all three splits ourselves.
_THREE_WAY = (0.70, 0.15, 0.15)
#: Where the dataset ships an official test set, val is this share of its train set.
_VAL_OF_TRAIN = 0.10


@dataclass
class Splits:
    """Whole train/val/test splits as tensors, ready to index into batches.

    Images are float32 ``N×C×H×W`` normalised with the train split's
    per-channel mean and std; labels are int64 in ``[0, num_classes)``.
    ``augment`` names the :func:`augment_batch` mode that suits the dataset.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    augment: str

    @property
    def in_channels(self) -> int:
        """Channels of every image (the first conv layer's input width)."""
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        """Height (= width) of every image."""
        return int(self.train_x.shape[2])

    def to(self, device: torch.device | str) -> Splits:
        """A new :class:`Splits` with every tensor on ``device`` (self is unchanged)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)


def seed_int(seed: int) -> int:
    """Any Python int as a non-negative seed numpy and torch both accept."""
    return int(seed) % (2**63)


def _class_counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    """How many of a class's ``n`` items go to each split; the first split takes the rest.

    Rounded per class; a class big enough gets at least one item in every
    split with a non-zero fraction, and the first (train) split always keeps
    at least one.
    """
    rest = [round(n * f) for f in fractions[1:]]
    wanted = sum(1 for f in fractions[1:] if f > 0)
    if n > wanted:
        rest = [max(k, 1) if f > 0 else k for k, f in zip(rest, fractions[1:], strict=True)]
    while rest and sum(rest) > max(n - 1, 0):
        rest[rest.index(max(rest))] -= 1
    return [n - sum(rest), *rest]


def _stratified_indices(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into disjoint, shuffled parts, class by class.

    Each class is shuffled with the seed and cut by ``fractions``, so every
    split has (about) the same class balance and the same seed always gives
    the same parts.
    """
    rng = np.random.default_rng(seed_int(seed))
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for part, count in zip(parts, _class_counts(len(idx), fractions), strict=True):
            part.append(idx[start : start + count])
            start += count
    return [rng.permutation(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def _normalise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every split by the train split's per-channel mean and std."""
    std, mean = torch.std_mean(train, dim=(0, 2, 3), keepdim=True, correction=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # a constant channel stays put
    return [((t - mean) / std).contiguous() for t in (train, *others)]


def _make_splits(
    name: str,
    x: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    y: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    num_classes: int,
    augment: str,
) -> Splits:
    train_x, val_x, test_x = _normalise(*(t.float() for t in x))
    train_y, val_y, test_y = (t.long().contiguous() for t in y)
    return Splits(name, train_x, train_y, val_x, val_y, test_x, test_y, num_classes, augment)


def split_three_way(
    name: str, x: torch.Tensor, y: torch.Tensor, num_classes: int, augment: str, seed: int
) -> Splits:
    """Stratified 70/15/15 train/val/test split of one pool of images."""
    parts = [torch.from_numpy(p) for p in _stratified_indices(y.numpy(), _THREE_WAY, seed)]
    return _make_splits(
        name, tuple(x[p] for p in parts), tuple(y[p] for p in parts), num_classes, augment
    )


def subset_sizes(name: str, available: int, train_size: int | None,
                 val_size: int | None, num_classes: int) -> tuple[int, int]:
    """The (train, val) image counts to carve from ``available`` official train images.

    Unset, val is ``_VAL_OF_TRAIN`` of the set and train the rest; set, each is
    exact, so a search on 2 CPU cores can train on a few thousand images while
    val stays large enough to rank candidates.  Each must hold every class.
    """
    val = round(available * _VAL_OF_TRAIN) if val_size is None else val_size
    train = available - val if train_size is None else train_size
    for option, count in (("val_size", val), ("train_size", train)):
        if count < num_classes:
            raise DataError(f"{name}: {option} {count} is too small; allowed: at least "
                            f"{num_classes} (one image of each class)")
    if train + val > available:
        raise DataError(f"{name}: train_size {train} + val_size {val} exceed the {available:,} "
                        f"images of the official train set; allowed: a sum up to {available}")
    return train, val


def split_official(
    name: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    augment: str,
    seed: int,
    train_size: int | None = None,
    val_size: int | None = None,
) -> Splits:
    """Official test set as test; train and val are stratified parts of the official train set.

    ``train_size``/``val_size`` take seeded, stratified subsets (the same seed gives the
    same images); the test set is always the whole official one.
    """
    x, y = train
    if train_size is None and val_size is None:  # the whole set, cut as it always was
        tr, va = (
            torch.from_numpy(p)
            for p in _stratified_indices(y.numpy(), (1 - _VAL_OF_TRAIN, _VAL_OF_TRAIN), seed)
        )
    else:
        counts = subset_sizes(name, len(y), train_size, val_size, num_classes)
        tr, va = (torch.from_numpy(p) for p in _stratified_exact(y.numpy(), counts, seed))
    return _make_splits(
        name, (x[tr], x[va], test[0]), (y[tr], y[va], test[1]), num_classes, augment
    )


def _stratified_exact(labels: np.ndarray, sizes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Disjoint, shuffled parts of exactly ``sizes`` items, each with the set's class balance.

    Each part's per-class quota is its size times the class's share, rounded by largest
    remainder so the quotas sum to the size exactly; each class is shuffled with the seed
    and cut into its quotas.
    """
    rng = np.random.default_rng(seed_int(seed))
    classes, class_counts = np.unique(labels, return_counts=True)
    share = class_counts / class_counts.sum()
    quotas = []
    for size in sizes:
        ideal = size * share
        quota = np.floor(ideal).astype(np.int64)
        quota[np.argsort(quota - ideal)[: size - int(quota.sum())]] += 1
        quotas.append(quota)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for k, cls in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for part, quota in zip(parts, quotas, strict=True):
            part.append(idx[start:start + quota[k]])
            start += quota[k]
    return [rng.permutation(np.concatenate(p)) for p in parts]
