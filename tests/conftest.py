"""Test setup: real data from ../shared/data when present (else small synthetic data), trained
runs and results in a temporary folder shared by the session's workers (removed at the end),
never the network. Decoded image
folders (a pure function of the data) are shared with the user's cache, so CIFAR-10's JPEGs
are decoded once per machine, not once per test session."""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# One temporary folder per test session, made by the process that starts first (pytest itself,
# or the pytest-xdist controller, which loads this file before it starts its workers) and
# inherited by the workers: they share its run store, so a smoke stage that several tests or
# notebooks need (the LeNet baseline ...) is trained once per session (a file lock per stage
# lets one worker train it while the other waits), and its results folder.
_TMP_ENV = "SSLKIT_TEST_TMP"
if os.environ.get(_TMP_ENV):
    _tmp = Path(os.environ[_TMP_ENV])
else:
    _tmp = Path(tempfile.mkdtemp(prefix="sslkit-tests-"))
    os.environ[_TMP_ENV] = str(_tmp)
    atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
if not os.environ.get("SSLKIT_DATA") and SHARED_DATA.is_dir():
    os.environ["SSLKIT_DATA"] = str(SHARED_DATA)
os.environ["SSLKIT_RUNS"] = str(_tmp / "runs")         # hermetic: no trained runs from earlier
os.environ["SSLKIT_STORE"] = str(_tmp / "store")       # nor from the committed run store
os.environ.pop("SSLKIT_TRAIN", None)                    # tests train what they need
os.environ["SSLKIT_FIGURES"] = str(_tmp / "figures")   # never touch the committed figures/
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

from sslkit.training.data import TensorData  # noqa: E402

# Under pytest-xdist (make test TEST_JOBS=2) the cores are shared between the workers, and with the
# notebook kernels and JupyterLab they start (OMP_NUM_THREADS is inherited).
_THREADS = max(1, min(2, os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))
torch.set_num_threads(_THREADS)


def have_mnist() -> bool:
    """True when the real MNIST is the data the tests use."""
    return (Path(os.environ.get("SSLKIT_DATA", "")) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


def _write_synthetic_mnist(root: Path, n_train: int = 2048, n_test: int = 1000) -> None:
    """A small MNIST look-alike in the official idx format: digit d is a bright vertical bar at
    column 2d..2d+2 on noise, so a network can learn it."""
    import struct

    g = torch.Generator().manual_seed(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = torch.randint(0, 10, (n,), generator=g)
        x = (torch.rand(n, 28, 28, generator=g) * 80).to(torch.uint8)
        for d in range(10):
            x[y == d, 4:24, 2 * d + 4:2 * d + 7] = 255
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + x.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + y.to(torch.uint8).numpy().tobytes())


# Decided before any synthetic stand-in is written, by the first process (a worker would see its stand-in).
if "SSLKIT_TEST_REAL_MNIST" not in os.environ:
    os.environ["SSLKIT_TEST_REAL_MNIST"] = "1" if have_mnist() else "0"
REAL_MNIST = os.environ["SSLKIT_TEST_REAL_MNIST"] == "1"
if not REAL_MNIST:
    os.environ["SSLKIT_DATA"] = str(_tmp / "data")
    if not (_tmp / "data" / "MNIST").exists():   # written once, by the first process
        _write_synthetic_mnist(_tmp / "data")


@pytest.fixture(scope="session")
def mnist_small() -> tuple[TensorData, TensorData]:
    """(train, test): 1,024 + 512 MNIST images (the real ones when available)."""
    from sslkit.training.data import mnist

    return mnist(True).subset(1024), mnist(False).subset(512)


# The slowest tests first (seconds on an idle 2-core run, `pytest --durations`; only the order
# matters). With `--maxschedchunk=1` (make test TEST_JOBS=N) pytest-xdist hands the tests out
# one at a time to whichever worker is free, so the long ones start at once on the workers and
# the many short ones fill the gaps at the end. (Its default sends each worker a block of consecutive
# tests first: with this order, one worker got every slow test and the other idled 215 s.)
_SLOW_FIRST = {
    "test_notebook_smoke[figure7a_2d_filters]": 90, "test_notebook_smoke[figure6_resnet_depth]": 65,
    "test_jobs_train_the_sweep_concurrently_to_the_serial_result": 50,
    "test_notebook_smoke[table4_alexnet_standin]": 50, "test_notebook_smoke[": 20,
    "test_two_processes_equal_one_and_resume": 30, "test_notebook_runs_in_jupyterlab_in_chromium": 20,
    "test_tradeoff_reruns_the_picked_rows_with_each_seed": 17, "test_compaction_caffenet[": 12,
    "test_missing_data_cli_exits_nonzero": 11, "test_every_granularity_keeps_the_ladder_after_retraining": 10,
}


def pytest_collection_modifyitems(items):
    def cost(item):
        return max((s for name, s in _SLOW_FIRST.items() if item.name.startswith(name)), default=0)
    items.sort(key=cost, reverse=True)   # stable: the rest keep their order
