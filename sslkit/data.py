"""Data: where it lives, how it is read, and how it becomes device tensors.

The data root is chosen as: the explicit ``data_root`` argument, else the environment
variable ``SSLKIT_DATA``, else ``../shared/data`` beside the repository, else
``~/.cache/sslkit/data`` (see :mod:`sslkit.settings`). Inside the root these layouts are
recognised:

    MNIST/raw/*-ubyte                      torchvision's MNIST layout (byte-exact files)
    cifar-10-batches-py/                   torchvision's official CIFAR-10 batches
    cifar10-jpeg/{train,test}/<class>/     an image folder (e.g. ../shared/data)
    cifar10/{train,test}/<class>/          the same, another common name

MNIST and CIFAR-10 are decoded once into tensors kept on the training device, so training
never decodes images per epoch; CIFAR-10 image folders are decoded once into uint8 tensors
cached under ``<cache>/decoded/`` (written atomically). :func:`load` gives a network's splits
by the data set and normalization its record names.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import torch

from .io import atomic_torch_save, load_cached
from . import settings

CIFAR_FOLDERS = ("cifar10-jpeg", "cifar10")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel means of the training set, in [0,1]
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class DataNotFoundError(FileNotFoundError):
    """A data set is in none of the places tried; the message says where and what to do."""


class TensorData(NamedTuple):
    """A whole split as tensors: ``x`` float (N, C, H, W), ``y`` int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int | None) -> "TensorData":
        """``n`` samples evenly spaced over the split (all when ``n`` is None or larger than the
        split), so a subset of a class-sorted image folder still holds every class."""
        if n is None or n >= len(self):
            return self
        idx = (torch.arange(n) * len(self) // n).to(self.y.device)
        return TensorData(self.x[idx], self.y[idx])


class Splits(NamedTuple):
    """A network's training and test tensors, one line naming the data actually used (with
    its path, for people) and one naming what it is (without, for cache keys that hold on any
    machine)."""

    train: TensorData
    test: TensorData
    description: str
    identity: str = ""


def _not_found(name: str, tried: list[Path], hint: str) -> DataNotFoundError:
    places = ", ".join(str(p) for p in tried)
    return DataNotFoundError(
        f"{name} not found in {places}: pass data_root=... (notebooks: the `data_root` parameter; "
        f"make: DATA=...) or set {settings.DATA_ENV}=<folder>, the folder holding {hint}; "
        f"when online it is downloaded into the data root"
    )


def _download(fn, root: Path) -> None:
    """Run a torchvision download into a temporary folder and move it into ``root`` only when
    complete, so a failed download never leaves partial files behind."""
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            fn(tmp)
            for item in Path(tmp).iterdir():
                target = root / item.name
                if not target.exists():
                    shutil.move(str(item), target)
    except BaseException:
        if created and not any(root.iterdir()):
            root.rmdir()
        raise


# ---------------------------------------------------------------------------- MNIST
def mnist(train: bool = True, *, data_root: str | os.PathLike | None = None, download: bool = True,
          device: str | torch.device = "cpu", normalize: str = "scale256") -> TensorData:
    """MNIST as tensors on ``device``: x is (N, 1, 28, 28), y the labels.

    Args:
        train: the 60,000-image training split, else the 10,000-image test split.
        data_root: the data root (see :func:`sslkit.settings.data_root`).
        download: try torchvision's download when the files are missing (fails offline).
        device: where the tensors live.
        normalize: ``"scale256"``, uint8 pixels / 256 (the scale of Caffe's MNIST examples),
            the only one.
    Raises:
        DataNotFoundError: the files are missing and could not be downloaded.
    """
    from torchvision.datasets import MNIST

    if normalize != "scale256":
        raise ValueError(f"MNIST's normalize must be 'scale256', got {normalize!r}")

    root = settings.data_root(data_root)
    try:
        ds = MNIST(str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise _not_found("MNIST", [root / "MNIST" / "raw"], "MNIST/raw/*-ubyte") from None
        try:
            _download(lambda tmp: MNIST(tmp, train=train, download=True), root)
            ds = MNIST(str(root), train=train, download=False)
        except Exception as exc:  # network errors come in many types
            raise _not_found("MNIST", [root / "MNIST" / "raw"],
                             f"MNIST/raw/*-ubyte (download failed: {type(exc).__name__})") from None
    x = ds.data.unsqueeze(1).to(device=device, dtype=torch.float32) / 256.0
    return TensorData(x, ds.targets.to(device=device, dtype=torch.int64))


# ---------------------------------------------------------------------------- CIFAR-10
def _decode_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode an image folder (class subfolders, sorted) into uint8 (N,3,H,W) and labels."""
    import numpy as np
    from PIL import Image
    from torchvision.datasets import ImageFolder
    from .progress import bar

    ds = ImageFolder(str(folder))
    images = [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
              for p, _ in bar(ds.samples, desc=f"decoding {folder.name}")]
    return torch.stack(images), torch.tensor(ds.targets, dtype=torch.int64)


def _cifar_uint8(root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    """CIFAR-10 as uint8 (N,3,32,32) and labels, from the first layout found under ``root``."""
    split = "train" if train else "test"
    tried = []
    for name in CIFAR_FOLDERS:
        folder = root / name / split
        tried.append(folder)
        if folder.is_dir():
            cache = settings.cache_dir() / "decoded" / f"{name}-{split}.pt"
            decoded = None
            if cache.exists() and cache.stat().st_mtime >= folder.stat().st_mtime:
                decoded = load_cached(cache)
            if decoded is not None:
                x, y = decoded
            else:
                x, y = _decode_folder(folder)
                atomic_torch_save((x, y), cache)
            return x, y, f"{folder} (image folder)"
    from torchvision.datasets import CIFAR10

    tried.append(root / "cifar-10-batches-py")
    try:
        ds = CIFAR10(str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise _not_found("CIFAR-10", tried, "cifar10-jpeg/{train,test}/<class>/*.jpg "
                             "or cifar-10-batches-py/") from None
        try:
            _download(lambda tmp: CIFAR10(tmp, train=train, download=True), root)
            ds = CIFAR10(str(root), train=train, download=False)
        except Exception as exc:
            raise _not_found("CIFAR-10", tried, "cifar10-jpeg/{train,test}/<class>/*.jpg or "
                             f"cifar-10-batches-py/ (download failed: {type(exc).__name__})") from None
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(ds.targets, dtype=torch.int64), f"{root / 'cifar-10-batches-py'} (official)"


def cifar10(train: bool = True, *, data_root: str | os.PathLike | None = None, download: bool = True,
            device: str | torch.device = "cpu", normalize: str = "mean") -> TensorData:
    """CIFAR-10 as float tensors on ``device``.

    Args:
        train: training split (50,000) or test split (10,000).
        data_root: the data root (see :func:`sslkit.settings.data_root`).
        download: try torchvision's download when no layout is found.
        device: where the tensors live.
        normalize: ``"mean_image"`` subtracts the training split's per-pixel mean image from
            pixels in [0, 255], as Caffe's ``cifar10_full`` does with ``mean.binaryproto``;
            ``"mean"`` subtracts the per-channel training mean instead; ``"std"``
            standardizes per channel (He et al.).
    """
    if normalize not in ("mean_image", "mean", "std"):
        raise ValueError(f"normalize must be 'mean_image', 'mean' or 'std', got {normalize!r}")
    root = settings.data_root(data_root)
    x, y, _ = _cifar_uint8(root, train, download)
    x = x.to(device=device, dtype=torch.float32)
    if normalize == "mean_image":
        train_x = x if train else _cifar_uint8(root, True, download)[0].to(device)
        return TensorData(x - train_x.float().mean(0, keepdim=True), y.to(device))
    x = x / 255.0
    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
    if normalize == "mean":
        x = (x - mean) * 255.0
    else:
        x = (x - mean) / torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
    return TensorData(x, y.to(device))


LOADERS = {"mnist": mnist, "cifar10": cifar10}


def load(dataset: str, normalize: str, *, train: int | None = None, test: int | None = None,
         data_root: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Splits:
    """Both splits of ``dataset`` (``mnist`` or ``cifar10``) on ``device``, normalized as
    ``normalize`` (see each loader), cut to ``train`` / ``test`` samples evenly spaced over each
    split (None: all).

    Raises:
        ValueError: an unknown data set. DataNotFoundError: the data is missing.
    """
    if dataset not in LOADERS:
        raise ValueError(f"no loader for data set {dataset!r}; there are {sorted(LOADERS)}")
    tr, te = (LOADERS[dataset](split, data_root=data_root, device=device, normalize=normalize)
              for split in (True, False))
    tr, te = tr.subset(train), te.subset(test)
    sizes = f"{len(tr)} train / {len(te)} test images"
    where = describe(dataset, data_root)
    anywhere = where.replace(str(settings.data_root(data_root)), "<data root>")
    return Splits(tr, te, f"{where}; {sizes}", f"{anywhere}; normalize {normalize}; {sizes}")


def describe(dataset: str, data_root: str | os.PathLike | None = None) -> str:
    """One line naming the data actually used (for a notebook's provenance)."""
    root = settings.data_root(data_root)
    if dataset == "mnist":
        return f"MNIST from {root / 'MNIST' / 'raw'}"
    if dataset == "cifar10":
        for name in CIFAR_FOLDERS:
            if (root / name).is_dir():
                return f"CIFAR-10 from {root / name} (image folder; JPEG copies differ slightly from the official files)"
        return f"CIFAR-10 from {root / 'cifar-10-batches-py'}"
    return f"{dataset} from {root}"


# ---------------------------------------------------------------------------- batching and augmentation
def pad_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """He et al.'s CIFAR augmentation on a batch tensor: zero-pad by ``pad``, take a random
    crop of the original size and flip horizontally with probability 1/2, per sample. The
    random draws come from ``generator`` on its own device (on the batch's device, no host
    synchronization)."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dev, gen_dev = x.device, generator.device
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gen_dev).to(dev)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gen_dev).to(dev)
    flip = (torch.rand(b, generator=generator, device=gen_dev) < 0.5).to(dev)
    rows = oy[:, None] + torch.arange(h, device=dev)                      # (b, h)
    cols = torch.arange(w, device=dev).expand(b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + ox[:, None]   # (b, w)
    bi = torch.arange(b, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (b, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()
