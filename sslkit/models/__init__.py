"""The papers' networks, one file each. Each file holds the network's code and its
:class:`Network` record(s) in a module-level ``NETWORKS`` tuple, and :data:`NETWORKS` here
maps each record's name to it: adding a network means adding one file and naming it below.

    models.build("lenet")        a fresh network, initialised as the authors' Caffe model
    models.get("lenet")          its record: input shape, data, solvers, profile sizes, paper error
"""
from __future__ import annotations

import torch.nn as nn

from sslkit.models import caffenet, convnet, lenet, mlp, resnet
from sslkit.models._network import Multiplier, Network, Sizes

# name -> record, from each network file's NETWORKS
NETWORKS: dict[str, Network] = {net.name: net for module in (caffenet, convnet, lenet, mlp, resnet)
                                for net in module.NETWORKS}


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
