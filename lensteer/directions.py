"""Trait directions: v̂ and the statistics that steering rules need, with persistence.

A :class:`TraitDirection` holds, for one layer and hook point, the unit direction ``v_hat``
pointing to the aligned side, the decision boundary ``m`` in projection units, and the means
and standard deviations of aligned (``pos``) and malicious (``neg``) projections
(docs/concepts.md, *A direction and five numbers per layer*). It remembers the model it came from; using it on another model is an error.
:func:`fit_direction` fits one on response embeddings by logistic regression (the paper's),
mean difference (CAA) or PCA of paired differences (RepE); :func:`lensteer.locate` does so at
every layer.

>>> import torch
>>> d = TraitDirection(v_hat=torch.tensor([1.0, 0.0]), boundary=0.0, mu_pos=2.0, sigma_pos=0.5,
...                    mu_neg=-2.0, sigma_neg=0.5, layer=0, hook="blocks.0.hook_resid_post")
>>> d.delta_mu
4.0
"""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from . import io
from .errors import ArtifactError, FitError, LensteerError
from .models import ModelInfo, model_info
from .protocols import HasConfig, LensModel

FORMAT_VERSION = 1


def quantile(table: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (q ∈ [0, 100]) by linear interpolation in a 101-entry table of
    percentiles 0, 1, …, 100 — the one interpolation lensteer uses.

    >>> quantile([float(i) for i in range(101)], 12.5)
    12.5
    """
    if not 0 <= q <= 100:
        raise ValueError(f"A percentile must lie in [0, 100], got {q}.")
    lo = int(math.floor(q))
    hi = min(lo + 1, 100)
    return float(table[lo] + (q - lo) * (table[hi] - table[lo]))


def project(h: Float[Tensor, "... d_model"], v_hat: Float[Tensor, " d_model"] | Float[Tensor, "d_model k"]
            ) -> Float[Tensor, " ..."] | Float[Tensor, "... k"]:
    """``⟨h, v̂⟩`` in float32 — the one projection: for a direction ``[d_model]`` one number per
    row of ``h``, for ``k`` directions as columns ``[d_model, k]`` one per direction."""
    return h.to(torch.float32) @ v_hat.to(device=h.device, dtype=torch.float32)


class InvalidDirectionError(LensteerError, ValueError):
    """A direction whose numbers cannot define a projection (NaN, infinite or zero)."""


class DirectionMismatchError(LensteerError, ValueError):
    """A direction used on a model (or layer) it was not fitted for."""


def unit_vector(v: Any) -> Float[Tensor, " d_model"]:
    """``v / ‖v‖`` as a flat float32 CPU tensor — the one v̂ normalisation (directions, steerers);
    NaN, infinite or zero vectors raise :class:`InvalidDirectionError`. A vector already of unit
    norm (within float32 rounding) comes back bit for bit: dividing it by its norm again would
    move its last bits, so a direction saved and loaded would steer (and fingerprint) differently.

    >>> v = unit_vector(torch.randn(576))
    >>> torch.equal(unit_vector(v), v)
    True
    """
    v = torch.as_tensor(v).detach().to(torch.float32).flatten().cpu()
    if not torch.isfinite(v).all():
        raise InvalidDirectionError(
            "The direction v_hat contains NaN or infinite values: refit it from finite "
            "activations (lensteer.locate checks them)."
        )
    norm = float(v.norm())
    if norm < 1e-12:
        raise InvalidDirectionError(
            "The direction v_hat is zero, so it defines no projection: the two classes had "
            "identical means, or the direction was not fitted."
        )
    if abs(norm - 1.0) <= 1e-6:
        return v.clone()
    return v / norm


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
        return quantile(self.quantiles_pos, q)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenStats:
        return cls(**data)


@dataclass
class TraitDirection:
    """A unit direction at one hook point plus the projection statistics (docs/concepts.md, *A direction and five numbers per layer*)."""

    v_hat: Float[Tensor, " d_model"]
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
        self.v_hat = unit_vector(self.v_hat)
        for name in ("boundary", "mu_pos", "sigma_pos", "mu_neg", "sigma_neg"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise InvalidDirectionError(
                    f"The direction's {name} is {value}; statistics must be finite."
                )
            setattr(self, name, value)

    @property
    def delta_mu(self) -> float:
        """``μ⁺ − μ⁻``: the gap between aligned and malicious mean projections."""
        return self.mu_pos - self.mu_neg

    @property
    def d_model(self) -> int:
        return int(self.v_hat.shape[0])

    # ------------------------------------------------------------------ model compatibility
    def check_model(self, model: HasConfig, *, strict: bool = True) -> None:
        """Raise :class:`DirectionMismatchError` unless this direction fits ``model``.

        A different ``d_model`` or a layer the model lacks is always an error; a different model
        name, depth or weight fingerprint (:meth:`ModelInfo.mismatch`) is an error unless
        ``strict=False``.
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
            why = ModelInfo.from_dict(self.model).mismatch(info)
            if why is not None:
                raise DirectionMismatchError(
                    f"This direction was fitted on {why}. Pass strict=False if you really mean to "
                    "transfer it."
                )

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Everything but ``v_hat`` as JSON-ready data (``v_hat`` as a list under its key)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["v_hat"] = self.v_hat.tolist()
        data["token_stats"] = self.token_stats.to_dict() if self.token_stats else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraitDirection:
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
        cls, path: str | os.PathLike, *, model: LensModel | None = None, strict: bool = True
    ) -> TraitDirection:
        """Read a direction saved by :meth:`save`; with ``model``, check it fits that model."""
        tensors, meta = io.load_tensors(path)
        if not isinstance(meta, dict) or meta.get("kind") != "lensteer.TraitDirection":
            raise ArtifactError(f"{path} is not a lensteer TraitDirection artifact.")
        meta = {k: v for k, v in meta.items() if k not in ("format_version", "kind")}
        with artifact_fields(path):
            direction = cls.from_dict({**meta, "v_hat": tensors["v_hat"]})
            if type(direction.layer) is not int or not isinstance(direction.hook, str):
                raise TypeError(f"layer must be an integer and hook a string, got "
                                f"{direction.layer!r} and {direction.hook!r}")
            if model is not None:
                direction.check_model(model, strict=strict)
        return direction

    def project(self, activations: Float[Tensor, "... d_model"]) -> Float[Tensor, " ..."]:
        """``⟨h, v̂⟩`` in float32 for any batch of activations (:func:`project`)."""
        return project(activations, self.v_hat)


