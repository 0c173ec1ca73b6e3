"""Fashion-MNIST as a user gets it offline: Debian's package folder, the official files'
MD5s, and the seeded, stratified train/val subsets a search on 2 CPU cores trains on."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.data import DataError, load, mnist, prepare
from nas.errors import flag_names
from tests.unit.data.test_data import MNIST_TEST, mnist_arrays, write_idx

DEBIAN = mnist.SYSTEM_FOLDERS["fashion-mnist"]
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_flat(folder: Path, train: tuple[np.ndarray, np.ndarray]) -> Path:
    """The four files gzipped in one flat folder, as Debian's package lays them out."""
    for stem, array in zip(STEMS, (*train, *MNIST_TEST), strict=True):
        write_idx(folder / f"{stem}.gz", array)
    return folder


def indexed(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n images of 10 classes; pixels (0,0) and (0,2) hold the index (low and high byte)."""
    images, labels = mnist_arrays(n, 10, 0)
    images[:, 0, 0], images[:, 0, 2] = np.arange(n) % 256, np.arange(n) // 256
    return images, labels


def ids(x: torch.Tensor) -> set[tuple[float, float]]:
    return set(zip(x[:, 0, 0, 0].tolist(), x[:, 0, 0, 2].tolist(), strict=True))


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for Debian's folder: 400 train images of 10 classes."""
    folder = write_flat(tmp_path / "package", indexed(400))
    monkeypatch.setattr(mnist, "SYSTEM_FOLDERS", {"fashion-mnist": folder})
    return folder


def test_found_in_the_package_folder_when_data_dir_lacks_it(package: Path, tmp_path: Path) -> None:
    s = load("fashion-mnist", data_dir=tmp_path / "empty")
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (360, 40, 12)
    prepare("fashion-mnist", data_dir=tmp_path / "empty")  # no error either


def test_data_dir_comes_before_the_package(package: Path, tmp_path: Path) -> None:
    own = tmp_path / "own"
    write_flat(own / "FashionMNIST" / "raw", mnist_arrays(100, 10, 0))
    assert len(load("fashion-mnist", data_dir=own).train_y) == 90


def test_subsets_are_exact_stratified_disjoint_and_seeded(package: Path) -> None:
    options = {"train_size": 150, "val_size": 50}
    s = load("fashion-mnist", seed=3, options=options)
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (150, 50, 12)
    assert torch.bincount(s.train_y).tolist() == [15] * 10
    assert torch.bincount(s.val_y).tolist() == [5] * 10
    train_ids, val_ids = ids(s.train_x), ids(s.val_x)  # each image's index: parts are disjoint
    assert len(train_ids) == 150 and len(val_ids) == 50 and not train_ids & val_ids
    again = load("fashion-mnist", seed=3, options=options)
    assert torch.equal(s.train_x, again.train_x) and torch.equal(s.val_x, again.val_x)
    other = load("fashion-mnist", seed=4, options=options)
    assert ids(other.val_x) != val_ids
    # one size alone: val keeps its default 10%, train takes what is asked
    assert (len(load("fashion-mnist", options={"train_size": 100}).train_y),
            len(load("fashion-mnist", options={"val_size": 30}).train_y)) == (100, 370)


@pytest.mark.parametrize(("options", "message"), [
    ({"train_size": 390, "val_size": 20},
     "train_size 390 \\+ val_size 20 exceed the 400 images of the official train set"),
    ({"val_size": 5}, "val_size 5 is too small; allowed: at least 10"),
    ({"train_size": 0}, "train_size for fashion-mnist must be at least 1"),
    ({"samples": 10}, "unknown option 'samples' for dataset fashion-mnist; allowed options: "
                      "train_size, val_size"),
])
def test_bad_subsets_are_one_line_before_any_load(
    package: Path, options: dict[str, int], message: str
) -> None:
    for call in (load, prepare):
        with pytest.raises(DataError, match=message) as err:
            call("fashion-mnist", options=options)
        assert "\n" not in str(err.value)


def test_missing_says_how_to_install_it_offline(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "SYSTEM_FOLDERS", {"fashion-mnist": tmp_path / "no-package"})
    with flag_names(), pytest.raises(DataError) as err:
        prepare("fashion-mnist", data_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path / 'no-package' / 'train-images-idx3-ubyte'}[.gz]" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--download" in message and "--data-dir" in message


def test_a_file_of_the_official_size_must_be_the_official_file(package: Path) -> None:
    """60,000 labels that are not Fashion-MNIST's: the MD5 names the file, one line."""
    labels = package / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros(60000, dtype=np.uint8))
    with pytest.raises(DataError, match="differs from the official release") as err:
        load("fashion-mnist")
    assert str(labels) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed "
                    "(make fashion-mnist, or apt-get install dataset-fashion-mnist as root)")
def test_reads_debians_real_files(tmp_path: Path) -> None:
    """The real package: official counts, MD5s checked, ten balanced classes, 28×28."""
    s = load("fashion-mnist", data_dir=tmp_path, seed=0,
             options={"train_size": 2000, "val_size": 1000})
    assert s.image_size == 28 and s.in_channels == 1 and s.num_classes == 10
    assert torch.bincount(s.train_y).tolist() == [200] * 10
    assert torch.bincount(s.val_y).tolist() == [100] * 10
    assert torch.bincount(s.test_y).tolist() == [1000] * 10  # the whole official test set
    # the package's own layout copied into torchvision's is read the same
    raw = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(DEBIAN, raw)
    assert torch.equal(load("fashion-mnist", data_dir=tmp_path, seed=0,
                            options={"train_size": 2000, "val_size": 1000}).val_x, s.val_x)
