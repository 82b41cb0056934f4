"""Locating a trait: contrastive sets, pooled activations, the layer sweep, its probe metrics,
its steerability predictors, its result and persistence, its plots and the ``lensteer locate``
command.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> result = lensteer.locate(model, "honesty", layers=[2, 3], max_scenarios=6, n_folds=2,
...                          max_new_tokens=12, greedy=True, per_token=False, neutral=False,
...                          progress=False)
>>> result.recommended, result.row(3).auroc
([2, 3], 1.0)

Modules: :mod:`.contrastive` (the model answers each scenario under aligned and malicious
prompts), :mod:`.activations` (response-mean activations, all sites in one pass),
:mod:`.sweep` (``locate``), :mod:`.metrics` (held-out probe scores grouped by scenario, the
recommendation), :mod:`.predictors` (where steering will work: the teacher-forced effect of a
small push, difference consistency, sign split; ``result.predictor("tf_effect")``), :mod:`.result` (``LocateResult``, ``sweep.json``), :mod:`.plots`,
:mod:`.cli` (``lensteer locate``). ``lensteer.activations``, ``lensteer.contrastive`` and
``lensteer.plots`` still import from their old paths.
"""
from .activations import PooledActivations, collect_activations, resolve_sites
from .contrastive import ALIGNED, MALICIOUS, NEUTRAL, Sample, build_contrastive, build_neutral
from .metrics import SEPARABLE_AUROC, cross_validate, recommend
from .predictors import DEFAULT_PREDICTOR, PREDICTORS, teacher_forced_effect
from .result import FORMAT_VERSION, LocateResult, LocateRow
from .sweep import locate

__all__ = [
    "ALIGNED",
    "DEFAULT_PREDICTOR",
    "FORMAT_VERSION",
    "MALICIOUS",
    "NEUTRAL",
    "PREDICTORS",
    "SEPARABLE_AUROC",
    "LocateResult",
    "LocateRow",
    "PooledActivations",
    "Sample",
    "build_contrastive",
    "build_neutral",
    "collect_activations",
    "cross_validate",
    "locate",
    "recommend",
    "resolve_sites",
    "teacher_forced_effect",
]