@contextlib.contextmanager
def artifact_fields(path: str | os.PathLike) -> Iterator[None]:
    """Turn a missing or mistyped field while rebuilding an object from the file at ``path``
    into an :class:`ArtifactError` naming the file."""
    try:
        yield
    except LensteerError:
        raise
    except KeyError as error:
        raise ArtifactError(f"{path} lacks the field {error}: it is damaged or was not written "
                            "by lensteer; write it again.") from None
    except TypeError as error:
        if "missing" in str(error):
            raise ArtifactError(f"{path} lacks a field ({error}): it is damaged or was not "
                                "written by lensteer; write it again.") from None
        raise ArtifactError(f"{path} has a field of the wrong type ({error}): it is damaged or "
                            "was not written by lensteer; write it again.") from None
    except (ValueError, AttributeError) as error:
        raise ArtifactError(f"{path} has a field of the wrong type or value ({error}): it is "
                            "damaged or was not written by lensteer; write it again.") from None


# ====================================================================== fitting
# The malicious embeddings' width is annotated ``_d_model``: jaxtyping leaves it to
# _check_classes, whose FitError says that the two classes come from different hook points.
#: The fitting methods :func:`fit_direction` knows.
FIT_METHODS = ("logistic", "mean_diff", "pca")
METHODS = FIT_METHODS  # the old name


def _as_f32(x: Any, what: str) -> Tensor:
    t = torch.as_tensor(x).detach().to(torch.float32).cpu()
    if t.ndim != 2:
        raise FitError(f"{what} must be a 2-D [samples, d_model] array, got shape {tuple(t.shape)}.")
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).any(dim=1).sum())
        raise FitError(
            f"{what} contains NaN or infinite values in {bad} of {t.shape[0]} samples. Check the "
            "model's dtype (float16 overflows are common: load it with dtype=torch.float32)."
        )
    return t


def _check_classes(pos: Tensor, neg: Tensor, minimum: int = 2) -> None:
    if pos.shape[1] != neg.shape[1]:
        raise FitError(
            f"Aligned and malicious embeddings have different widths ({pos.shape[1]} vs "
            f"{neg.shape[1]}): they must come from the same hook point."
        )
    for label, t in (("aligned (class 1)", pos), ("malicious (class 0)", neg)):
        if t.shape[0] < minimum:
            raise FitError(
                f"Only {t.shape[0]} {label} samples: a direction needs at least {minimum} samples "
                "of each class. Single-class data cannot define a direction; add scenarios or "
                "check the labels."
            )


