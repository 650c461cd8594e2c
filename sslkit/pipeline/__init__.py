"""The paper's SSL recipe (:mod:`~sslkit.pipeline.recipe`: setup, baseline, SSL, fine-tuning,
compaction) over a store of cached, resumable training stages (:mod:`~sslkit.pipeline.store`).

    context = pipeline.setup("lenet", "converged")
    base = pipeline.baseline(context)
    run = pipeline.ssl(context, pipeline.Regularization({"filter": 5e-3, "channel": 5e-3}), base)
"""
from sslkit.pipeline.recipe import (
                                    Context,
                                    Regularization,
                                    SSLRun,
                                    baseline,
                                    baseline_result,
                                    baseline_dir,
                                    is_trained,
                                    scale_spec,
                                    setup,
                                    ssl,
                                    ssl_dir,
                                    stage_dir,
)
from sslkit.pipeline.store import StageMissing, find, run_dir, train_stage

__all__ = ["Context", "Regularization", "SSLRun", "StageMissing", "baseline", "baseline_result", "baseline_dir", "find", "is_trained", "run_dir",
           "scale_spec", "setup", "ssl", "ssl_dir", "stage_dir", "train_stage"]
