"""Pooled activations: the mean over each response's tokens, for many hook points in one pass.

:func:`collect_activations` runs one forward pass per batch, whatever the number of layers and
hook points. Each hook reduces its ``[batch, pos, d_model]`` activation to per-sample sums over
the pooling span while the pass streams, so memory is O(samples × sites × d_model); the pass
stops after the deepest requested block (no unembedding). Sequences are left-padded and the
attention mask is passed to the model, so padding never enters a mean. Optionally the hooks
also keep, per token of the span, the projections onto given directions (for per-token
statistics and gate rates). Everything is float32 whatever the model dtype.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> acts = collect_activations(model, [[1, 5, 6, 7], [1, 8, 9]], [(2, 4), (1, 3)], layers=[0, 2])
>>> acts.sites
['blocks.0.hook_resid_post', 'blocks.2.hook_resid_post']
>>> acts.at("blocks.0.hook_resid_post").shape, acts.n_tokens.tolist()
(torch.Size([2, 128]), [2, 2])

Padding never enters a mean: the first sample pooled alone gives the same vector.

>>> alone = collect_activations(model, [[1, 5, 6, 7]], [(2, 4)], layers=[2])
>>> torch.allclose(alone.at((2, "resid_post"))[0], acts.at((2, "resid_post"))[0], atol=1e-4)
True
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from ..directions import project
from ..errors import ActivationError
from ..generation import left_pad, pad_token_id
from ..hooks import HOOK_POINTS, hook_name, legacy_name, parse_hook_name, resolve_hook
from ..protocols import LensModel, model_device


@dataclass
class PooledActivations:
    """Response-mean activations for every sample and site (hook point), float32.

    ``projections[site][i]`` holds, for sample ``i``, the per-token projections onto the
    directions given for ``site``: a ``[n_tokens_i, k]`` tensor (only when directions were
    given).
    """

    sites: list[str]
    means: Float[Tensor, "sample site d_model"]
    n_tokens: Int[Tensor, " sample"]
    projections: dict[str, list[Float[Tensor, "_tokens k"]]] = field(default_factory=dict)

    def index(self, site: str | tuple[int, str]) -> int:
        """Column of ``site`` (a legacy hook name or ``(layer, point)``)."""
        if isinstance(site, tuple):
            site = f"blocks.{site[0]}.hook_{site[1]}"
        try:
            return self.sites.index(site)
        except ValueError:
            raise ActivationError(
                f"{site!r} was not collected; collected sites: {', '.join(self.sites)}."
            ) from None

    def at(self, site: str | tuple[int, str]) -> Float[Tensor, "sample d_model"]:
        """The ``[samples, d_model]`` means of one site."""
        return self.means[:, self.index(site)]

    def __len__(self) -> int:
        return int(self.means.shape[0])


def resolve_sites(
    model: LensModel,
    layers: Sequence[int] | None = None,
    points: Sequence[str] | str = ("resid_post",),
) -> list[str]:
    """Legacy hook names for ``layers`` (default: all) × ``points``, layer-major.

    >>> from lensteer.hooks import _FakeModel
    >>> resolve_sites(_FakeModel(2), points=["resid_post", "mlp_out"])
    ['blocks.0.hook_resid_post', 'blocks.0.hook_mlp_out', 'blocks.1.hook_resid_post', 'blocks.1.hook_mlp_out']
    """
    if isinstance(points, str):
        points = [points]
    if layers is None:
        layers = range(int(model.cfg.n_layers))
    return [hook_name(model, int(layer), point) for layer in layers for point in points]


def _as_matrix(value: Any, d_model: int, site: str) -> Tensor:
    """Directions for one site as a float32 ``[k, d_model]`` matrix."""
    if isinstance(value, (list, tuple)):
        rows = [_as_matrix(v, d_model, site) for v in value]
        return torch.cat(rows) if rows else torch.zeros(0, d_model)
    v = getattr(value, "v_hat", value)
    t = torch.as_tensor(v).detach().to(torch.float32).cpu()
    t = t.unsqueeze(0) if t.ndim == 1 else t
    if t.ndim != 2 or t.shape[1] != d_model:
        raise ActivationError(
            f"Directions for {site} must have width d_model = {d_model}; got shape {tuple(t.shape)}."
        )
    return t


def collect_activations(
    model: LensModel,
    input_ids: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    *,
    layers: Sequence[int] | None = None,
    points: Sequence[str] | str = ("resid_post",),
    sites: Sequence[str] | None = None,
    directions: Mapping[str, Any] | None = None,
    batch_size: int = 8,
    names: Sequence[str] | None = None,
    progress: bool | None = None,
    stop_early: bool = True,
) -> PooledActivations:
    """Mean activation over ``input_ids[i][start:end]`` for every site, in one pass per batch.

    Args:
        input_ids: one token list per sample (a full conversation: prompt and response).
        spans: the half-open token span ``(start, end)`` to pool for each sample, e.g.
            ``Generation.response_span``. An empty span is an error naming the sample.
        layers, points: the sites (default: every layer's ``resid_post``); or give ``sites``,
            a list of hook names, instead.
        directions: ``{site: TraitDirection | Tensor[d_model] | Tensor[k, d_model] | list}``;
            per-token projections onto them over each span are returned in ``projections``.
        names: a label per sample (e.g. its scenario) used in error messages.
        stop_early: stop the forward pass after the deepest requested block.

    Returns a :class:`PooledActivations`, samples in input order.
    """
    n = len(input_ids)
    if len(spans) != n:
        raise ActivationError(f"Got {n} token sequences but {len(spans)} spans: give one span each.")
    if names is not None and len(names) != n:
        raise ActivationError(f"Got {n} token sequences but {len(names)} names.")
    if n == 0:
        raise ActivationError("No samples to collect activations for.")
    if batch_size < 1:
        raise ActivationError(f"batch_size must be at least 1, got {batch_size}.")
    label = (lambda i: f"sample {i} ({names[i]!r})") if names is not None else (lambda i: f"sample {i}")
    rows = [list(map(int, ids)) for ids in input_ids]
    bounds = []
    for i, (ids, span) in enumerate(zip(rows, spans)):
        start, end = int(span[0]), int(span[1])
        if not 0 <= start <= end <= len(ids):
            raise ActivationError(
                f"The span ({start}, {end}) of {label(i)} lies outside its {len(ids)} tokens."
            )
        if end == start:
            raise ActivationError(
                f"The response of {label(i)} has zero tokens, so it has no mean activation. Drop "
                "it, or generate with more max_new_tokens / a prompt that gets an answer."
            )
        bounds.append((start, end))

    site_list = [legacy_name(model, resolve_hook(model, s)) for s in sites] if sites else (
        resolve_sites(model, layers, points)
    )
    d_model = int(model.cfg.d_model)
    matrices = {}
    for site, value in (directions or {}).items():
        key = legacy_name(model, resolve_hook(model, site))
        matrices[key] = _as_matrix(value, d_model, key)
        if key not in site_list:
            site_list.append(key)
    if len(set(site_list)) != len(site_list):
        raise ActivationError(f"Duplicate hook points requested: {site_list}.")
    layers_used = [parse_hook_name(s)[0] for s in site_list]
    stop = max(layers_used) + 1 if stop_early else None

    means = torch.zeros(n, len(site_list), d_model, dtype=torch.float32)
    projections: dict[str, list[Tensor]] = {s: [torch.empty(0)] * n for s in matrices}
    device = model_device(model)
    pad_id = pad_token_id(model)
    order = sorted(range(n), key=lambda i: len(rows[i]))
    batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    show = progress if progress is not None else len(batches) > 1

    with torch.no_grad():
        for batch in tqdm(batches, desc="activations", disable=not show):
            tokens, mask = left_pad([rows[i] for i in batch], pad_id)
            width = tokens.shape[1]
            weights = torch.zeros(len(batch), width, dtype=torch.float32)
            token_spans = []
            for r, i in enumerate(batch):
                offset = width - len(rows[i])
                a, b = offset + bounds[i][0], offset + bounds[i][1]
                weights[r, a:b] = 1.0 / (b - a)
                token_spans.append((a, b))
            weights = weights.to(device)
            index = torch.tensor(batch)
            fwd_hooks = [
                (site, _pooling_hook(j, site, weights, index, means, token_spans, matrices, projections))
                for j, site in enumerate(site_list)
            ]
            _run(model, tokens.to(device), mask.to(device), fwd_hooks, stop)

    bad = ~torch.isfinite(means).all(dim=2)
    if bad.any():
        i, j = (int(x) for x in bad.nonzero()[0])
        raise ActivationError(
            f"Non-finite activations (NaN or inf) at {site_list[j]} for {label(i)} "
            f"({int(bad.sum())} sample-sites in all). Load the model in float32."
        )
    n_tokens = torch.tensor([b - a for a, b in bounds])
    return PooledActivations(site_list, means, n_tokens, projections)


def _pooling_hook(j, site, weights, index, means, token_spans, matrices, projections):
    """A hook that adds its site's weighted sums into ``means[index, j]`` (and projections)."""
    matrix = matrices.get(site)

    def hook(activation: Tensor, hook: Any) -> Tensor:
        x = activation.to(torch.float32)
        if x.shape[:2] != weights.shape:
            raise ActivationError(
                f"Hook {site} saw shape {tuple(x.shape)}, expected [batch, pos, d_model] with "
                f"[batch, pos] = {tuple(weights.shape)}."
            )
        pooled = torch.bmm(weights.unsqueeze(1), x).squeeze(1)  # [batch, d_model]
        means[index, j] = pooled.cpu()
        if matrix is not None:
            proj = project(x, matrix.T)  # [batch, pos, k]
            for r, (a, b) in enumerate(token_spans):
                projections[site][int(index[r])] = proj[r, a:b].cpu()
        return activation

    return hook


class _StopForward(Exception):
    """Raised by the last hook to end a forward pass once every requested site has been seen."""


def _stop_hook(activation: Tensor, hook: Any) -> Tensor:
    raise _StopForward


def _run(model: LensModel, tokens: Tensor, mask: Tensor, fwd_hooks: list, stop: int | None) -> None:
    """One forward pass with hooks; with ``stop``, it ends after block ``stop - 1``.

    Stopping is a hook on that block's ``resid_post`` (registered last, so it fires after every
    pooling hook) that raises: the rest of the network and the unembedding never run. The hook
    context removes all hooks either way.
    """
    if stop is not None:
        fwd_hooks = fwd_hooks + [(f"blocks.{stop - 1}.hook_resid_post", _stop_hook)]
    try:
        model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, attention_mask=mask)
    except _StopForward:
        pass


__all__ = ["HOOK_POINTS", "PooledActivations", "collect_activations", "resolve_sites"]
