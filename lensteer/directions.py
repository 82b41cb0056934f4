"""Trait directions: v̂ and the statistics that steering rules need, with persistence.

A :class:`TraitDirection` holds, for one layer and hook point, the unit direction ``v_hat``
pointing to the aligned side, the decision boundary ``m`` in projection units, and the means
and standard deviations of aligned (``pos``) and malicious (``neg``) projections
(DESIGN.md §1.2). It remembers the model it came from; using it on another model is an error.

>>> import torch
>>> d = TraitDirection(v_hat=torch.tensor([1.0, 0.0]), boundary=0.0, mu_pos=2.0, sigma_pos=0.5,
...                    mu_neg=-2.0, sigma_neg=0.5, layer=0, hook="blocks.0.hook_resid_post")
>>> d.delta_mu
4.0
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from . import io
from .errors import LensteerError
from .models import ModelInfo, model_info

FORMAT_VERSION = 1


class DirectionMismatchError(LensteerError, ValueError):
    """A direction used on a model (or layer) it was not fitted for."""


@dataclass
class TokenStats:
    """Statistics of *per-token* projections (the response-mean ones live on the direction).

    ``quantiles_pos[q]`` is the q-th percentile (q = 0…100) of aligned per-token projections;
    likewise ``quantiles_neg`` for malicious ones.
    """

    mu_pos: float
    sigma_pos: float
    mu_neg: float
    sigma_neg: float
    quantiles_pos: list[float]
    quantiles_neg: list[float]

    def percentile_pos(self, q: float) -> float:
        """Linear interpolation of the aligned per-token projection percentile ``q`` ∈ [0, 100]."""
        if not 0 <= q <= 100:
            raise ValueError(f"A percentile must lie in [0, 100], got {q}.")
        lo = int(math.floor(q))
        hi = min(lo + 1, 100)
        return self.quantiles_pos[lo] + (q - lo) * (self.quantiles_pos[hi] - self.quantiles_pos[lo])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TokenStats":
        return cls(**data)


@dataclass
class TraitDirection:
    """A unit direction at one hook point plus the projection statistics (DESIGN.md §1.2)."""

    v_hat: Float[Tensor, "d_model"]
    boundary: float
    mu_pos: float
    sigma_pos: float
    mu_neg: float
    sigma_neg: float
    layer: int
    hook: str  # legacy TransformerLens name, e.g. "blocks.3.hook_resid_post"
    hook_canonical: str = ""
    method: str = "logistic"
    trait: str = ""
    model: dict[str, Any] = field(default_factory=dict)  # ModelInfo.to_dict()
    data_hash: str = ""
    token_stats: TokenStats | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = torch.as_tensor(self.v_hat).detach().to(torch.float32).flatten().cpu()
        if not torch.isfinite(v).all():
            raise ValueError("The direction v_hat contains NaN or infinite values.")
        norm = float(v.norm())
        if norm < 1e-12:
            raise ValueError("The direction v_hat is zero; it cannot define a projection.")
        self.v_hat = v / norm
        for name in ("boundary", "mu_pos", "sigma_pos", "mu_neg", "sigma_neg"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"The direction's {name} is {value}; statistics must be finite.")
            setattr(self, name, value)

    @property
    def delta_mu(self) -> float:
        """``μ⁺ − μ⁻``: the gap between aligned and malicious mean projections."""
        return self.mu_pos - self.mu_neg

    @property
    def d_model(self) -> int:
        return int(self.v_hat.shape[0])

    # ------------------------------------------------------------------ model compatibility
    def check_model(self, model: Any, *, strict: bool = True) -> None:
        """Raise :class:`DirectionMismatchError` unless this direction fits ``model``.

        A different ``d_model`` or a layer the model lacks is always an error; a different model
        name or depth is an error unless ``strict=False``.
        """
        info = model_info(model)
        if info.d_model != self.d_model:
            raise DirectionMismatchError(
                f"This direction has d_model {self.d_model} but the model has {info.d_model}: it "
                f"was fitted on {self.model.get('name', 'another model')!r}. Fit a direction on "
                "this model with lensteer.locate."
            )
        if not 0 <= self.layer < info.n_layers:
            raise DirectionMismatchError(
                f"This direction is for layer {self.layer}, but the model has layers 0 to "
                f"{info.n_layers - 1}."
            )
        if strict and self.model:
            mine = ModelInfo.from_dict(self.model)
            if not mine.same_model(info):
                raise DirectionMismatchError(
                    f"This direction was fitted on {mine.name!r} ({mine.n_layers} layers) but the "
                    f"model is {info.name!r} ({info.n_layers} layers). Pass strict=False if you "
                    "really mean to transfer it."
                )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Everything but ``v_hat`` as JSON-ready data (``v_hat`` as a list under its key)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["v_hat"] = self.v_hat.tolist()
        data["token_stats"] = self.token_stats.to_dict() if self.token_stats else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TraitDirection":
        data = dict(data)
        data["v_hat"] = torch.as_tensor(data["v_hat"], dtype=torch.float32)
        if data.get("token_stats") is not None:
            data["token_stats"] = TokenStats.from_dict(data["token_stats"])
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | os.PathLike) -> None:
        """Write one ``.safetensors`` file (v̂ as a tensor, the rest as JSON metadata)."""
        meta = self.to_dict()
        meta.pop("v_hat")
        meta["format_version"] = FORMAT_VERSION
        meta["kind"] = "lensteer.TraitDirection"
        io.save_tensors(path, {"v_hat": self.v_hat}, meta)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, model: Any = None, strict: bool = True
    ) -> "TraitDirection":
        """Read a direction saved by :meth:`save`; with ``model``, check it fits that model."""
        tensors, meta = io.load_tensors(path)
        if meta.get("kind") != "lensteer.TraitDirection":
            raise ValueError(f"{path} is not a lensteer TraitDirection artifact.")
        meta = {k: v for k, v in meta.items() if k not in ("format_version", "kind")}
        direction = cls.from_dict({**meta, "v_hat": tensors["v_hat"]})
        if model is not None:
            direction.check_model(model, strict=strict)
        return direction

    def project(self, activations: Float[Tensor, "... d_model"]) -> Float[Tensor, "..."]:
        """``⟨h, v̂⟩`` in float32 for any batch of activations."""
        return activations.to(torch.float32) @ self.v_hat.to(activations.device)
