"""The one call a notebook makes: check its parameters, run the experiment, show and publish.

    result = notebook.run("baseline", globals())

The parameters are the notebook's own variables (its papermill parameters cell plus whatever
papermill injected). A name the experiment does not take, or a value of the wrong type, stops
the notebook with a clear message instead of being silently ignored.
"""
from __future__ import annotations

import types

from . import experiments, params
from .results import ExperimentResult, banner, publish

_IGNORED = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters(namespace: dict) -> dict:
    """The user's variables in ``namespace`` (a notebook's ``globals()``): names not starting
    with ``_``, no modules, functions or IPython internals."""
    return {k: v for k, v in namespace.items()
            if not k.startswith("_") and k not in _IGNORED
            and not isinstance(v, (types.ModuleType, types.FunctionType, type))}


def run(experiment: str, namespace: dict, *, show: bool = True, **fixed) -> ExperimentResult:
    """Run ``experiment`` with the notebook's parameters (and ``fixed`` arguments the notebook
    does not expose, e.g. which paper table it reproduces); display the provenance, the tables
    (paper beside ours) and the figures; write them to ``figures/`` (smoke: ``build/``)."""
    exp = experiments.get(experiment)
    kwargs = params.merge(params.check(exp.run, parameters(namespace)), fixed,
                          by=f"this notebook ({fixed}); use another notebook or call sslkit.experiments directly")
    result = exp.run(**kwargs)
    figures = exp.plot(result) if hasattr(exp, "plot") else {}
    folder = publish(result, figures)
    if show:
        from IPython.display import Markdown, display

        display(Markdown("**Provenance**  \n" + banner(result).replace("\n", "  \n") + f"  \nresults: `{folder}`"))
        for name, df in result.tables.items():
            if name != "history":
                display(Markdown(f"**{name}**"), df)
    return result
