"""Each timed method computes the same product as the dense GEMM (speed is never asserted)."""
import pytest
import torch
import torch.nn.functional as F

from sslkit import models
from sslkit.analysis import timing
from sslkit.experiments.speed import table4_layers
from sslkit.sparsity.lowering import LoweredLayer

SPECS = [LoweredLayer.conv("a", (6, 9, 9), 8, 3, stride=2, padding=1),
         LoweredLayer.conv("b", (6, 7, 7), 8, 3, padding=1, groups=2),
         LoweredLayer.conv("c", (3, 15, 15), 4, 5, stride=3),
         LoweredLayer.conv("1x7", (4, 9, 12), 6, (1, 7), padding=(0, 3)),
         LoweredLayer.conv("dilated", (4, 11, 11), 6, 3, dilation=2, padding=2),
         LoweredLayer.conv("depthwise", (6, 8, 8), 6, 3, padding=1, groups=6)]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
@pytest.mark.parametrize("kind", ["element", "structured", "all zero"])
def test_methods_agree_with_dense(spec, kind):
    w = timing.sparse_weight(spec, element=0.7, seed=1) if kind == "element" else \
        timing.sparse_weight(spec, rows=0.25, cols=0.5, seed=1) if kind == "structured" else \
        timing.sparse_weight(spec, rows=1.0, seed=1)
    o = timing.operands(spec, w)
    ref = F.conv2d(o["x"], w, stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                   groups=spec.groups).flatten(2)[0]
    dense = torch.cat(timing.gemm_dense(o))
    assert torch.allclose(dense, ref, atol=1e-4)
    assert torch.allclose(torch.cat(timing.gemm_csr(o)), ref, atol=1e-4)
    assert torch.allclose(timing.layer_im2col_dense(o).reshape(ref.shape), ref, atol=1e-4)
    # compact GEMM: the non-zero rows of the output; removed rows are exactly zero in the dense one
    rows = [torch.nonzero(wi.any(1)).flatten() for wi in o["w"]]
    for g, (out, outl) in enumerate(zip(timing.gemm_compact(o), timing.layer_im2col_compact(o))):
        full = ref.view(spec.groups, spec.rows, -1)[g]
        assert torch.allclose(out, full[rows[g]], atol=1e-4) and torch.allclose(outl, out, atol=1e-5)
        keep = torch.zeros(spec.rows, dtype=torch.bool)
        keep[rows[g]] = True
        assert torch.all(full[~keep] == 0)
    assert torch.allclose(timing.layer_conv_dense(o).flatten(2)[0], ref, atol=1e-5)
    if "thin_w" in o:                   # the thinned conv computes the live filters' outputs
        live = w.flatten(1).any(1)
        assert torch.allclose(timing.layer_conv_thin(o).flatten(2)[0], ref[live], atol=1e-4)


def test_csr_method_multiplies_a_sparse_matrix(monkeypatch):
    """The CSR timing really runs a sparse x dense product on the layer's non-zeros."""
    spec = SPECS[1]
    w = timing.sparse_weight(spec, element=0.8, seed=2)
    o = timing.operands(spec, w)
    assert all(c.layout == torch.sparse_csr for c in o["csr"])
    assert sum(c.values().numel() for c in o["csr"]) == int((w != 0).sum())
    calls = []
    real = torch.sparse.mm
    monkeypatch.setattr(torch.sparse, "mm", lambda a, b: calls.append(a.layout) or real(a, b))
    timing.gemm_csr(o)
    assert calls == [torch.sparse_csr] * spec.groups


def test_time_layer_on_an_all_zero_layer_marks_it_removed():
    spec = SPECS[3]
    row = timing.time_layer(spec, torch.zeros(6, 4, 1, 7), min_run_time=0.001)
    assert row["removed"] and row["rows kept"] == 0 and row["ideal speedup"] == float("inf")
    assert "time gemm: compact" not in row and row["time gemm: dense"] > 0
    assert row["spread gemm: dense"] >= 0   # a spread beside every median


def test_sparse_weight_exact_counts():
    spec = table4_layers()[2]  # CaffeNet's conv3: 384 x 2304
    w = timing.sparse_weight(spec, rows=0.406, cols=0.769).reshape(384, 2304)
    assert int((~w.any(1)).sum()) == round(0.406 * 384)
    assert int((~w.any(0)).sum()) == round(0.769 * 2304)
    e = timing.sparse_weight(spec, element=0.972)
    assert int((e == 0).sum()) == round(0.972 * e.numel())


def test_time_layer_reports_ideal_speedup_and_runs():
    spec = SPECS[0]
    w = timing.sparse_weight(spec, rows=0.5, cols=0.5)
    row = timing.time_layer(spec, w, min_run_time=0.001, methods=["gemm: dense", "gemm: compact"])
    assert row["ideal speedup"] == pytest.approx(4.0)
    assert row["time gemm: dense"] > 0 and "efficiency" in timing.speedups(row)


def test_specs_from_a_model():
    specs = timing.conv_layers(models.build("lenet"), (1, 28, 28))
    assert [(s.name, s.rows, s.cols, s.positions) for s in specs] == [("conv1", 20, 25, 576), ("conv2", 50, 500, 64)]
    assert specs[1].module.weight.shape == (50, 20, 5, 5)


def test_network_latency_table():
    """Dense vs compacted forward timing of a network: one row per (batch, threads), every
    variant timed with its spread, and the ideal speedup is the report's FLOP ratio."""
    from sslkit.compaction.compact import propagate_zeros
    from sslkit.sparsity.stats import sparsity_report

    torch.manual_seed(0)
    net = models.build("lenet").eval()
    with torch.no_grad():
        net.conv1.weight[:10] = 0
        net.conv1.bias[:10] = 0
        net.conv2.weight[:, :, 0, :] = 0          # shape sparsity: needs the lowered conv
    propagate_zeros(net, (1, 28, 28))
    report = sparsity_report(net, (1, 28, 28))
    df = timing.network_latency(net, (1, 28, 28), batches=(1, 3), threads=(1,), min_run_time=0.001)
    assert list(zip(df["batch"], df["threads"])) == [(1, 1), (3, 1)]
    for variant in ("dense", "compact (native)", "compact (lowered)"):
        assert (df[f"{variant} ms"] > 0).all() and (df[f"spread {variant} %"] >= 0).all()
    assert df["FLOP ratio"].iloc[0] == pytest.approx(report["FLOP"].sum() / report["FLOP left"].sum())
    assert df["efficiency"].tolist() == pytest.approx((df["speedup"] / df["FLOP ratio"]).tolist())
    assert set(df["best compact"]) <= {"compact (native)", "compact (lowered)"}
