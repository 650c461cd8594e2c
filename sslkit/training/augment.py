"""Augmentation on batch tensors, on the batch's device: He et al.'s CIFAR pad-crop-flip and
AlexNet's crop-mirror-mean. The random draws come from a generator seeded per iteration by the
trainer; under ``torchrun`` each process draws what one process would for the whole batch and
keeps its rows. Channels-last batches stay channels-last."""
from __future__ import annotations

import torch

from sslkit.training.data import _subtract_mean, crop_size


def _draws(b: int, high: int, generator: torch.Generator, dev, part: tuple[int, slice] | None):
    """Random (row offset, column offset, flip) per sample, each offset in [0, high): drawn for
    the whole batch (``part[0]`` samples when a process holds only rows ``part[1]`` of it, so
    that every process draws what one process would) and cut to ``x``'s rows."""
    whole, rows = part if part is not None else (b, slice(None))
    gen_dev = generator.device
    oy = torch.randint(0, high, (whole,), generator=generator, device=gen_dev)[rows].to(dev)
    ox = torch.randint(0, high, (whole,), generator=generator, device=gen_dev)[rows].to(dev)
    flip = (torch.rand(whole, generator=generator, device=gen_dev) < 0.5)[rows].to(dev)
    return oy, ox, flip


def _crop(x: torch.Tensor, oy, ox, flip, size: int) -> torch.Tensor:
    """Per sample, the ``size`` x ``size`` window at (oy, ox), mirrored where ``flip``."""
    b, dev = x.shape[0], x.device
    rows = oy[:, None] + torch.arange(size, device=dev)                         # (b, size)
    cols = torch.arange(size, device=dev).expand(b, size)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + ox[:, None]       # (b, size)
    bi = torch.arange(b, device=dev)[:, None, None]
    return x.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def crop_flip_mean(x: torch.Tensor, generator: torch.Generator, part: tuple[int, slice] | None = None) -> torch.Tensor:
    """AlexNet's training augmentation on a uint8 batch warped to R x R: a random
    :func:`crop_size` (R) crop per sample, mirrored with probability 1/2, minus the mean.
    The random draws come from ``generator`` on its own device; ``part``: see :func:`_draws`."""
    b, _, r, _ = x.shape
    c = crop_size(r)
    out = _subtract_mean(_crop(x, *_draws(b, r - c + 1, generator, x.device, part), c))
    return _contiguous(out, channels_last=x.device.type == "cuda" or _is_channels_last(x))


def pad_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4,
                  part: tuple[int, slice] | None = None) -> torch.Tensor:
    """He et al.'s CIFAR augmentation on a batch tensor: zero-pad by ``pad``, take a random
    crop of the original size and flip horizontally with probability 1/2, per sample. The
    random draws come from ``generator`` on its own device (on the batch's device, no host
    synchronization); ``part``: see :func:`_draws`."""
    h = x.shape[2]
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    out = _crop(padded, *_draws(x.shape[0], 2 * pad + 1, generator, x.device, part), h)
    return _contiguous(out, channels_last=_is_channels_last(x))


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether a batch is laid out channels-last (NHWC) rather than NCHW."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _contiguous(x: torch.Tensor, *, channels_last: bool) -> torch.Tensor:
    """``x`` contiguous, channels-last or NCHW (augmented batches keep the layout of their input)."""
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