def fit_logistic(
    pos: Float[Tensor, "n_pos d_model"],
    neg: Float[Tensor, "n_neg _d_model"],
    *,
    C: float = 1.0,
    max_iter: int = 5000,
) -> tuple[Float[Tensor, " d_model"], float]:
    """The paper's probe: L2 logistic regression (sklearn, lbfgs), aligned = class 1.

    Returns ``(w, b)`` so that the logit of ``x`` is ``⟨w, x⟩ + b``.

    >>> pos = torch.tensor([[2.0, 0.1], [3.0, -0.2], [2.5, 0.0]])
    >>> w, b = fit_logistic(pos, -pos)
    >>> bool(w[0] > 0)
    True
    """
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    pos, neg = _as_f32(pos, "aligned embeddings"), _as_f32(neg, "malicious embeddings")
    _check_classes(pos, neg)
    x = torch.cat([pos, neg]).double().numpy()
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    clf = LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter)
    # One BLAS thread: these problems are small, and multi-threaded BLAS on a busy machine is
    # ~10x slower here (threads spin while waiting).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    coef, intercept = np.asarray(clf.coef_), np.asarray(clf.intercept_)
    return torch.from_numpy(coef[0].copy()).to(torch.float32), float(intercept[0])


def mean_difference(
    pos: Float[Tensor, "n_pos d_model"], neg: Float[Tensor, "n_neg _d_model"]
) -> Float[Tensor, " d_model"]:
    """CAA / persona-vector direction: ``mean(pos) − mean(neg)`` (not normalised).

    >>> mean_difference(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 1.0]])).tolist()
    [1.0, 1.0]
    """
    pos, neg = _as_f32(pos, "aligned embeddings"), _as_f32(neg, "malicious embeddings")
    _check_classes(pos, neg, minimum=1)
    return pos.mean(0) - neg.mean(0)


def pca_direction(
    pos: Float[Tensor, "n_pos d_model"], neg: Float[Tensor, "n_neg _d_model"]
) -> Float[Tensor, " d_model"]:
    """RepE direction: first principal component of paired differences ``pos[i] − neg[i]``
    (``n_pos`` must equal ``n_neg``; unequal counts raise :class:`FitError`).

    The pairs are symmetrised (each difference with both signs, as RepE's random pair order
    does on average), so the component is the top right singular vector of the difference
    matrix; its sign is chosen so that the mean difference projects positively.

    >>> pca_direction(torch.tensor([[2.0, 0.0], [3.0, 1.0]]), torch.zeros(2, 2)).shape
    torch.Size([2])
    """
    pos, neg = _as_f32(pos, "aligned embeddings"), _as_f32(neg, "malicious embeddings")
    if pos.shape != neg.shape:
        raise FitError(
            f"PCA of paired differences needs one malicious sample per aligned sample, in the "
            f"same order; got {pos.shape[0]} aligned and {neg.shape[0]} malicious."
        )
    _check_classes(pos, neg, minimum=1)
    diffs = (pos - neg).double()
    _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
    v = vh[0]
    if float(diffs.mean(0) @ v) < 0:
        v = -v
    return v.to(torch.float32)


def projection_stats(
    pos_proj: Float[Tensor, " n_pos"], neg_proj: Float[Tensor, " n_neg"]
) -> dict[str, float]:
    """μ±, σ± (sample std, ddof = 1; 0 for a single sample) and Cohen's d (pooled sd).

    >>> s = projection_stats(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, -3.0]))
    >>> s["mu_pos"], s["sigma_pos"], round(s["cohens_d"], 3)
    (2.0, 1.4142135381698608, 2.828)
    """
    pos_proj, neg_proj = pos_proj.to(torch.float32), neg_proj.to(torch.float32)

    def sd(x: Tensor) -> float:
        return float(x.std()) if x.numel() > 1 else 0.0

    n1, n2 = pos_proj.numel(), neg_proj.numel()
    s1, s2 = sd(pos_proj), sd(neg_proj)
    dof = n1 + n2 - 2
    pooled = math.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / dof) if dof > 0 else 0.0
    mu1, mu2 = float(pos_proj.mean()), float(neg_proj.mean())
    gap = mu1 - mu2
    d = gap / pooled if pooled > 0 else (math.copysign(math.inf, gap) if gap else 0.0)
    return {"mu_pos": mu1, "sigma_pos": s1, "mu_neg": mu2, "sigma_neg": s2, "cohens_d": d}


