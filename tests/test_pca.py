"""PCA rank analysis: the reconstruction error against an independent formula (the singular
values), its end points, and the components needed for an error."""
import numpy as np
import pytest
import torch

from sslkit import models
from sslkit.analysis.pca import components_for, network_curves, reconstruction_error


def test_error_matches_the_singular_values():
    """error(k)^2 = sum of the squared singular values after the k-th / their total (centred)."""
    torch.manual_seed(0)
    w = torch.randn(12, 3, 3, 3)
    curve = reconstruction_error(w)
    x = w.reshape(12, -1).double().numpy()
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    expected = 100 * np.sqrt([(s[k:] ** 2).sum() / (s ** 2).sum() for k in range(len(s) + 1)])
    assert curve["components"].tolist() == list(range(13))
    assert curve["% error"].to_numpy() == pytest.approx(expected, abs=1e-6)
    assert curve["% error"].iloc[0] == 100 and curve["% error"].iloc[-1] == pytest.approx(0, abs=1e-6)
    assert curve["% components"].iloc[-1] == 100


def test_low_rank_filters_need_fewer_components():
    """Filters spanning a 2-D subspace (plus the mean) are rebuilt exactly by 2 components."""
    torch.manual_seed(0)
    basis, coef = torch.randn(2, 27), torch.randn(20, 2)
    w = (coef @ basis + torch.randn(27)).reshape(20, 3, 3, 3)
    curve = reconstruction_error(w)
    assert components_for(curve, 1e-4) == 2
    assert components_for(curve, 10) <= 2 < components_for(reconstruction_error(torch.randn(20, 3, 3, 3)), 10)


def test_network_curves_cover_every_conv():
    df = network_curves(models.build("lenet"), (1, 28, 28))
    assert set(df["layer"]) == {"conv1", "conv2"}
    assert df.groupby("layer")["components"].max().to_dict() == {"conv1": 20, "conv2": 50}


def test_untrained_networks_are_listed_missing_not_drawn():
    """Weights that are not there are never invented: the network is listed as missing."""
    from sslkit import experiments

    out = experiments.run("pca", {"profile": "smoke", "networks": {"lenet": {"LeNet x": {"filter": 0.123}}},
                                  "progress": False})
    tables = out.result.tables
    assert tables["curves"].empty and tables["components"].empty
    assert tables["missing"][["network", "run"]].values.tolist() == [["lenet", "LeNet x"]]
    assert "not trained with profile 'smoke'" in tables["missing"]["why"].iloc[0]
