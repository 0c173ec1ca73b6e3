"""How sure the useful depth is: a bootstrap over validation images, no extra forward pass.

The greedy lesion pass of :mod:`nas.depth.lesion` keeps, for the full network and
for every step of its curve, which validation images were classified right. The
useful depth is where that curve first falls more than the tolerance below the
full network; on digits one image is 0.37 pp, so a 1 pp tolerance is under three
images and which images happen to be in the split decides the figure. Resampling
the images with replacement and reading the crossing off the same cached results
again shows how much: the 5th and 95th percentiles of the useful depth over the
resamples are its 90% interval. The greedy order stays the point estimate's (the
interval is of where the curve crosses, not of which order a resample would pick).

The images are split in two first (:func:`split_halves`): one half chooses the blocks
and is resampled here, the other reports what removing them costs.
"""

from __future__ import annotations

import numpy as np

DRAWS = 1000
CHUNK = 100  # resamples at a time: the count matrix is CHUNK x images
LEVEL = 0.90
# Accuracies are fractions k/n; the slack keeps "exactly at the tolerance" inside it.
SLACK = 1e-9


def split_halves(targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic halves of the validation images for a seed: (selection, held-out)
    indices, sorted, disjoint, together every image once.

    Stratified by class, so each half sees the classes in the proportions of the whole:
    every class's images are shuffled with the seed and dealt alternately, the first to
    the selection half. With fewer than two images there is nothing to hold out and
    both halves are all of them.
    """
    targets = np.asarray(targets)
    everything = np.arange(len(targets))
    if len(targets) < 2:
        return everything, everything
    rng = np.random.default_rng(seed)
    selection, held_out = [], []
    start = 0  # where the next class's first image goes, so odd classes alternate
    for label in np.unique(targets):
        members = rng.permutation(everything[targets == label])
        selection.append(members[start::2])
        held_out.append(members[1 - start::2])
        start = (start + len(members)) % 2
    return np.sort(np.concatenate(selection)), np.sort(np.concatenate(held_out))


def first_crossing(full: np.ndarray, curve: np.ndarray, tolerance: float) -> np.ndarray:
    """Per row: how many curve steps stay at or above ``full - tolerance`` before the first
    that does not (all of them when none falls). ``full``: (rows,), ``curve``: (rows, steps)."""
    ok = curve >= (full - tolerance - SLACK)[:, None]
    failed = ~ok
    return np.where(failed.any(axis=1), failed.argmax(axis=1), curve.shape[1])


def useful_interval(full_correct: np.ndarray, curve_correct: np.ndarray,
                    step_layers: list[int], total_blocks: int, total_layers: int,
                    tolerance: float, seed: int = 0, draws: int = DRAWS
                    ) -> tuple[tuple[int, int], tuple[int, int]]:
    """The 90% intervals of the useful blocks and layers.

    ``full_correct``: (images,) 0/1 for the full network; ``curve_correct``: (steps,
    images) for the network after each greedy removal; ``step_layers``: the layers each
    step removes.
    """
    images = full_correct.shape[0]
    if curve_correct.shape[0] == 0:  # nothing can be removed: the depth is certain
        return (total_blocks, total_blocks), (total_layers, total_layers)
    rng = np.random.default_rng(seed)
    full = full_correct.astype(np.float32)
    curve = curve_correct.astype(np.float32).T  # (images, steps)
    removed = []
    for start in range(0, draws, CHUNK):
        rows = min(CHUNK, draws - start)
        counts = rng.multinomial(images, np.full(images, 1.0 / images), size=rows)
        counts = counts.astype(np.float32)
        removed.append(first_crossing(counts @ full / images, counts @ curve / images,
                                      tolerance))
    steps = np.concatenate(removed)
    layers_removed = np.concatenate([[0], np.cumsum(step_layers)])[steps]
    tail = (1.0 - LEVEL) / 2 * 100
    blocks = total_blocks - steps
    layers = total_layers - layers_removed
    return ((int(np.percentile(blocks, tail, method="lower")),
             int(np.percentile(blocks, 100 - tail, method="higher"))),
            (int(np.percentile(layers, tail, method="lower")),
             int(np.percentile(layers, 100 - tail, method="higher"))))