def token_stats(
    pos_tokens: Float[Tensor, " n_pos_tokens"], neg_tokens: Float[Tensor, " n_neg_tokens"]
) -> TokenStats:
    """:class:`TokenStats` from per-token projections of aligned and malicious responses.

    >>> ts = token_stats(torch.arange(101.0), -torch.arange(101.0))
    >>> ts.percentile_pos(10), ts.mu_neg
    (10.0, -50.0)
    """
    qs = torch.linspace(0, 1, 101, dtype=torch.float64)
    out = {}
    for key, x in (("pos", pos_tokens), ("neg", neg_tokens)):
        x = torch.as_tensor(x).to(torch.float32).flatten()
        if x.numel() == 0:
            raise FitError(f"No per-token projections for the {key} class: token statistics need tokens.")
        out[f"mu_{key}"] = float(x.mean())
        out[f"sigma_{key}"] = float(x.std()) if x.numel() > 1 else 0.0
        out[f"quantiles_{key}"] = torch.quantile(x.double(), qs).tolist()
    return TokenStats(**out)


def embeddings_hash(*arrays: Tensor) -> str:
    """A short sha256 of float32 arrays (what a direction was fitted on)."""
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        t = torch.as_tensor(a).detach().to(torch.float32).contiguous().cpu()
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def fit_direction(
    pos: Float[Tensor, "n_pos d_model"],
    neg: Float[Tensor, "n_neg _d_model"],
    *,
    method: str = "logistic",
    layer: int = 0,
    hook: str | None = None,
    model: LensModel | None = None,
    trait: str = "",
    data_hash: str | None = None,
    C: float = 1.0,
    extra: dict[str, Any] | None = None,
) -> TraitDirection:
    """Fit a :class:`TraitDirection` on response embeddings (docs/concepts.md, *A direction and five numbers per layer*), in float32.

    ``method``: ``"logistic"`` (the paper's: v̂ = w/‖w‖, m = −b/‖w‖), ``"mean_diff"`` (CAA)
    or ``"pca"`` (RepE; ``pos[i]`` and ``neg[i]`` must be a pair). For the last two, which have
    no intercept, m is the midpoint ``(μ⁺ + μ⁻)/2``. ``model`` (optional) records the model's
    identity and the canonical hook name.

    >>> g = torch.Generator().manual_seed(0)
    >>> pos = torch.randn(20, 4, generator=g) + torch.tensor([2.0, 0, 0, 0])
    >>> neg = torch.randn(20, 4, generator=g) - torch.tensor([2.0, 0, 0, 0])
    >>> d = fit_direction(pos, neg, layer=3)
    >>> d.hook, d.mu_pos > d.boundary > d.mu_neg, d.v_hat[0] > 0.8
    ('blocks.3.hook_resid_post', True, tensor(True))
    """
    if method not in FIT_METHODS:
        raise FitError(f"Unknown fitting method {method!r}; choose from {FIT_METHODS}.")
    pos, neg = _as_f32(pos, "aligned embeddings"), _as_f32(neg, "malicious embeddings")
    _check_classes(pos, neg, minimum=2)
    hook = hook or f"blocks.{layer}.hook_resid_post"
    fit_extra: dict[str, Any] = {"n_pos": int(pos.shape[0]), "n_neg": int(neg.shape[0])}
    if method == "logistic":
        w, b = fit_logistic(pos, neg, C=C)
        norm = float(w.norm())
        if norm < 1e-12:
            raise FitError("The logistic regression found no direction (w = 0): the classes coincide.")
        v_hat, boundary = w / norm, -b / norm
        fit_extra.update(C=C, w_norm=norm, intercept=b)
    else:
        v = mean_difference(pos, neg) if method == "mean_diff" else pca_direction(pos, neg)
        if float(v.norm()) < 1e-12:
            raise FitError(f"The {method} direction is zero: the class means coincide.")
        v_hat, boundary = v / v.norm(), None
    stats = projection_stats(project(pos, v_hat), project(neg, v_hat))
    if boundary is None:
        boundary = (stats["mu_pos"] + stats["mu_neg"]) / 2
    d = stats.pop("cohens_d")
    fit_extra["cohens_d"] = d if math.isfinite(d) else None
    fit_extra.update(extra or {})
    info: dict[str, Any] = {}
    canonical = ""
    if model is not None:
        from .hooks import canonical_name

        info = model_info(model).to_dict()
        canonical = canonical_name(model, hook)
    return TraitDirection(
        v_hat=v_hat,
        boundary=boundary,
        layer=layer,
        hook=hook,
        hook_canonical=canonical,
        method=method,
        trait=trait,
        model=info,
        data_hash=data_hash or embeddings_hash(pos, neg),
        extra=fit_extra,
        mu_pos=stats["mu_pos"],
        sigma_pos=stats["sigma_pos"],
        mu_neg=stats["mu_neg"],
        sigma_neg=stats["sigma_neg"],
    )
