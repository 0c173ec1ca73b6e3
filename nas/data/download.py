"""What ``download=True`` fetches, and fetching it safely.

One table of torchvision's sources and checksums, one atomic download with an
MD5 check, and one tar extraction that refuses links and paths escaping the
data folder: a downloaded file is untrusted input.  The table is a
module-level dict so tests can point it at local ``file://`` URLs.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from nas.data.errors import DataError
from nas.errors import one_line

log = logging.getLogger(__name__)

#: The four idx files of torchvision's MNIST layout; the download table follows this order.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class _Download:
    """One file to fetch: where from, where to (relative to data_dir), its MD5."""

    url: str
    dest: str
    md5: str | None
    extract: bool = False  # a tarball to unpack into data_dir


def _mnist_downloads(base: str, folder: str, md5s: tuple[str, ...]) -> list[_Download]:
    return [
        _Download(f"{base}{name}.gz", f"{folder}/raw/{name}.gz", md5)
        for name, md5 in zip(MNIST_FILES, md5s, strict=True)
    ]


#: What ``download=True`` fetches (torchvision's sources and checksums).  A
#: module-level table so tests can point it at local ``file://`` URLs.
DOWNLOADS: dict[str, list[_Download]] = {
    "mnist": _mnist_downloads(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "MNIST",
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    "fashion-mnist": _mnist_downloads(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "FashionMNIST",
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
    "cifar10": [
        _Download(
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
            extract=True,
        )
    ],
    "cifar100": [
        _Download(
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            "cifar-100-python.tar.gz",
            "eb9058c3a382ffc7106e4002c42a8d85",
            extract=True,
        )
    ],
}

_DOWNLOAD_TIMEOUT_S = 60.0


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(item: _Download, root: Path) -> Path:
    """Download one file into ``root`` atomically (via ``.part``), checking its MD5."""
    dest = root / item.dest
    if dest.is_file() and (item.md5 is None or _md5(dest) == item.md5):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {dest.parent}: {one_line(exc)}") from None
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s to %s", item.url, dest)
    try:
        with (
            urllib.request.urlopen(item.url, timeout=_DOWNLOAD_TIMEOUT_S) as response,
            part.open("wb") as out,
        ):
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DataError(
            f"download of {item.url} failed: {one_line(str(reason))}; "
            f"fetch it yourself into {dest.parent}"
        ) from None
    if item.md5 is not None and (got := _md5(part)) != item.md5:
        part.unlink(missing_ok=True)
        raise DataError(f"download of {item.url} failed: MD5 is {got}, expected {item.md5}")
    os.replace(part, dest)
    return dest


def _extract(archive: Path, root: Path) -> None:
    """Unpack a tarball into ``root``, refusing links and paths that escape it."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, filter="data")
            else:  # Python < 3.10.12 has no extraction filters: check members ourselves
                base = root.resolve()
                for member in tar.getmembers():
                    target = (base / member.name).resolve()
                    if not (member.isreg() or member.isdir()) or (
                        target != base and base not in target.parents
                    ):
                        raise DataError(f"{archive}: refusing unsafe archive member {member.name}")
                tar.extractall(root)  # noqa: S202 - members checked above
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot unpack {archive}: {one_line(exc)}") from None


def fetch_dataset(name: str, root: Path) -> None:
    """Fetch every file of dataset ``name`` into ``root``, unpacking the tarballs."""
    for item in DOWNLOADS[name]:
        path = fetch(item, root)
        if item.extract:
            _extract(path, root)
