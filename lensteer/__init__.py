"""lensteer: locate misalignment directions in a language model and steer them at run time.

>>> import lensteer
>>> sorted(m["name"] for m in lensteer.bundled_models())
['organism', 'smollm2-135m-instruct', 'smollm2-persona']
"""
from .chat import ChatTokens, MessageSpan, format_chat
from .directions import (
    TokenStats,
    TraitDirection,
    fit_direction,
    fit_logistic,
    mean_difference,
    pca_direction,
)
from .errors import LensteerError
from .generation import ChatSession, Generation, GenSettings, generate
from .hooks import HOOK_POINTS, canonical_name, check_model, hook_name, legacy_name
from .layers import parse_layers
from .locate import LocateResult, LocateRow, PooledActivations, collect_activations, locate
from .models import ModelInfo, bundled_models, load_model, model_info
from .steering import (
    Ablation,
    StMP,
    StTP,
    SwFC,
    Telemetry,
    export_vllm,
    load_steerer,
    save_steerer,
    steer,
)
from .traits import Scenario, Trait, load_trait

__version__ = "0.1.0"

__all__ = [
    "Ablation",
    "StMP",
    "StTP",
    "SwFC",
    "Telemetry",
    "export_vllm",
    "load_steerer",
    "save_steerer",
    "steer",
    "HOOK_POINTS",
    "ChatTokens",
    "GenSettings",
    "ChatSession",
    "Generation",
    "LensteerError",
    "LocateResult",
    "LocateRow",
    "MessageSpan",
    "ModelInfo",
    "PooledActivations",
    "Scenario",
    "TokenStats",
    "Trait",
    "TraitDirection",
    "bundled_models",
    "canonical_name",
    "check_model",
    "collect_activations",
    "fit_direction",
    "fit_logistic",
    "format_chat",
    "generate",
    "hook_name",
    "legacy_name",
    "load_model",
    "load_trait",
    "locate",
    "mean_difference",
    "model_info",
    "parse_layers",
    "pca_direction",
]
