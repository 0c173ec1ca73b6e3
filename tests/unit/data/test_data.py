"""Tests for nas.data: real files in the real formats, written small into tmp_path."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas.data import DATASETS, DataError, Splits, augment_batch, download, load, mnist, splits
from nas.errors import NasError, flag_names

# --------------------------------------------------------------------------- helpers


def split_tensors(s: Splits) -> list[torch.Tensor]:
    return [s.train_x, s.train_y, s.val_x, s.val_y, s.test_x, s.test_y]


def assert_same(a: Splits, b: Splits) -> None:
    for x, y in zip(split_tensors(a), split_tensors(b), strict=True):
        assert torch.equal(x, y)


def row_keys(x: torch.Tensor) -> list[bytes]:
    return [row.numpy().tobytes() for row in x.flatten(1)]


def assert_normalised(s: Splits) -> None:
    std, mean = torch.std_mean(s.train_x, dim=(0, 2, 3), correction=0)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-4)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-3)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file of unsigned bytes, gzip-compressed when the name ends in .gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def mnist_arrays(n: int, classes: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose pixels encode their label (everywhere) and their index (pixel 0,0)."""
    labels = (np.arange(n) % classes).astype(np.uint8)
    images = np.repeat((10 * labels + 5)[:, None, None], 28, axis=1).repeat(28, axis=2)
    images[:, 0, 0] = offset + np.arange(n)
    return images, labels


MNIST_TRAIN = mnist_arrays(80, 4, 100)
MNIST_TEST = mnist_arrays(12, 4, 200)


def write_mnist(root: Path, folder: str, gz: set[str]) -> Path:
    raw = root / folder / "raw"
    arrays = {
        "train-images-idx3-ubyte": MNIST_TRAIN[0],
        "train-labels-idx1-ubyte": MNIST_TRAIN[1],
        "t10k-images-idx3-ubyte": MNIST_TEST[0],
        "t10k-labels-idx1-ubyte": MNIST_TEST[1],
    }
    for stem, array in arrays.items():
        write_idx(raw / (stem + (".gz" if stem in gz else "")), array)
    return raw


def cifar_batch(n: int, start: int, label_key: bytes, classes: int) -> dict[bytes, object]:
    """A batch in CIFAR's format: channel 0 encodes the index, 1 the label, 2 is constant."""
    labels = [(start + i) % classes for i in range(n)]
    images = np.zeros((n, 3, 32, 32), dtype=np.uint8)
    images[:, 0] = (np.arange(start, start + n) % 256)[:, None, None]
    images[:, 1] = (np.array(labels) * 20 % 256)[:, None, None]
    images[:, 2] = 7
    return {
        b"batch_label": b"training batch",
        label_key: labels,
        b"data": images.reshape(n, 3072),
        b"filenames": [f"img_{start + i}.png".encode() for i in range(n)],
    }


def write_pickle(path: Path, obj: object, protocol: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))


def write_cifar10(root: Path, per_batch: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    for i in range(5):
        batch = cifar_batch(per_batch, i * per_batch, b"labels", 10)
        write_pickle(folder / f"data_batch_{i + 1}", batch, protocol=2)
    write_pickle(folder / "test_batch", cifar_batch(30, 1000, b"labels", 10), protocol=2)
    return folder


def write_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    write_pickle(folder / "train", cifar_batch(300, 0, b"fine_labels", 100), protocol=5)
    write_pickle(folder / "test", cifar_batch(50, 2000, b"fine_labels", 100), protocol=5)
    return folder


def write_png(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path)


def write_imagefolder(root: Path) -> Path:
    colours = {"cat": (0, 0, 0), "dog": (0, 0, 0), "eel": (0, 0, 0)}
    for c, cls in enumerate(colours):
        for i in range(7):
            rgb = [30 + 5 * i] * 3
            rgb[c] = 200 + 5 * i  # the class's own channel is bright
            suffix = [".png", ".PNG", ".jpg"][i % 3]
            if suffix == ".jpg":
                from PIL import Image

                (root / cls).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (9, 9), tuple(rgb)).save(root / cls / f"{i}{suffix}")
            else:
                write_png(root / cls / f"{i}{suffix}", tuple(rgb))
        (root / cls / "notes.txt").write_text("not an image")
    return root


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load("digits", seed=0)


