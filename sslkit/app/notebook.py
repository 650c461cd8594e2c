"""The one call a notebook makes: check its parameters, run the experiment, show and publish.

    outcome = notebook.run("baseline", globals())

The parameters are the notebook's own variables (its papermill parameters cell plus whatever
papermill injected). A name the experiment does not take, or a value of the wrong type, stops
the notebook with a clear message instead of being silently ignored. The provenance, every
table and every figure are displayed in the notebook; they are also written to the results
folder (see :func:`sslkit.experiments.run`).
"""
from __future__ import annotations

import types

from sslkit import experiments
from sslkit.results.record import banner

_IGNORED = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters(namespace: dict) -> dict:
    """The user's variables in ``namespace`` (a notebook's ``globals()``): names not starting
    with ``_``, no modules, functions or IPython internals."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in _IGNORED
            and not isinstance(v, (types.ModuleType, types.FunctionType, type))}


def run(experiment: str, namespace: dict, *, show: bool = True, **fixed) -> experiments.Outcome:
    """Run ``experiment`` with the notebook's parameters (and ``fixed`` arguments the notebook
    does not expose, e.g. which paper table it reproduces); display the provenance, the tables
    (paper beside ours) and the figures; write them to ``figures/`` (smoke: ``build/``)."""
    outcome = experiments.run(experiment, parameters(namespace), fixed=fixed,
                              fixed_by=f"this notebook ({fixed}); use another notebook or call "
                                       "sslkit.experiments.run directly")
    if show:
        from IPython.display import Image, Markdown, display

        display(Markdown("**Provenance**  \n" + banner(outcome.result).replace("\n", "  \n")
                         + f"  \nresults: `{outcome.folder}`"))
        for name, df in outcome.result.tables.items():
            if name != "history":
                display(Markdown(f"**{name}**"), df)
        for name in outcome.figures:
            display(Markdown(f"**{name}**"), Image(filename=str(outcome.folder / f"{name}.png")))
    _close(outcome.figures)
    return outcome


def _close(figures: dict) -> None:
    """Release the figures (they are displayed from their files; the inline backend would
    otherwise show them a second time)."""
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)
