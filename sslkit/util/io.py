"""Atomic, deterministic writing of results: a crash never leaves a half-written file, and the
same run writes byte-identical figures."""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def _atomic(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; move it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_torch_save(obj, path: str | os.PathLike, *, compress: bool = False) -> None:
    """``torch.save`` that replaces ``path`` only once the file is complete.

    Args:
        obj: what ``torch.save`` takes.
        path: the file to write.
        compress: deflate the archive's records where that pays (a sparse tensor's zeros take
            little room; a dense fp32 one would shrink by a tenth at 20 MB/s, so it is stored).
            ``torch.load`` reads such a file as any other (not with ``mmap=True``: the records
            are neither aligned nor all stored); fixed record names and dates, so the same
            ``obj`` gives the same bytes on the same platform and zlib.
    """
    with _atomic(path) as tmp:
        if not compress:
            torch.save(obj, tmp)
            return
        plain = io.BytesIO()
        torch.save(obj, plain)   # records named archive/..., whatever the file's name
        with zipfile.ZipFile(plain) as src, zipfile.ZipFile(tmp, "w") as out:
            for info in src.infolist():
                data = src.read(info)
                how = zipfile.ZIP_DEFLATED if _deflate_pays(data) else zipfile.ZIP_STORED
                out.writestr(zipfile.ZipInfo(info.filename), data, compress_type=how, compresslevel=6)


def _deflate_pays(data: bytes, probe: int = 1 << 14) -> bool:
    """Whether deflating ``data`` saves a fifth or more, judged on four probes spread over it."""
    if len(data) <= 4 * probe:
        return len(zlib.compress(data, 1)) < 0.8 * len(data)
    step = (len(data) - probe) // 3
    sample = b"".join(data[i * step:i * step + probe] for i in range(4))
    return len(zlib.compress(sample, 1)) < 0.8 * len(sample)


def load_cached(path: str | os.PathLike, *, keys: tuple[str, ...] = (), **kwargs):
    """``torch.load(path)`` of a cache file, or None when it cannot be read (truncated, corrupt,
    or a dict without ``keys``): the file is then renamed ``<name>.corrupt`` (kept, never found
    again) and one warning line names it, so the caller recomputes it."""
    import sys

    path = Path(path)
    try:
        obj = torch.load(path, **kwargs)
        if keys and not (isinstance(obj, dict) and all(k in obj for k in keys)):
            raise ValueError(f"expected the keys {list(keys)}")
        return obj
    except Exception as exc:  # torch.load raises many types on a damaged file
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        os.replace(path, path.with_name(path.name + ".corrupt"))
        print(f"warning: cached file {path} is unreadable ({reason}); moved to {path.name}.corrupt, "
              "recomputing it", file=sys.stderr)
        return None


def write_text(path: str | os.PathLike, text: str) -> None:
    with _atomic(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(df, path: str | os.PathLike) -> None:
    """A pandas DataFrame as CSV (floats with 6 significant digits, so reruns diff cleanly)."""
    with _atomic(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def save_figure(fig, path: str | os.PathLike) -> None:
    """A matplotlib figure as PNG or PDF, without timestamps, so equal runs give equal bytes."""
    path = Path(path)
    metadata = {"Software": None} if path.suffix == ".png" else {"CreationDate": None, "Producer": None}
    with _atomic(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:], metadata=metadata, bbox_inches="tight", dpi=120)
