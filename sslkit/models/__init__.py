"""The papers' networks, one file each. Each file holds the network's code and its
:class:`Network` record(s) in a module-level ``NETWORKS`` tuple; this package finds them, so
adding a network means adding one file.

    models.build("lenet")        a fresh network, initialised as the authors' Caffe model
    models.get("lenet")          its record: input shape, data, solvers, profile sizes, paper error
"""
from __future__ import annotations

import importlib
import pkgutil

import torch.nn as nn

from sslkit.models._network import Multiplier, Network, Sizes

NETWORKS: dict[str, Network] = {}
for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        for _net in importlib.import_module(f"{__name__}.{_info.name}").NETWORKS:
            NETWORKS[_net.name] = _net


def get(name: str) -> Network:
    """The record of network ``name``; a ``ValueError`` naming the known ones otherwise."""
    if name not in NETWORKS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(NETWORKS)}")
    return NETWORKS[name]


def build(name: str, **kwargs) -> nn.Module:
    """A fresh network by name (see :data:`NETWORKS`), initialised as the authors' Caffe
    models were; ``kwargs`` go to its builder (e.g. ``num_classes``)."""
    return get(name).build(**kwargs)


__all__ = ["NETWORKS", "Multiplier", "Network", "Sizes", "build", "get"]
