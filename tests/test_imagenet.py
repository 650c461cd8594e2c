"""ImageNet-layout folders: AlexNet's preprocessing on tensors, and one clear error for each
malformed folder (also through the command line, exit code 2)."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sslkit.training import data
from sslkit.training.augment import crop_flip_mean
from sslkit.training.data import DataFolderError, crop_size, imagenet


def _folder(root, classes=("n01", "n02"), per_class=3, size=(40, 30)):
    """An ImageNet-layout folder of random RGB images under ``root/imagenet``; returns it."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            d = root / "imagenet" / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root / "imagenet"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path / "cache"))


def test_splits_warped_cropped_and_mean_subtracted(tmp_path, cache):
    folder = _folder(tmp_path / "root")
    train = imagenet(True, data_root=tmp_path / "root", resize=32)
    test = imagenet(False, data_root=tmp_path / "root", resize=32)
    assert train.x.dtype == torch.uint8 and train.x.shape == (6, 3, 32, 32)
    assert train.y.tolist() == [0, 0, 0, 1, 1, 1]
    c = crop_size(32)
    assert c == 28 and test.x.shape == (6, 3, c, c) and test.x.dtype == torch.float32
    first = np.array(Image.open(folder / "val" / "n01" / "0.png").convert("RGB").resize((32, 32), Image.BILINEAR))
    top = (32 - c) // 2
    want = torch.from_numpy(first).permute(2, 0, 1)[:, top:top + c, top:top + c].float() \
        - torch.tensor(data.IMAGENET_MEAN).view(3, 1, 1)
    assert torch.equal(test.x[0], want)


def test_a_part_of_a_split_is_the_whole_split_cut(tmp_path, cache):
    """``take`` decodes only its samples (no decode cache is written), and they hold what the
    whole split, decoded through the cache, holds at :func:`data.spaced`'s indices."""
    _folder(tmp_path / "root", per_class=5)
    part = [imagenet(train, data_root=tmp_path / "root", resize=32, take=4) for train in (True, False)]
    assert not (tmp_path / "cache" / "decoded").exists()
    whole = [imagenet(train, data_root=tmp_path / "root", resize=32) for train in (True, False)]
    assert len(list((tmp_path / "cache" / "decoded").glob("*.pt"))) == 2
    keep = data.spaced(10, 4)
    assert keep.tolist() == [0, 2, 5, 7]
    for p, w in zip(part, whole):
        assert torch.equal(p.x, w.x[keep]) and torch.equal(p.y, w.y[keep]) and p.y.tolist() == [0, 0, 1, 1]


def test_crop_flip_mean_takes_a_crop_of_each_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 20, 20), dtype=torch.uint8, generator=g)
    out = crop_flip_mean(x, torch.Generator().manual_seed(1))
    c = crop_size(20)
    mean = torch.tensor(data.IMAGENET_MEAN).view(3, 1, 1)
    assert out.shape == (16, 3, c, c)
    flips = 0
    for i in range(16):
        found = [(oy, ox, f) for oy in range(20 - c + 1) for ox in range(20 - c + 1) for f in (False, True)
                 if torch.equal(out[i] + mean, (lambda p: p.flip(-1) if f else p)(x[i, :, oy:oy + c, ox:ox + c]).float())]
        assert found, f"sample {i} is no crop of its image"
        flips += found[0][2]
    assert 0 < flips < 16          # both mirrored and plain crops occur
    again = crop_flip_mean(x, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # a function of the generator's seed


@pytest.mark.parametrize("damage, words", [
    (lambda f: __import__("shutil").rmtree(f / "val"), "val is missing"),
    (lambda f: [p.unlink() for p in (f / "train" / "n02").iterdir()], "is empty"),
    (lambda f: (f / "train" / "n01" / "notes.txt").write_text("x"), "notes.txt is not an image file"),
    (lambda f: (f / "val" / "n01" / "3.png").write_bytes(b"not a png"), "3.png cannot be read as an image"),
])
def test_malformed_folder_gives_one_clear_error(tmp_path, cache, damage, words):
    folder = _folder(tmp_path / "root")
    damage(folder)
    with pytest.raises(DataFolderError, match=words.replace(".", r"\.")):
        for train in (True, False):
            imagenet(train, data_root=tmp_path / "root", resize=32)


def test_command_line_names_the_bad_file(tmp_path, cache):
    folder = _folder(tmp_path / "root")
    (folder / "train" / "n02" / "readme.md").write_text("x")
    done = subprocess.run([sys.executable, "-m", "sslkit", "run", "alexnet", "--profile", "smoke",
                           "--data-root", str(tmp_path / "root"), "-p", 'runs={"1": {"l1": 1e-4}}'],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line
    assert "readme.md is not an image file" in done.stderr


def test_missing_data_names_the_places_tried(tmp_path, cache):
    with pytest.raises(data.DataNotFoundError, match="imagenette2-224"):
        imagenet(True, data_root=tmp_path / "empty")


def test_streamed_split_trains_like_the_in_memory_one(tmp_path, cache, monkeypatch):
    """A split too large for memory is read through DataLoader workers (FolderData); it gives the
    same batches, and the same trained weights, as the decoded tensors."""
    import torch.nn as nn

    from sslkit.training.loop import evaluate, train
    from sslkit.training.solver import Schedule

    _folder(tmp_path / "root", per_class=8)
    resident = [imagenet(t, data_root=tmp_path / "root", resize=32) for t in (True, False)]
    monkeypatch.setattr(data, "IN_MEMORY_MAX", 0)
    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path / "no-decoded-cache"))
    streamed = [imagenet(t, data_root=tmp_path / "root", resize=32) for t in (True, False)]
    assert all(isinstance(s, data.FolderData) for s in streamed)
    for s in streamed:
        s.workers = 2
    idx = [torch.tensor([3, 0, 15]), torch.tensor([7, 8])]
    for r, s in zip(resident, streamed):
        for (xr, yr), (xs, ys) in zip(r.batches(idx), s.batches(idx)):
            assert torch.equal(xr, xs) and torch.equal(yr, ys)

    def fit(split):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 2))
        train(net, split, Schedule(iters=5, lr=0.01, batch_size=4), augment=crop_flip_mean, progress=False)
        return net
    a, b = fit(resident[0]), fit(streamed[0])
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert evaluate(a, resident[1]) == evaluate(b, streamed[1])
    # A part of a streamed split holds the samples of the same part of a decoded one.
    part = imagenet(True, data_root=tmp_path / "root", resize=32, take=5)
    monkeypatch.setattr(data, "IN_MEMORY_MAX", 10 ** 9)
    kept = imagenet(True, data_root=tmp_path / "root", resize=32, take=5)
    assert isinstance(part, data.FolderData) and len(part) == len(kept) == 5
    (xp, yp), (xk, yk) = next(part.batches([slice(None)])), next(kept.batches([slice(None)]))
    assert torch.equal(xp, xk) and torch.equal(yp, yk)


def test_table4_rows_are_l1_only_when_every_term_is_l1():
    from sslkit.experiments.alexnet import method_of

    assert method_of({"l1": 1e-4}) == "l1"
    assert method_of({"conv1": {"l1": 1e-4}, "conv2": {"l1": 1e-3}}) == "l1"
    assert method_of({"filter": 1e-3, "shape": 1e-3}) == "ssl"
    assert method_of({"conv1": {"l1": 1e-4}, "conv2": {"shape": 1e-3}}) == "ssl"
