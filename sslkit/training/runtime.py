"""Device and numeric precision, decided once per experiment and recorded with every result.

    rt = runtime.Runtime.resolve("cpu", "bf16")   # bf16 where the CPU has it, else fp32
    rt.precision, rt.channels_last, rt.note
    with rt.autocast():
        loss = loss_fn(model(x), y)

Precisions:
    fp32  float32 throughout (on CUDA with TF32 matrix units).
    bf16  mixed precision: the forward pass and the loss under ``torch.autocast`` in bfloat16,
          the weights, gradients, optimizer state, group-Lasso step, zeroing, masks,
          compaction, FLOP counts and GEMM timings in float32. Used only where the device
          computes bfloat16 natively (a CPU with AVX-512 BF16 or AMX, a CUDA device that
          supports it); elsewhere it falls back to fp32 and the note says so.

Channels-last tensors (NHWC) go with CUDA and with bf16 on the CPU, where oneDNN's kernels
are fastest in that layout; fp32 on the CPU keeps NCHW.
"""
from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`; else a ``ValueError`` naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    return precision


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (CPU: AVX-512 BF16 or AMX tiles)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        return any(getattr(cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a network trains.

    Attributes:
        device: the training device.
        precision: ``fp32`` or ``bf16`` as used (after any fall-back).
        requested: what was asked for.
    """

    device: torch.device
    precision: str = "fp32"
    requested: str = "fp32"

    @classmethod
    def resolve(cls, device: str | torch.device, precision: str = "fp32") -> "Runtime":
        """The runtime for ``precision`` on ``device``: bf16 falls back to fp32 where the device
        has no native bfloat16."""
        dev = torch.device(device)
        used = check_precision(precision)
        if used == "bf16" and not native_bf16(dev):
            used = "fp32"
        return cls(dev, used, precision)

    @property
    def channels_last(self) -> bool:
        """Whether 4-D tensors and models are kept channels-last (NHWC)."""
        return self.device.type == "cuda" or self.precision == "bf16"

    @property
    def note(self) -> str:
        """One line for a provenance: the precision used, and why when it is not the one asked for."""
        if self.precision == "bf16":
            return "bf16 autocast (forward and loss), fp32 weights, optimizer and SSL step; channels-last"
        text = "fp32" + (" (TF32 matrix units), channels-last" if self.device.type == "cuda" else "")
        if self.requested != self.precision:
            text += f" (bf16 asked for, but {self.device.type} has no native bfloat16)"
        return text

    def activate(self) -> None:
        """Switch on what this runtime's device needs process-wide: TF32 matrix units on CUDA
        (recorded as ``tf32`` in every provenance)."""
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True

    def autocast(self):
        """A context in which the forward pass runs in this runtime's precision."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def memory_format(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in this runtime's layout (4-D tensors only; others as they are)."""
        if x.dim() != 4:
            return x
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in this runtime's layout (in place), returned."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(device: str | torch.device | None) -> None:
    """Raise a ``ValueError`` (one line: what is wrong, what to do) unless ``device`` is None
    or a CPU / CUDA device this machine has."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda' (or leave it unset)") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported: use 'cpu' or 'cuda' (or leave it unset)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but this machine has no CUDA device; "
                         "use 'cpu' or leave the device unset")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")


def device_name(device: str | torch.device) -> str:
    """A human name for ``device``: the GPU's name, or the CPU's model, the vector instructions
    torch uses on it (``AVX2``, ``AVX512``: one model name covers CPUs of several generations)
    and its core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    isa = torch.backends.cpu.get_cpu_capability()
    return f"{cpu} ({isa}), {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
