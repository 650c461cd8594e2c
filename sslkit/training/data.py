"""Data: where it lives, how it is read, and how it becomes device tensors.

The data root is chosen as: the explicit ``data_root`` argument, else the environment
variable ``SSLKIT_DATA``, else ``../shared/data`` beside the repository, else
``~/.cache/sslkit/data`` (see :mod:`sslkit.util.settings`). Inside the root these layouts are
recognised:

    MNIST/raw/*-ubyte                      torchvision's MNIST layout (byte-exact files)
    cifar-10-batches-py/                   torchvision's official CIFAR-10 batches
    cifar10-jpeg/{train,test}/<class>/     an image folder (e.g. ../shared/data)
    cifar10/{train,test}/<class>/          the same, another common name
    imagenette2-224/{train,val}/<wnid>/    the ImageNet stand-in (Imagenette 2), ImageNet's layout
    imagenet/{train,val}/<wnid>/           ILSVRC 2012 (also imagenette2-320/, imagenette2/)

MNIST and CIFAR-10 are decoded once into tensors kept on the training device, so training
never decodes images per epoch; CIFAR-10 image folders are decoded once into uint8 tensors
cached under ``<cache>/decoded/`` (written atomically). ImageNet-layout folders are checked
first (one clear error for a missing split, an empty class folder or a non-image file), then
warped to ``resize`` x ``resize`` as Caffe's ``convert_imageset`` does and cached the same way:
the training split stays uint8 and is cropped, mirrored and mean-subtracted per batch on the
device (:func:`sslkit.training.augment.crop_flip_mean`); the test split is centre-cropped and mean-subtracted once. :func:`load` gives a network's splits
by the data set and normalization its record names.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import torch

from sslkit.util import settings
from sslkit.util.io import atomic_torch_save, load_cached

CIFAR_FOLDERS = ("cifar10-jpeg", "cifar10")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)  # per-channel means of the training set, in [0,1]
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_FOLDERS = ("imagenette2-224", "imagenette2-320", "imagenette2", "imagenet")
IMAGENET_MEAN = (122.7, 116.7, 104.0)  # Caffe's ILSVRC 2012 mean per channel (RGB), pixels in [0, 255]
IMAGENET_SPLITS = {True: "train", False: "val"}
IN_MEMORY_MAX = 200_000  # images of one split decoded into memory (the stand-in has 9,469)


class DataNotFoundError(FileNotFoundError):
    """A data set is in none of the places tried; the message says where and what to do."""


class TensorData(NamedTuple):
    """A whole split as tensors: ``x`` float (N, C, H, W), ``y`` int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def batches(self, indices) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(x[i], y[i])`` for each ``i`` of ``indices`` (index tensors on :attr:`device`, or slices)."""
        for i in indices:
            yield self.x[i], self.y[i]

    def subset(self, n: int | None) -> "TensorData":
        """``n`` samples evenly spaced over the split (all when ``n`` is None or larger than the
        split), so a subset of a class-sorted image folder still holds every class."""
        if n is None or n >= len(self):
            return self
        idx = spaced(len(self), n).to(self.y.device)
        return TensorData(self.x[idx], self.y[idx])


def spaced(total: int, n: int | None) -> torch.Tensor | slice:
    """The indices of ``n`` samples evenly spaced over ``total`` (a slice of all when ``n`` is
    None or not smaller): what :meth:`TensorData.subset` keeps. The loaders cut their uint8
    tensors with it before converting, which gives the same values as converting first."""
    return slice(None) if n is None or n >= total else torch.arange(n) * total // n


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
          device: str | torch.device = "cpu", normalize: str = "scale256", take: int | None = None) -> TensorData:
    """MNIST as tensors on ``device``: x is (N, 1, 28, 28), y the labels.

    Args:
        train: the 60,000-image training split, else the 10,000-image test split.
        data_root: the data root (see :func:`sslkit.util.settings.data_root`).
        download: try torchvision's download when the files are missing (fails offline).
        device: where the tensors live.
        normalize: ``"scale256"``, uint8 pixels / 256 (the scale of Caffe's MNIST examples),
            the only one.
        take: keep this many samples, evenly spaced (see :func:`spaced`; None: all).
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
    keep = spaced(len(ds.targets), take)
    x = ds.data[keep].unsqueeze(1).to(device=device, dtype=torch.float32) / 256.0
    return TensorData(x, ds.targets[keep].to(device=device, dtype=torch.int64))


def _decoded(name: str, source: Path, decode: Callable[[], tuple]) -> tuple:
    """What ``decode()`` returns for the data folder ``source``, kept as ``<cache>/decoded/<name>``
    (a pure function of the data, shared by every run on the machine) and read back while it is
    newer than ``source``. A file lock lets concurrent processes (pytest workers, ``--jobs``)
    decode a folder once."""
    from filelock import FileLock

    cache = settings.cache_dir() / "decoded" / name
    locks = settings.cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(locks / f"decoded-{name}.lock"):
        found = load_cached(cache) if cache.exists() and cache.stat().st_mtime >= source.stat().st_mtime else None
        if found is None:
            found = decode()
            atomic_torch_save(found, cache)
    return found


def _decode_samples(samples: list[tuple[Path, int]], read: Callable[[str], torch.Tensor],
                    desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``read(path)`` (a uint8 (3,H,W) image) for each (path, class) of ``samples``, stacked into
    uint8 (N,3,H,W), and the labels."""
    from sslkit.util.progress import bar

    x = None
    for i, (path, _) in enumerate(bar(samples, desc=desc)):
        image = read(str(path))
        x = torch.empty(len(samples), *image.shape, dtype=torch.uint8) if x is None else x
        x[i] = image
    return x, torch.tensor([c for _, c in samples], dtype=torch.int64)


def _split(name: str, source: Path, samples: list[tuple[Path, int]], read: Callable[[str], torch.Tensor],
           desc: str, take: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The uint8 images and labels of ``take`` samples evenly spaced over ``samples`` (None: all):
    the whole split through the decode cache (:func:`_decoded`), a part decoded directly. Each
    image decodes alone, so a part holds the same values as the whole split cut with
    :func:`spaced`; decoding 48 images of the stand-in costs less than reading its cache."""
    keep = spaced(len(samples), take)
    if isinstance(keep, slice):
        return _decoded(name, source, lambda: _decode_samples(samples, read, desc))
    return _decode_samples([samples[i] for i in keep.tolist()], read, desc)


# ---------------------------------------------------------------------------- CIFAR-10
def _read_rgb(path: str) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)


def _cifar_uint8(root: Path, train: bool, download: bool,
                 take: int | None = None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """CIFAR-10 as uint8 (N,3,32,32) and labels, from the first layout found under ``root``;
    ``take`` samples evenly spaced over the split (None: all)."""
    split = "train" if train else "test"
    tried = []
    for name in CIFAR_FOLDERS:
        folder = root / name / split
        tried.append(folder)
        if folder.is_dir():
            from torchvision.datasets import ImageFolder

            samples = ImageFolder(str(folder)).samples   # sorted by class, then file name
            x, y = _split(f"{name}-{split}.pt", folder, samples, _read_rgb, f"decoding {folder.name}", take)
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
    keep = spaced(len(ds.targets), take)
    x = torch.from_numpy(ds.data[keep]).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(ds.targets, dtype=torch.int64)[keep], f"{root / 'cifar-10-batches-py'} (official)"


def _cifar_mean_image(root: Path, download: bool, device: str) -> torch.Tensor:
    """The training split's per-pixel mean image (1, 3, 32, 32) in [0, 255], computed once per
    process and data folder (a folder that changes is read again)."""
    stamp = tuple((root / name).stat().st_mtime_ns if (root / name).exists() else 0
                  for name in (*CIFAR_FOLDERS, "cifar-10-batches-py"))
    return _mean_image(root, download, device, stamp)


@functools.lru_cache(maxsize=2)
def _mean_image(root: Path, download: bool, device: str, _stamp: tuple) -> torch.Tensor:
    return _cifar_uint8(root, True, download)[0].to(device=device, dtype=torch.float32).mean(0, keepdim=True)


def cifar10(train: bool = True, *, data_root: str | os.PathLike | None = None, download: bool = True,
            device: str | torch.device = "cpu", normalize: str = "mean", take: int | None = None) -> TensorData:
    """CIFAR-10 as float tensors on ``device``.

    Args:
        train: training split (50,000) or test split (10,000).
        data_root: the data root (see :func:`sslkit.util.settings.data_root`).
        download: try torchvision's download when no layout is found.
        device: where the tensors live.
        normalize: ``"mean_image"`` subtracts the training split's per-pixel mean image from
            pixels in [0, 255], as Caffe's ``cifar10_full`` does with ``mean.binaryproto``;
            ``"mean"`` subtracts the per-channel training mean instead; ``"std"``
            standardizes per channel (He et al.).
        take: keep this many samples, evenly spaced (see :func:`spaced`; None: all).
    """
    if normalize not in ("mean_image", "mean", "std"):
        raise ValueError(f"normalize must be 'mean_image', 'mean' or 'std', got {normalize!r}")
    root = settings.data_root(data_root)
    x, y, _ = _cifar_uint8(root, train, download, take)
    x = x.to(device=device, dtype=torch.float32)
    if normalize == "mean_image":
        return TensorData(x - _cifar_mean_image(root, download, str(device)), y.to(device))
    x = x / 255.0
    mean = torch.tensor(CIFAR_MEAN, device=device).view(1, 3, 1, 1)
    if normalize == "mean":
        x = (x - mean) * 255.0
    else:
        x = (x - mean) / torch.tensor(CIFAR_STD, device=device).view(1, 3, 1, 1)
    return TensorData(x, y.to(device))


# ---------------------------------------------------------------------------- ImageNet layout
class DataFolderError(ValueError):
    """An ImageNet-layout folder is malformed; the message names the file or folder."""


def crop_size(resize: int) -> int:
    """AlexNet's crop for images warped to ``resize``: 227 of 256, the same ratio otherwise."""
    return round(resize * 227 / 256)


def imagenet_folder(root: Path) -> Path:
    """The first ImageNet-layout folder under ``root`` (:data:`IMAGENET_FOLDERS`).

    Raises:
        DataNotFoundError: none is there (the message lists the places tried).
    """
    tried = [root / name for name in IMAGENET_FOLDERS]
    found = next((p for p in tried if (p / "train").is_dir() or (p / "val").is_dir()), None)
    if found is None:
        raise _not_found("ImageNet (or its stand-in Imagenette)", tried,
                         "imagenette2-224/{train,val}/<wnid>/*.JPEG or imagenet/{train,val}/<wnid>/*.JPEG; "
                         "ImageNet is licensed and never downloaded")
    return found


def check_image_folder(folder: Path, classes: list[str] | None = None) -> list[tuple[Path, int]]:
    """The (file, class index) pairs of one split of an ImageNet-layout folder, after checking
    it: the split exists, has class folders, none empty, only image files (by extension), and
    (given ``classes``) the same classes as the training split.

    Raises:
        DataFolderError: the first problem found, naming its path.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    if not folder.is_dir():
        raise DataFolderError(f"{folder} is missing: an ImageNet-layout folder needs train/ and val/, "
                              "each with one folder of images per class")
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not found:
        raise DataFolderError(f"{folder} has no class folders (expected {folder}/<class>/<image>)")
    if classes is not None and found != classes:
        extra, missing = sorted(set(found) - set(classes)), sorted(set(classes) - set(found))
        raise DataFolderError(f"{folder} has other classes than the training split "
                              f"(only here: {extra[:5]}, missing here: {missing[:5]})")
    samples = []
    for index, name in enumerate(found):
        with os.scandir(folder / name) as it:   # a directory entry knows its type: no stat per file
            files = sorted((e.name, e.is_file()) for e in it if not e.name.startswith("."))
        if not files:
            raise DataFolderError(f"class folder {folder / name} is empty")
        for file, is_file in files:
            f = folder / name / file
            if not is_file or f.suffix.lower() not in IMG_EXTENSIONS:
                raise DataFolderError(f"{f} is not an image file (expected one of {', '.join(IMG_EXTENSIONS)})")
            samples.append((f, index))
    return samples


def _warp(path: str, resize: int):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return torch.from_numpy(np.array(im.convert("RGB").resize((resize, resize), Image.BILINEAR))).permute(2, 0, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFolderError(f"{path} cannot be read as an image ({exc})") from None


class FolderData(torch.utils.data.Dataset):
    """One split of an ImageNet-layout folder read from disk as it is used, for splits too large
    for memory (ILSVRC 2012): :meth:`batches` decodes the requested samples in DataLoader
    worker processes, warped to ``resize`` as :func:`imagenet` does, and gives what the in-memory
    split would: uint8 images for :func:`sslkit.training.augment.crop_flip_mean` (training) or centre crops minus the
    mean (test), on ``device``.

    Attributes:
        y: the labels (on ``device``); ``workers``: DataLoader worker processes.
    """

    def __init__(self, samples: list[tuple[Path, int]], resize: int, *, train: bool, workers: int = 8,
                 device: str | torch.device = "cpu"):
        self.paths, self.labels = [str(p) for p, _ in samples], [c for _, c in samples]
        self.y = torch.tensor(self.labels, dtype=torch.int64, device=device)
        self.resize, self.train, self.workers = resize, train, workers

    @property
    def device(self) -> torch.device:
        return self.y.device

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = _warp(self.paths[i], self.resize)
        return (x if self.train else _centre_crop(x)), self.labels[i]

    def subset(self, n: int | None) -> "FolderData":
        """``n`` samples evenly spaced over the split (all when None or larger): those of :func:`spaced`."""
        if n is None or n >= len(self):
            return self
        out = FolderData([], self.resize, train=self.train, workers=self.workers, device=self.device)
        idx = spaced(len(self), n).tolist()
        out.paths, out.labels, out.y = [self.paths[i] for i in idx], [self.labels[i] for i in idx], self.y[idx]
        return out

    def batches(self, indices) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(x, y)`` on :attr:`device` for each index tensor (or slice) of ``indices``, decoded
        ahead by the workers in order."""
        lists = ([*range(*i.indices(len(self)))] if isinstance(i, slice) else i.tolist() for i in indices)
        cuda = self.device.type == "cuda"
        loader = torch.utils.data.DataLoader(self, batch_sampler=lists, num_workers=self.workers, pin_memory=cuda)
        for x, y in loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield (x if self.train else _subtract_mean(x)), y


def imagenet(train: bool = True, *, data_root: str | os.PathLike | None = None, download: bool = False,
             device: str | torch.device = "cpu", normalize: str = "mean", resize: int = 256,
             take: int | None = None) -> TensorData:
    """An ImageNet-layout split (the Imagenette stand-in, or ILSVRC 2012 when it fits in memory)
    as tensors on ``device``, AlexNet's way: every image warped to ``resize`` x ``resize``.

    Args:
        train: the ``train/`` split, kept as uint8 (N,3,R,R) for :func:`sslkit.training.augment.crop_flip_mean` to crop
            per batch; else ``val/``, centre-cropped to :func:`crop_size` and mean-subtracted
            (float).
        data_root: the data root (see :func:`sslkit.util.settings.data_root`).
        download: ignored (ImageNet is licensed; it is never downloaded).
        device: where the tensors live.
        normalize: ``"mean"``, Caffe's per-channel ILSVRC mean subtracted from [0, 255] pixels.
        resize: the warped size (256 as AlexNet; smaller for a cheaper CPU schedule).
        take: keep this many samples, evenly spaced (see :func:`spaced`; None: all).
    Raises:
        DataNotFoundError: no ImageNet-layout folder. DataFolderError: a malformed one.
    """
    if normalize != "mean":
        raise ValueError(f"ImageNet's normalize must be 'mean', got {normalize!r}")
    folder = imagenet_folder(settings.data_root(data_root))
    split = folder / IMAGENET_SPLITS[train]
    classes = None if train else sorted(d.name for d in (folder / "train").iterdir() if d.is_dir())
    samples = check_image_folder(split, classes)
    if len(samples) > IN_MEMORY_MAX:        # ILSVRC 2012: read from disk as training goes
        return FolderData(samples, resize, train=train, device=device).subset(take)
    x, y = _split(f"{folder.name}-{split.name}-{resize}.pt", split, samples, functools.partial(_warp, resize=resize),
                  f"decoding {folder.name}/{split.name}", take)
    x, y = x.to(device), y.to(device)
    return TensorData(x, y) if train else TensorData(_subtract_mean(_centre_crop(x)), y)


def _centre_crop(x: torch.Tensor) -> torch.Tensor:
    """The centre :func:`crop_size` window of images (..., C, R, R) warped to R x R."""
    r = x.shape[-1]
    c = crop_size(r)
    top = (r - c) // 2
    return x[..., top:top + c, top:top + c]


def _subtract_mean(x: torch.Tensor) -> torch.Tensor:
    return x.float() - torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)


LOADERS = {"mnist": mnist, "cifar10": cifar10, "imagenet": imagenet}


def load(dataset: str, normalize: str, *, train: int | None = None, test: int | None = None,
         data_root: str | os.PathLike | None = None, device: str | torch.device = "cpu",
         resize: int | None = None) -> Splits:
    """Both splits of ``dataset`` (``mnist``, ``cifar10`` or ``imagenet``) on ``device``,
    normalized as ``normalize`` (see each loader), cut to ``train`` / ``test`` samples evenly
    spaced over each split (None: all); ``resize``: ImageNet's warped size (None: 256).

    Raises:
        ValueError: an unknown data set. DataNotFoundError: the data is missing.
        DataFolderError: an ImageNet-layout folder is malformed.
    """
    if dataset not in LOADERS:
        raise ValueError(f"no loader for data set {dataset!r}; there are {sorted(LOADERS)}")
    extra = {"resize": resize} if dataset == "imagenet" and resize else {}
    tr, te = (LOADERS[dataset](split, data_root=data_root, device=device, normalize=normalize, take=n, **extra)
              for split, n in ((True, train), (False, test)))
    sizes = f"{len(tr)} train / {len(te)} test images"
    where = describe(dataset, data_root)
    if extra:
        sizes += f", warped to {resize}x{resize}, {crop_size(resize)}x{crop_size(resize)} crops"
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
    if dataset == "imagenet":
        folder = imagenet_folder(root)
        if folder.name.startswith("imagenette"):
            return (f"Imagenette 2 from {folder} (the ImageNet stand-in: 10 ImageNet classes; "
                    "errors not comparable with ImageNet's)")
        return f"ImageNet from {folder}"
    return f"{dataset} from {root}"