def test_digits_shapes_and_sizes(digits: Splits) -> None:
    assert DATASETS[0] == "digits"
    assert digits.name == "digits"
    assert digits.num_classes == 10
    assert digits.in_channels == 1 and digits.image_size == 16
    assert digits.augment == "crop"
    for x, y in (
        (digits.train_x, digits.train_y),
        (digits.val_x, digits.val_y),
        (digits.test_x, digits.test_y),
    ):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 16, 16) and x.shape[0] == y.shape[0]
    sizes = [len(digits.train_y), len(digits.val_y), len(digits.test_y)]
    assert sum(sizes) == 1797
    assert abs(sizes[1] - 0.15 * 1797) < 10 and abs(sizes[2] - 0.15 * 1797) < 10


def test_digits_stratified_and_normalised(digits: Splits) -> None:
    for y in (digits.train_y, digits.val_y, digits.test_y):
        counts = torch.bincount(y, minlength=10)
        assert (counts > 0).all()
        share = counts.float() / len(y)
        assert share.min() > 0.08 and share.max() < 0.12  # digits classes are ~10% each
    assert_normalised(digits)
    # val and test are scaled with the train statistics, so they are only roughly standard
    assert abs(float(digits.val_x.mean())) < 0.1 and abs(float(digits.val_x.std()) - 1) < 0.1


def test_digits_splits_partition_the_images(digits: Splits) -> None:
    # Normalisation is one affine map for all splits, so equal raw images stay equal:
    # the multiset of images over the three splits must be that of the raw data set.
    from sklearn.datasets import load_digits

    raw = torch.as_tensor(load_digits().images, dtype=torch.float32).unsqueeze(1) / 16.0
    raw = F.interpolate(raw, size=(16, 16), mode="bilinear", align_corners=False)
    raw_shape = sorted(Counter(row_keys(raw)).values())
    got = Counter(row_keys(torch.cat([digits.train_x, digits.val_x, digits.test_x])))
    assert sorted(got.values()) == raw_shape
    train, val, test = (set(row_keys(x)) for x in (digits.train_x, digits.val_x, digits.test_x))
    duplicated = {k for k, v in Counter(row_keys(raw)).items() if v > 1}
    assert len(duplicated) < 10
    overlap = (train & val) | (train & test) | (val & test)
    assert len(overlap) <= len(duplicated)


def test_digits_read_directly_are_scikit_learns_digits() -> None:
    from sklearn.datasets import load_digits

    from nas.data.generated import _digits_table

    bunch = load_digits()
    pixels, targets = _digits_table()
    assert np.array_equal(pixels.reshape(-1, 8, 8), bunch.images)
    assert np.array_equal(targets, bunch.target)


def test_stratified_indices_are_disjoint_and_complete() -> None:
    labels = np.repeat(np.arange(5), [3, 10, 41, 100, 2])
    train, val, test = splits._stratified_indices(labels, (0.7, 0.15, 0.15), seed=3)
    together = np.concatenate([train, val, test])
    assert sorted(together.tolist()) == list(range(len(labels)))
    for cls in (0, 1, 2, 3):  # every class with at least 3 items is in every split
        assert all((labels[p] == cls).any() for p in (train, val, test))
    assert (labels[train] == 4).sum() == 2  # a class too small to split stays in train
    again = splits._stratified_indices(labels, (0.7, 0.15, 0.15), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))


def test_digits_deterministic_per_seed(digits: Splits) -> None:
    assert_same(digits, load("digits", seed=0))
    other = load("digits", seed=1)
    assert not torch.equal(digits.val_y, other.val_y) or not torch.equal(digits.val_x, other.val_x)
    assert set(row_keys(digits.val_x)) != set(row_keys(other.val_x))


def test_splits_to_moves_every_tensor(digits: Splits) -> None:
    moved = digits.to("meta")
    assert all(t.device.type == "meta" for t in split_tensors(moved))
    assert all(t.device.type == "cpu" for t in split_tensors(digits))  # original untouched
    assert moved.num_classes == 10 and moved.augment == "crop" and moved.image_size == 16
    on_cpu = load("digits", device="cpu")
    assert all(t.device.type == "cpu" for t in split_tensors(on_cpu))


def test_bad_device_is_a_data_error() -> None:
    with pytest.raises(DataError, match="device"):
        load("digits", device="no-such-device")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_whole_split_lives_on_cuda() -> None:
    s = load("digits", device="cuda")
    assert all(t.is_cuda for t in split_tensors(s))
    out = augment_batch(s.train_x[:64], "crop-flip", torch.Generator().manual_seed(0))
    assert out.is_cuda and out.shape == s.train_x[:64].shape


# --------------------------------------------------------------------------- synthetic


