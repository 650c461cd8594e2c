"""Data: root resolution, clear errors for missing data, image-folder CIFAR, augmentation."""
import os
import subprocess
import sys

import pytest
import torch
from conftest import REAL_MNIST
from PIL import Image

from sslkit.training import augment as A
from sslkit.training import data as D
from sslkit.util import settings


def test_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SSLKIT_DATA", str(tmp_path / "env"))
    assert settings.data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert settings.data_root() == tmp_path / "env"
    monkeypatch.delenv("SSLKIT_DATA")
    monkeypatch.setattr(settings, "SHARED_DATA_ROOT", tmp_path / "shared")
    assert settings.data_root() == settings.DEFAULT_DATA_ROOT      # no ../shared/data
    (tmp_path / "shared").mkdir()
    assert settings.data_root() == tmp_path / "shared"             # ../shared/data beside the repo


def test_missing_data_is_one_clear_error(tmp_path):
    for loader in (D.mnist, D.cifar10):
        with pytest.raises(D.DataNotFoundError) as info:
            loader(True, data_root=tmp_path / "empty", download=False)
        assert str(tmp_path / "empty") in str(info.value) and "SSLKIT_DATA" in str(info.value)
    assert not (tmp_path / "empty").exists()  # nothing created, no partial files


def test_missing_data_cli_exits_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sslkit", "run", "baseline", "--profile", "smoke", "-p", "model=lenet",
                           "--data-root", str(tmp_path / "nothing"), "--no-progress"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "no_proxy": "*", "https_proxy": "http://127.0.0.1:9"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: MNIST not found") and "Traceback" not in proc.stderr
    assert not (tmp_path / "nothing").exists()


def test_cifar_image_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path / "cache"))
    for split, n in (("train", 3), ("test", 2)):
        for c, cls in enumerate(["airplane", "automobile"]):
            folder = tmp_path / "cifar10-jpeg" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (40 * c + i,) * 3).save(folder / f"{i:04d}.png")
    tr = D.cifar10(True, data_root=tmp_path, normalize="std")
    assert tr.x.shape == (6, 3, 32, 32) and tr.y.tolist() == [0, 0, 0, 1, 1, 1]
    raw = D.cifar10(True, data_root=tmp_path, normalize="mean")  # decoded once, then from the cache
    mean = torch.tensor(D.CIFAR_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(raw.x[3, :, 0, 0], (40 / 255 - mean.flatten()) * 255, atol=1e-4)
    assert list((tmp_path / "cache" / "decoded").glob("*.pt"))
    # Caffe's cifar10_full: the training split's per-pixel mean image, on both splits
    train_mean = torch.tensor([40.0 * c + i for c in range(2) for i in range(3)]).mean()
    image = D.cifar10(True, data_root=tmp_path, normalize="mean_image")
    assert image.x.mean(0).abs().max() < 1e-4
    test = D.cifar10(False, data_root=tmp_path, normalize="mean_image")
    assert torch.allclose(test.x[2, :, 5, 5], torch.full((3,), 40.0 - train_mean.item()), atol=1e-4)
    # a part (decoded alone) is the whole split cut; its mean image is still the whole split's
    for normalize in ("std", "mean_image"):
        part = D.cifar10(True, data_root=tmp_path, normalize=normalize, take=2)
        whole = D.cifar10(True, data_root=tmp_path, normalize=normalize)
        assert torch.equal(part.x, whole.x[[0, 3]]) and part.y.tolist() == [0, 1]


@pytest.mark.skipif(not REAL_MNIST, reason="real MNIST not in ../shared/data")
def test_mnist_real_copy():
    te = D.mnist(False)
    assert te.x.shape == (10_000, 1, 28, 28) and te.x.dtype == torch.float32
    assert float(te.x.max()) == 255 / 256  # Caffe's LeNet scale: pixels / 256
    assert torch.bincount(te.y).tolist()[:3] == [980, 1135, 1032]


def test_pad_crop_flip_keeps_content():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    out = A.pad_crop_flip(x, torch.Generator().manual_seed(0), pad=4)
    assert out.shape == x.shape
    for i in range(2):  # every kept pixel is a pixel of the same image (or zero padding)
        assert set(out[i].unique().tolist()) <= set(x[i].unique().tolist()) | {0.0}
    same = A.pad_crop_flip(x, torch.Generator().manual_seed(0), pad=4)
    assert torch.equal(out, same)
    assert torch.equal(A.pad_crop_flip(x, torch.Generator(), pad=0)[:, :, :, :].sort(-1).values, x.sort(-1).values)


def test_cli_parameter_that_an_option_sets_is_refused():
    from sslkit.app.cli import main

    assert main(["run", "baseline", "--profile", "smoke", "-p", "progress=False"]) == 2

