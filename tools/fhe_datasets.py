"""Reading MNIST-style idx files (plain or gzipped) and locating the datasets.

Pure numpy so that tools without torch can use it too. The files are untrusted input:
the header is checked against the bytes actually present before anything is reshaped.

Dataset locations:
  MNIST    $FHETENSOR_DATA/mnist, else ../shared/data/mnist beside the repository.
  Fashion  $FHETENSOR_DATA/fashion-mnist if it exists, else the Debian package
           dataset-fashion-mnist (/usr/share/...).
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

# Type codes of the idx format; MNIST only uses unsigned bytes.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# Guards against absurd headers before allocating: the largest real file is 47 MB.
MAX_IDX_ELEMENTS = 1 << 30

# Where the Debian package dataset-fashion-mnist puts its idx files.
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as f:
        is_gzip = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if is_gzip else open(path, "rb")


def read_idx(path, limit: int | None = None) -> np.ndarray:
    """Returns the array stored in an idx file; `limit` keeps only the first items."""
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as error:  # a cut or damaged gzip stream
        raise ValueError(f"{path}: cannot read ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an idx file (bad magic)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise ValueError(f"{path}: unsupported idx type 0x{type_code:02x} or {ndim} dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"{path}: truncated idx header")
    dims = list(struct.unpack(f">{ndim}I", data[4:header_size]))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    count = int(np.prod(dims, dtype=np.uint64))
    if count > MAX_IDX_ELEMENTS:
        raise ValueError(f"{path}: idx dimensions {dims} exceed the size limit")
    if len(data) - header_size < count * dtype.itemsize:
        raise ValueError(f"{path}: truncated idx data ({len(data) - header_size} bytes, "
                         f"header {dims} needs {count * dtype.itemsize})")
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_size).reshape(dims)
    if limit is not None:
        array = array[:limit]
    return array.astype(dtype.newbyteorder("="), copy=True)


def data_root() -> Path | None:
    env = os.environ.get("FHETENSOR_DATA")
    if env:
        return Path(env)
    beside = REPO_ROOT.parent / "shared" / "data"
    return beside if beside.is_dir() else None


def _find_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _fashion_dir() -> Path | None:
    root = data_root()
    candidates = ([root / "fashion-mnist"] if root else []) + [FASHION_DEBIAN_DIR]
    for d in candidates:
        if _find_file(d, "t10k-labels-idx1-ubyte"):
            return d
    return None


def dataset_dir(dataset: str, override: str | None = None) -> Path:
    """Directory of the idx files of 'mnist' or 'fashion'; `override` wins when given."""
    if override:
        return Path(override)
    if dataset == "mnist":
        root = data_root()
        if root and _find_file(root / "mnist", "t10k-labels-idx1-ubyte"):
            return root / "mnist"
    elif dataset == "fashion":
        d = _fashion_dir()
        if d:
            return d
    else:
        raise ValueError(f"unknown dataset {dataset!r} (mnist or fashion)")
    raise FileNotFoundError(f"{dataset}: idx files not found; pass a directory or set FHETENSOR_DATA"
                            + (" or install dataset-fashion-mnist" if dataset == "fashion" else ""))


def load_split(dataset: str, split: str, directory: str | None = None, limit: int | None = None):
    """(images uint8 [N,28,28], labels uint8 [N]) of split 'train' or 't10k'."""
    d = dataset_dir(dataset, directory)
    images_path = _find_file(d, f"{split}-images-idx3-ubyte")
    labels_path = _find_file(d, f"{split}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        raise FileNotFoundError(f"{d}: missing {split} idx files")
    images, labels = read_idx(images_path, limit), read_idx(labels_path, limit)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{d}: {split} images {images.shape} and labels {labels.shape} disagree")
    return images, labels
