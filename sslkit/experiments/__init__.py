"""One module per table or figure. Each has ``run(**params) -> ExperimentResult`` and
``plot(result) -> {name: figure}``; notebooks, tests and ``python -m sslkit run`` call them."""
from importlib import import_module

EXPERIMENTS = {
    "baseline": "sslkit.experiments.baseline",
    "ssl": "sslkit.experiments.ssl",
    "speed": "sslkit.experiments.speed",
}


def get(name: str):
    """The experiment module called ``name``."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}")
    return import_module(EXPERIMENTS[name])
