"""What a result claims of the papers, and the verdict a reviewer would accept for each.

Every experiment declares its claims where it computes them: a ``claims(result)`` function
beside its ``run`` turns the published tables into :class:`Claim` objects, one per number of a
paper (the paper's value, ours, the rule, the row it belongs to, what it needs when not run).
:func:`judge` gives each its verdict, and :func:`sslkit.experiments.run` publishes them as the
result's ``verdicts.csv``; the report (:mod:`sslkit.reporting.report`) only collects them.

Verdicts:

- **reproduced** / **deviates**: ours is within the tolerance of the claim's rule (:data:`RULES`),
  or not;
- a row's structural, FLOP and speedup numbers are *gated* on the row's error: when that error
  deviates (or is unknown), they deviate too, with the error as the reason;
- **not counted**: a number that holds by construction (a dense baseline's filter count, its
  speedup of 1.0), one whose rule admits every value it can take (a sparsity "≥ paper − 10 pp"
  where the paper's is ≤ 10%), and every number of the ``smoke`` profile;
- **check holds** / **check fails**: timings of the paper's own sparsity patterns: a check of
  the libraries on this machine, not a reproduction of a trained row;
- **not run**: no result holds the number (``why_not`` says what it needs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from sslkit import models
from sslkit.results import paper

WEN, MAO = "Wen et al. 2016", "Mao et al. 2017"
_INF = math.inf


@dataclass(frozen=True)
class Rule:
    """A tolerance: ``text`` says it, ``holds(ours, paper)`` checks it, ``domain`` is the range
    of values ours can take (a rule that holds at both ends admits every value), ``better``
    the direction in which ours beats the paper (``"higher"``, ``"lower"`` or None)."""

    text: str
    holds: Callable[[float, float], bool]
    domain: tuple[float, float] = (0.0, _INF)
    better: str | None = None

    def admits_every_value(self, paper: float) -> bool:
        """True when no value of ours could fail this rule against ``paper`` (the rules are
        monotone or two-sided, so both ends of the domain decide)."""
        lo, hi = self.domain
        return bool(self.holds(lo, paper) and self.holds(hi, paper))


RULES = {
    "error mnist": Rule("≤ paper + 0.2 pp", lambda o, p: o <= p + 0.2, (0, 100), "lower"),
    "error cifar10": Rule("≤ paper + 1.0 pp", lambda o, p: o <= p + 1.0, (0, 100), "lower"),
    "error imagenet": Rule("≤ paper + 1.0 pp", lambda o, p: o <= p + 1.0, (0, 100), "lower"),
    "count": Rule("≤ paper × 1.2 + 1 (fewer is better)", lambda o, p: o <= 1.2 * p + 1, (0, _INF), "lower"),
    "flop": Rule("≤ paper × 1.2 + 0.5 pp (less is better)", lambda o, p: o <= 1.2 * p + 0.5, (0, 100), "lower"),
    "sparsity": Rule("≥ paper − 10 pp (sparser is better)", lambda o, p: o >= p - 10, (0, 100), "higher"),
    "share": Rule("within ± 10 pp", lambda o, p: abs(o - p) <= 10, (0, 100)),
    "speedup": Rule("within ± 25% of the paper's", lambda o, p: abs(o / p - 1) <= 0.25, (0, _INF)),
    "error increase": Rule("≤ paper's + 1.0 pp (over each one's own baseline)", lambda o, p: o <= p + 1.0,
                           (-100, 100), "lower"),
    "error reduction": Rule("< 0 pp (the error falls below the baseline's)", lambda o, p: o < 0, (-100, 100), "lower"),
    "claim": Rule("the claim holds (1: yes, 0: no)", lambda o, p: o == p, (0, 1)),
    "saving": Rule("≥ paper × 0.75 (a larger saving is better)", lambda o, p: o >= 0.75 * p, (0, _INF), "higher"),
}

TRAINED, TIMING, CONSTRUCTION = "trained", "timing of the paper's sparsity", "by construction"
VERDICTS = ("reproduced", "deviates", "not run", "not counted", "check holds", "check fails")


@dataclass
class Claim:
    """One number of a paper, and ours.

    Attributes:
        paper, item, row, quantity, layer: which number (``WEN``/``MAO``, ``"Table 1"``,
            ``"LeNet 2"``, ``"filters"``, ``"conv1"``).
        paper_value: the paper's number (``sslkit.results.paper``), or None where it gives none.
        ours: our number, or None (not run).
        rule: a key of :data:`RULES`.
        kind: ``TRAINED`` (from our own training), ``TIMING`` (timed on the paper's sparsity)
            or ``CONSTRUCTION`` (holds whatever the training did).
        error: True for a row's error (it gates the row's other numbers).
        gate: the rows, as (item, row), whose error must hold for this number to count; by
            default the claim's own when it is a structural, FLOP or speedup number.
        network: the network the number is about, when the result holds several (its data
            set names the reasons).
        why_not: what a "not run" needs.
        missing: set where the experiment ran but gave no value of ours (e.g. no sweep point
            reached the depth the paper reports): a failure, so the number deviates, saying this.
        note: said beside the verdict.
    """

    paper: str
    item: str
    row: str
    quantity: str
    layer: str = ""
    paper_value: float | None = None
    ours: float | None = None
    rule: str | None = None
    kind: str = TRAINED
    error: bool = False
    gate: tuple[tuple[str, str], ...] | None = None
    network: str | None = None
    why_not: str = ""
    missing: str = ""
    note: str = ""


_GATED_RULES = {"count", "flop", "sparsity", "share", "speedup"}   # structure, FLOP, speed


def _gates(claim: Claim) -> tuple[tuple[str, str], ...]:
    if claim.gate is not None:
        return claim.gate
    return ((claim.item, claim.row),) if claim.rule in _GATED_RULES and claim.kind == TRAINED else ()


def _raw(claim: Claim) -> tuple[str, str]:
    """The verdict of a claim alone (before gating), and its note."""
    if claim.ours is None and claim.missing:
        return "deviates", _join(claim.missing, claim.note)
    if claim.ours is None or claim.rule is None or claim.paper_value is None:
        return "not run", claim.why_not or claim.note
    rule = RULES[claim.rule]
    if claim.kind == CONSTRUCTION:
        return "not counted", _join(claim.note, "holds by construction")
    if rule.admits_every_value(claim.paper_value):
        return "not counted", _join(claim.note, f"the rule ({rule.text}) admits every value against {claim.paper_value:g}")
    ok = rule.holds(claim.ours, claim.paper_value)
    if claim.kind == TIMING:
        return ("check holds" if ok else "check fails"), claim.note
    return ("reproduced" if ok else "deviates"), claim.note


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _beats(claim: Claim) -> bool:
    """Whether ours is past the paper's in the rule's better direction."""
    better = RULES[claim.rule].better if claim.rule else None
    if better is None or claim.ours is None or claim.paper_value is None:
        return False
    return claim.ours > claim.paper_value if better == "higher" else claim.ours < claim.paper_value


def reasons(meta: dict, claim: Claim) -> str:
    """Why a number may deviate, from its result's provenance and the network it is about."""
    why = []
    if claim.rule in ("count", "flop", "sparsity", "share") and claim.kind == TRAINED:
        why.append("the group-Lasso strengths are ours (the paper gives none per row)")
    if "shortened" in str(meta.get("schedule", "")) and not _beats(claim):
        why.append("shortened schedule (" + str(meta.get("profile", "?")) + " profile)")
    dataset, data = models.get(claim.network).dataset if claim.network else None, str(meta.get("data", ""))
    if dataset == "cifar10" or (dataset is None and "JPEG" in data):
        why.append("JPEG re-encoded CIFAR-10")
    if dataset in (None, "imagenet") and "Imagenette" in data:
        why.append("the Imagenette stand-in (10 classes), not ImageNet")
    if "speedup" in claim.quantity and meta.get("device"):  # the paper's CPU speedups are all 1-thread
        where = meta["device"] if "GPU" in claim.quantity else str(meta["device"]).split(",")[0] + ", 1 thread"
        why.append(f"timed on {where}, the paper on {paper.TABLE4_DEVICES['gpu' if 'GPU' in claim.quantity else 'cpu']}")
    return "; ".join(why)


