"""The four profiles, and the timing budget of each. How long a profile trains a network is
a fact of that network: see ``sizes`` in its record (``sslkit/models/<network>.py``).

    smoke      seconds per notebook, for tests: tiny subsets, a few dozen iterations. Its
               numbers mean nothing and are never written to figures/.
    quick      for trying things on a 2-core CPU: CIFAR and stand-in runs about 1% of the
               authors' schedules (numbers far from converged, and labelled so).
    converged  the default: baselines that converge on a 2-core CPU (about 10 CPU-hours for
               the whole suite) in bf16 mixed precision where the CPU has it. MNIST runs use
               the authors' full schedules; CIFAR and stand-in runs are shortened, some with
               another lr policy, and their SSL strengths multiplied so that the SSL stage
               shrinks the groups as much as the authors' longer one (each record says how).
    paper      the authors' solver schedules (a GPU for CIFAR-10 and ImageNet).
"""
from __future__ import annotations

from dataclasses import dataclass

PROFILES = ("smoke", "quick", "converged", "paper")
DEFAULT = "converged"  # what make reproduce, the notebooks and the command line run


@dataclass(frozen=True)
class Timing:
    """How long each timed measurement runs (seconds), which CPU thread counts to sweep and
    at which batch sizes whole networks are timed."""

    min_run_time: float
    threads: tuple[int, ...]
    batches: tuple[int, ...] = (1, 64)


TIMING = {
    "smoke": Timing(min_run_time=0.01, threads=(1,), batches=(1, 8)),   # meaningless, fast
    "quick": Timing(min_run_time=0.2, threads=(1, 2)),
    "converged": Timing(min_run_time=0.5, threads=(1, 2)),
    "paper": Timing(min_run_time=1.0, threads=(1, 2, 4, 8)),
}


def check_profile(profile: str) -> str:
    """``profile`` if it is one of :data:`PROFILES`; else a ``ValueError`` naming them."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {list(PROFILES)}")
    return profile


def timing(profile: str) -> Timing:
    """The timing budget of ``profile``."""
    return TIMING[check_profile(profile)]
