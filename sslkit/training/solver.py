"""Caffe's solvers in their own terms: an iteration count, a learning-rate policy, momentum,
weight decay and batch size (:class:`Schedule`), and the same without its length, as a
network's record keeps it per training stage (:class:`Solver`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

POLICIES = ("fixed", "step", "multistep", "inv", "poly")


@dataclass
class Schedule:
    """A Caffe solver, in its own terms.

    Attributes:
        iters: iterations to run (``max_iter``).
        lr: ``base_lr``.
        policy: ``fixed``, ``step`` (lr * gamma^floor(it/stepsize)), ``multistep`` (lr * gamma^k
            after the k-th of ``stepvalues``), ``inv`` (lr * (1 + gamma*it)^-power) or ``poly``
            (lr * (1 - it/iters)^power: with power 1, a linear decay to zero over the run).
        gamma, power, stepsize, stepvalues: the policy's parameters.
        momentum, weight_decay: SGD's.
        batch_size: training batch size.
    """

    iters: int
    lr: float
    policy: str = "fixed"
    gamma: float = 0.1
    power: float = 0.75
    stepsize: int = 0
    stepvalues: tuple[int, ...] = ()
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.policy == "step" and self.stepsize <= 0:
            raise ValueError("policy 'step' needs stepsize > 0")
        if self.iters < 0 or self.batch_size <= 0:
            raise ValueError("iters must be >= 0 and batch_size > 0")
        self.stepvalues = tuple(self.stepvalues)

    def lr_at(self, it: int) -> float:
        """The learning rate Caffe uses at iteration ``it`` (0-based)."""
        if self.policy == "fixed":
            return self.lr
        if self.policy == "step":
            return self.lr * self.gamma ** (it // self.stepsize)
        if self.policy == "multistep":
            return self.lr * self.gamma ** sum(it >= s for s in self.stepvalues)
        if self.policy == "poly":
            return self.lr * max(1.0 - it / max(self.iters, 1), 0.0) ** self.power
        return self.lr * (1.0 + self.gamma * it) ** (-self.power)


@dataclass(frozen=True)
class Solver:
    """A Caffe solver without its length: what a network's record keeps per training stage.

    Attributes are :class:`Schedule`'s; ``steps_at`` places a ``multistep`` policy's steps at
    these fractions of the run (default 1/2 and 3/4, as He et al.'s 32k and 48k of 64k).
    """

    lr: float
    policy: str = "fixed"
    gamma: float = 0.1
    power: float = 0.75
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    steps_at: tuple[float, ...] = (0.5, 0.75)

    def schedule(self, iters: int, **changes) -> "Schedule":
        """This solver run for ``iters`` iterations, with ``changes`` to its fields."""
        fields = {**asdict(self), **changes}
        steps_at = fields.pop("steps_at")
        if fields["policy"] == "multistep" and "stepvalues" not in fields:
            fields["stepvalues"] = tuple(int(f * iters) for f in steps_at)
        return Schedule(iters=iters, **fields)