def judge(claims: list[Claim], meta: dict | None = None) -> pd.DataFrame:
    """The verdict of every claim (see the module docstring), as one table.

    Args:
        claims: what one result claims.
        meta: that result's provenance (its profile decides "smoke"; schedule, data and device
            name the reasons of a deviation).
    Returns:
        One line per claim: paper, item, row, quantity, layer, paper value, ours, difference,
        tolerance, kind, verdict, note.
    """
    meta = meta or {}
    raw = [_raw(c) for c in claims]
    errors = {(c.item, c.row): (v, c) for c, (v, _) in zip(claims, raw) if c.error}
    rows = []
    for c, (verdict, note) in zip(claims, raw):
        if verdict in ("reproduced", "deviates") and c.ours is not None:
            for item, row in _gates(c):
                gate, err = errors.get((item, row), ("not run", None))
                if gate != "reproduced":
                    verdict = "deviates"
                    what = (f"{row}'s error {err.ours:g} is outside its tolerance ({RULES[err.rule].text} "
                            f"of {err.paper_value:g})" if gate == "deviates" else f"{row}'s error is not known")
                    note = _join(note, what)
                    break
        if verdict == "deviates":
            note = _join(note, "ours beats the paper's by more than the tolerance" if _beats(c) else "",
                         reasons(meta, c))
        if meta.get("profile") == "smoke" and (c.ours is not None or verdict != "not run"):
            verdict, note = "not counted", "smoke profile: its numbers mean nothing"
        rows.append({"paper": c.paper, "item": c.item, "row": c.row, "quantity": c.quantity, "layer": c.layer,
                     "paper value": c.paper_value, "ours": c.ours,
                     "difference": None if c.ours is None or c.paper_value is None else round(c.ours - c.paper_value, 4),
                     "tolerance": RULES[c.rule].text if c.rule else "", "kind": c.kind, "verdict": verdict,
                     "note": note})
    return pd.DataFrame(rows, columns=["paper", "item", "row", "quantity", "layer", "paper value", "ours",
                                       "difference", "tolerance", "kind", "verdict", "note"])


def split(cell) -> list[float]:
    """A per-layer cell written the paper's way, ``"5–19"`` or ``"25%–7.6%"``, as numbers
    (``[]`` when empty)."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or str(cell).strip() == "":
        return []
    return [float(v.strip().rstrip("%")) for v in str(cell).split("–")]