def test_synthetic_options_and_determinism() -> None:
    opts = {"channels": 1, "image_size": 12, "classes": 4, "samples": 400}
    s = load("synthetic", seed=5, options=opts)
    assert s.in_channels == 1 and s.image_size == 12 and s.num_classes == 4
    assert s.augment == "crop"
    assert len(s.train_y) + len(s.val_y) + len(s.test_y) == 400
    assert len(s.val_y) == len(s.test_y) == 60
    for y in (s.train_y, s.val_y, s.test_y):
        assert torch.bincount(y, minlength=4).min() > 0
    assert_normalised(s)
    assert_same(s, load("synthetic", seed=5, options=opts))
    assert not torch.equal(s.train_x, load("synthetic", seed=6, options=opts).train_x)


def test_synthetic_defaults_and_learnable() -> None:
    s = load("synthetic", options={"samples": 600})
    assert s.in_channels == 3 and s.image_size == 32 and s.num_classes == 10
    assert s.augment == "crop-flip"
    # nearest class mean of the train split classifies val well: the classes carry signal
    means = torch.stack([s.train_x[s.train_y == c].mean(0) for c in range(10)]).flatten(1)
    pred = torch.cdist(s.val_x.flatten(1), means).argmin(1)
    assert (pred == s.val_y).float().mean() > 0.9


def test_synthetic_bad_options() -> None:
    with pytest.raises(DataError, match="'colour'.*channels, classes, image_size, samples"):
        load("synthetic", options={"colour": 3})
    with pytest.raises(DataError, match="classes"):
        load("synthetic", options={"classes": 1})
    for bad in ("big", 2.5, float("nan"), True):
        with pytest.raises(DataError, match="integer"):
            load("synthetic", options={"image_size": bad})
    assert load("synthetic", options={"samples": 30.0, "classes": 2}).num_classes == 2
    with pytest.raises(DataError, match="allowed options: none"):
        load("digits", options={"image_size": 8})


# --------------------------------------------------------------------------- mnist


@pytest.mark.parametrize(
    ("name", "folder", "gz"),
    [
        ("mnist", "MNIST", {"train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"}),
        ("fashion-mnist", "FashionMNIST", set()),
        (
            "fashion-mnist",
            "FashionMNIST",
            {
                "train-images-idx3-ubyte",
                "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte",
            },
        ),
    ],
)
def test_mnist_layout(tmp_path: Path, name: str, folder: str, gz: set[str]) -> None:
    write_mnist(tmp_path, folder, gz)
    s = load(name, data_dir=tmp_path, seed=0)
    assert s.name == name and s.num_classes == 10 and s.augment == "crop"
    assert s.in_channels == 1 and s.image_size == 28
    # official test set, in order; val is 10% of the official train set, stratified
    assert s.test_y.tolist() == MNIST_TEST[1].tolist()
    assert len(s.train_y) == 72 and len(s.val_y) == 8
    assert torch.bincount(s.val_y).tolist() == [2, 2, 2, 2]
    assert_normalised(s)
    # labels travel with their images: pixel (1,1) encodes the label in every split
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y), (s.test_x, s.test_y)):
        code = x[:, 0, 1, 1]
        per_label = []
        for c in range(4):
            assert torch.allclose(code[y == c], code[y == c][0])
            per_label.append(float(code[y == c][0]))
        assert per_label == sorted(per_label) and len(set(per_label)) == 4
    # pixel (0,0) encodes the index: train and val are disjoint and cover the train file
    train_ids = set(s.train_x[:, 0, 0, 0].tolist())
    val_ids = set(s.val_x[:, 0, 0, 0].tolist())
    assert not train_ids & val_ids and len(train_ids | val_ids) == 80
    assert (torch.diff(s.test_x[:, 0, 0, 0]) > 0).all()


def test_mnist_val_split_depends_on_seed(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST", set())
    a, b = load("mnist", data_dir=tmp_path, seed=0), load("mnist", data_dir=tmp_path, seed=0)
    assert_same(a, b)
    c = load("mnist", data_dir=tmp_path, seed=1)
    assert torch.equal(a.test_y, c.test_y)
    assert set(a.val_x[:, 0, 0, 0].tolist()) != set(c.val_x[:, 0, 0, 0].tolist())


def test_mnist_corrupt_files(tmp_path: Path) -> None:
    raw = write_mnist(tmp_path, "MNIST", set())
    images = raw / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(b"\x00\x00\x08\x01" + good[4:])  # wrong number of dimensions
    with pytest.raises(DataError, match="not an idx file") as err:
        load("mnist", data_dir=tmp_path)
    assert "\n" not in str(err.value) and str(images) in str(err.value)
    images.write_bytes(good[:-100])
    with pytest.raises(DataError, match="truncated"):
        load("mnist", data_dir=tmp_path)
    images.unlink()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError, match="cannot read"):
        load("mnist", data_dir=tmp_path)


