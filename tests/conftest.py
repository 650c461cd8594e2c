"""Test setup: real data from ../shared/data when present (else small synthetic data), caches
and results in temporary folders, never the network."""
import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
_tmp = Path(tempfile.mkdtemp(prefix="sslkit-tests-"))
os.environ.setdefault("SSLKIT_DATA", str(SHARED_DATA) if SHARED_DATA.is_dir() else str(_tmp / "no-data"))
os.environ["SSLKIT_CACHE"] = str(_tmp / "cache")       # hermetic: no cached runs from earlier
os.environ["SSLKIT_FIGURES"] = str(_tmp / "figures")   # never touch the committed figures/
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

from sslkit.data import TensorData  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


def have_mnist() -> bool:
    return (Path(os.environ["SSLKIT_DATA"]) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


@pytest.fixture(scope="session")
def mnist_small() -> tuple[TensorData, TensorData]:
    """(train, test): 1,024 + 512 real MNIST images if available, else random images with a
    learnable rule (label = which tenth of the image is brightest)."""
    if have_mnist():
        from sslkit.data import mnist
        return mnist(True).subset(1024), mnist(False).subset(512)
    g = torch.Generator().manual_seed(0)

    def make(n):
        y = torch.randint(0, 10, (n,), generator=g)
        x = torch.rand(n, 1, 28, 28, generator=g) * 0.3
        for i in range(n):
            x[i, 0, :, int(y[i]) * 2:int(y[i]) * 2 + 3] += 0.7
        return TensorData(x, y)
    return make(1024), make(512)