def test_mnist_label_image_count_mismatch(tmp_path: Path) -> None:
    raw = write_mnist(tmp_path, "MNIST", set())
    write_idx(raw / "train-labels-idx1-ubyte", MNIST_TRAIN[1][:-1])
    with pytest.raises(DataError, match="79 labels"):
        load("mnist", data_dir=tmp_path)


# --------------------------------------------------------------------------- cifar


def test_cifar10_layout(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    s = load("cifar10", data_dir=tmp_path, seed=0)
    assert s.num_classes == 10 and s.augment == "crop-flip"
    assert s.train_x.shape[1:] == (3, 32, 32)
    assert len(s.train_y) + len(s.val_y) == 100 and len(s.val_y) == 10
    assert torch.bincount(s.val_y, minlength=10).tolist() == [1] * 10
    assert s.test_y.tolist() == [(1000 + i) % 10 for i in range(30)]
    # a constant channel is left at zero instead of dividing by a zero std
    assert torch.equal(s.train_x[:, 2], torch.zeros_like(s.train_x[:, 2]))
    std, mean = torch.std_mean(s.train_x[:, :2], dim=(0, 2, 3), correction=0)
    assert torch.allclose(mean, torch.zeros(2), atol=1e-4)
    assert torch.allclose(std, torch.ones(2), atol=1e-3)
    # channel 1 encodes the label, channel 0 the index: labels match, splits are disjoint
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y)):
        for c in range(10):
            assert torch.allclose(x[y == c, 1], x[y == c][0, 1])
    ids = torch.cat([s.train_x[:, 0, 0, 0], s.val_x[:, 0, 0, 0]])
    assert len(set(ids.tolist())) == 100


def test_cifar100_layout(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    s = load("cifar100", data_dir=tmp_path, seed=2)
    assert s.num_classes == 100 and s.augment == "crop-flip" and s.in_channels == 3
    assert len(s.train_y) + len(s.val_y) == 300 and len(s.test_y) == 50
    assert s.test_y.tolist() == [(2000 + i) % 100 for i in range(50)]
    assert int(s.train_y.max()) == 99


class _Payload:
    """Unpickling this would create a folder: proof that the pickle ran code."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.target,))


def test_cifar_refuses_forbidden_globals(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    target = tmp_path / "pwned"
    batch = cifar_batch(20, 0, b"labels", 10)
    batch[b"extra"] = _Payload(str(target))
    write_pickle(folder / "data_batch_3", batch, protocol=2)
    with pytest.raises(DataError, match="refusing to load .*mkdir") as err:
        load("cifar10", data_dir=tmp_path)
    assert not target.exists()
    assert "\n" not in str(err.value)
    assert isinstance(err.value, NasError)


def test_cifar_corrupt_pickle(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    good = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="test_batch"):
        load("cifar10", data_dir=tmp_path)
    write_pickle(
        folder / "test_batch",
        {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},
        protocol=2,
    )
    with pytest.raises(DataError, match="3×32×32"):
        load("cifar10", data_dir=tmp_path)


# --------------------------------------------------------------------------- imagefolder


def test_imagefolder(tmp_path: Path) -> None:
    root = write_imagefolder(tmp_path / "pets")
    s = load("imagefolder", data_dir=root, options={"image_size": 8})
    assert s.num_classes == 3 and s.in_channels == 3 and s.image_size == 8
    assert s.augment == "crop-flip"
    assert len(s.train_y) + len(s.val_y) + len(s.test_y) == 21  # notes.txt is ignored
    for y in (s.train_y, s.val_y, s.test_y):
        assert sorted(set(y.tolist())) == [0, 1, 2]
    # sorted folder names give the label: cat=0 is bright in red, dog=1 green, eel=2 blue
    x = torch.cat([s.train_x, s.val_x, s.test_x])
    y = torch.cat([s.train_y, s.val_y, s.test_y])
    for c in range(3):
        channel_means = x[y == c].mean(dim=(0, 2, 3))
        assert int(channel_means.argmax()) == c
    gray = load("imagefolder", data_dir=root, options={"channels": 1, "image_size": 6})
    assert gray.in_channels == 1 and gray.image_size == 6 and gray.augment == "crop"


def test_imagefolder_errors(tmp_path: Path) -> None:
    root = write_imagefolder(tmp_path / "pets")
    (root / "fox").mkdir()
    (root / "fox" / "readme.md").write_text("no pictures here")
    with pytest.raises(DataError, match="fox.* has no images"):
        load("imagefolder", data_dir=root)
    for f in (root / "fox").iterdir():
        f.unlink()
    (root / "fox" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load("imagefolder", data_dir=root)
    lonely = tmp_path / "lonely"
    write_png(lonely / "only" / "a.png", (1, 2, 3))
    with pytest.raises(DataError, match="at least 2"):
        load("imagefolder", data_dir=lonely)
    with pytest.raises(DataError, match="channels must be 1 or 3"):
        load("imagefolder", data_dir=root, options={"channels": 2})


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "looked_for"),
    [
        ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
        ("fashion-mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py/data_batch_1"),
        ("cifar100", "cifar-100-python/train"),
        ("imagefolder", ""),
    ],
)
def test_missing_dataset_is_one_line(
    tmp_path: Path, name: str, looked_for: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mnist, "SYSTEM_FOLDERS", {"fashion-mnist": tmp_path / "no-package"})
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        load(name, data_dir=root)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{name} not found")
    assert str(root / looked_for) in message
    assert "pass data_dir DIR" in message  # nas.load_data's parameter, for a Python caller
    with flag_names(), pytest.raises(DataError) as err:  # as the command line words it
        load(name, data_dir=root)
    assert "pass --data-dir DIR" in str(err.value)


def test_missing_dataset_default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        DataError, match="looked for data/cifar-10-batches-py/data_batch_1; .*or download to"
    ):
        load("cifar10")
    write_cifar10(tmp_path / "data")
    assert load("cifar10").num_classes == 10


def test_partly_missing_cifar_names_the_missing_file(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4"):
        load("cifar10", data_dir=tmp_path)


def test_unknown_dataset_lists_allowed_names() -> None:
    with pytest.raises(DataError) as err:
        load("imagenet")
    message = str(err.value)
    assert "imagenet" in message and "\n" not in message
    assert all(name in message for name in DATASETS)


# --------------------------------------------------------------------------- download


def _file_url(path: Path) -> str:
    return path.resolve().as_uri()


def test_download_mnist_from_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = write_mnist(tmp_path / "mirror", "MNIST", set(download.MNIST_FILES))
    table = [
        download._Download(
            _file_url(mirror / f"{stem}.gz"),
            f"MNIST/raw/{stem}.gz",
            hashlib.md5((mirror / f"{stem}.gz").read_bytes()).hexdigest(),
        )
        for stem in download.MNIST_FILES
    ]
    monkeypatch.setitem(download.DOWNLOADS, "mnist", table)
    root = tmp_path / "data"
    s = load("mnist", data_dir=root, download=True)
    assert len(s.test_y) == 12
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(
        f"{stem}.gz" for stem in download.MNIST_FILES
    )


def test_download_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = write_mnist(tmp_path / "mirror", "MNIST", set(download.MNIST_FILES))
    table = [
        download._Download(_file_url(mirror / f"{stem}.gz"), f"MNIST/raw/{stem}.gz", "0" * 32)
        for stem in download.MNIST_FILES
    ]
    monkeypatch.setitem(download.DOWNLOADS, "mnist", table)
    with pytest.raises(DataError, match="MD5"):
        load("mnist", data_dir=tmp_path / "data", download=True)
    assert not list((tmp_path / "data" / "MNIST" / "raw").iterdir())  # no partial files left


def test_download_failure_names_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _file_url(tmp_path / "missing-archive.tar.gz")
    monkeypatch.setitem(
        download.DOWNLOADS,
        "cifar10",
        [download._Download(url, "cifar-10-python.tar.gz", None, extract=True)],
    )
    with pytest.raises(DataError) as err:
        load("cifar10", data_dir=tmp_path / "data", download=True)
    message = str(err.value)
    assert "\n" not in message and url in message and "download" in message and "failed" in message


def test_download_and_extract_cifar_tarball(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged = write_cifar10(tmp_path / "stage")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staged, arcname="cifar-10-batches-py")
    monkeypatch.setitem(
        download.DOWNLOADS,
        "cifar10",
        [
            download._Download(
                _file_url(archive),
                "cifar-10-python.tar.gz",
                hashlib.md5(archive.read_bytes()).hexdigest(),
                extract=True,
            )
        ],
    )
    root = tmp_path / "data"
    s = load("cifar10", data_dir=root, download=True)
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert len(s.test_y) == 30


def test_unsafe_tarball_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        payload = b"outside"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    monkeypatch.setitem(
        download.DOWNLOADS,
        "cifar10",
        [download._Download(_file_url(archive), "cifar-10-python.tar.gz", None, extract=True)],
    )
    root = tmp_path / "data"
    with pytest.raises(DataError):
        load("cifar10", data_dir=root, download=True)
    assert not (tmp_path / "escaped.txt").exists()
