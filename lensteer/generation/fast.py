"""The fast generation path: a plain Hugging Face model that shares the Bridge's weights.

The Bridge's forward costs 1.14–1.26× Hugging Face's (docs/performance.md). For steering hooks on
the residual stream (``resid_post`` = output of decoder layer ℓ, ``resid_pre`` = its input),
:func:`lensteer.generate` runs a lean decoding loop on a Hugging Face model built on the meta
device and given the Bridge's own parameter tensors (no copy), with each hook's body
(:class:`lensteer.runtime.SteeringHook`) attached as a torch forward hook on
``model.layers[ℓ]``. The hook objects are the very ones registered on the Bridge; only the
attachment differs (:mod:`lensteer.generation.policy` decides when this path is taken). The loop mirrors the Bridge's ``generate`` (mask-derived
position ids, the same sampling function, finished rows padded with eos), so greedy outputs are
token-identical and seeded samples use the random stream the same way.

>>> import lensteer
>>> from lensteer.generation.fast import shared_hf_model
>>> bridge = lensteer.load_model("organism")
>>> hf = shared_hf_model(bridge)
>>> embed = hf.model.embed_tokens.weight
>>> embed.data_ptr() == bridge.original_model.model.embed_tokens.weight.data_ptr()
True
>>> shared_hf_model(bridge) is hf, len(decoder_layers(hf))
(True, 6)
>>> tokens = torch.tensor([[1, 5, 6, 7]])
>>> with torch.no_grad():
...     torch.allclose(hf(tokens).logits, bridge(tokens), atol=1e-4)
True
"""
from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from .. import runtime
from ..protocols import LensModel

#: Hook points that have an exact module equivalent on a Hugging Face decoder.
FAST_POINTS = ("resid_post", "resid_pre")

_SHARED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_MARK = "._original_component"


def supports_fast_path(model: LensModel) -> bool:
    """Whether ``model`` is a Bridge over a Hugging Face decoder with ``model.layers``."""
    hf = getattr(model, "original_model", None)
    layers = getattr(getattr(hf, "model", None), "layers", None)
    return hf is not None and layers is not None and hasattr(hf, "config")


def shared_hf_model(model: LensModel) -> Any:
    """A Hugging Face model of the Bridge's architecture holding the Bridge's tensors (zero copy).

    Built once per Bridge and cached; parameters are the very tensors of
    ``model.original_model``, so later edits to the Bridge's weights are seen here too.
    """
    if model in _SHARED:
        return _SHARED[model]
    if not supports_fast_path(model):
        raise TypeError("The fast path needs a TransformerBridge over a Hugging Face decoder.")
    source: Any = getattr(model, "original_model")  # a Bridge: supports_fast_path checked it
    config = copy.deepcopy(source.config)  # never touch the Bridge's own config
    # Hugging Face's default attention; greedy outputs match the Bridge's (tested on SmolLM2).
    config._attn_implementation = "sdpa" if getattr(type(source), "_supports_sdpa", False) else (
        source.config._attn_implementation
    )
    with torch.device("meta"):
        hf = type(source)(config)
    state = {}
    for key, value in source.state_dict(keep_vars=True).items():
        state.setdefault(key.replace(_MARK, ""), value)
    wanted = hf.state_dict(keep_vars=True)
    missing = [k for k in wanted if k not in state]
    tied = getattr(config, "tie_word_embeddings", False)
    if tied and "lm_head.weight" in missing:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
        missing.remove("lm_head.weight")
    if missing:
        raise RuntimeError(f"Cannot share the Bridge's weights: no tensor for {missing[:3]}.")
    hf.load_state_dict({k: state[k] for k in wanted}, strict=True, assign=True)
    # Non-persistent buffers (rotary inv_freq) are not in the state dict: take the Bridge's.
    source_buffers = {k.replace(_MARK, ""): b for k, b in source.named_buffers()}
    for name, buffer in list(hf.named_buffers()):
        if buffer.is_meta:
            if name not in source_buffers:
                raise RuntimeError(f"Cannot share the Bridge's buffer {name!r}.")
            module_name, _, attr = name.rpartition(".")
            module = hf.get_submodule(module_name) if module_name else hf
            module._buffers[attr] = source_buffers[name]
    for name, module in hf.named_modules():  # rotary embeddings keep a copy of inv_freq
        if hasattr(module, "original_inv_freq") and hasattr(module, "inv_freq"):
            module.original_inv_freq = module.inv_freq
    hf.eval()
    hf.generation_config = source.generation_config
    _SHARED[model] = hf
    return hf


def shared_if_built(model: LensModel) -> Any:
    """The shared Hugging Face model of ``model`` if :func:`shared_hf_model` built one, else None."""
    return _SHARED.get(model)


def decoder_layers(hf: Any) -> Sequence[torch.nn.Module]:
    return hf.model.layers


def attach(
    hf: Any, layer: int, point: str, fn: Callable[[Tensor], Tensor | None]
) -> torch.utils.hooks.RemovableHandle:
    """Attach ``fn(activation) -> activation | None`` to ``point`` of decoder layer ``layer``."""
    module = decoder_layers(hf)[layer]
    if point == "resid_post":

        def post(_module: Any, _args: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                new = fn(output[0])
                return output if new is None else (new, *output[1:])
            new = fn(output)
            return output if new is None else new

        post._lensteer_fast = True  # type: ignore[attr-defined]  # ours: not a foreign hook
        return module.register_forward_hook(post)
    if point == "resid_pre":

        def pre(_module: Any, args: Any, kwargs: Any) -> Any:
            hidden = args[0] if args else kwargs["hidden_states"]
            new = fn(hidden)
            if new is None:
                return None
            if args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}

        pre._lensteer_fast = True  # type: ignore[attr-defined]
        return module.register_forward_pre_hook(pre, with_kwargs=True)
    raise ValueError(f"No module equivalent for hook point {point!r}; use the TransformerLens path.")


def _sample_logits() -> Callable[..., Tensor]:
    """TransformerLens's own sampling function (module moved between 3.9 and 4.x)."""
    try:
        from transformer_lens.utilities import sample_logits  # pyright: ignore[reportPrivateImportUsage]
    except ImportError:  # TransformerLens 3.9 (pyright checks against the installed 4.x)
        from transformer_lens.utils import sample_logits  # pyright: ignore[reportMissingImports]
    return sample_logits


@torch.no_grad()
def generate_tokens(
    hf: Any,
    tokens: Int[Tensor, "batch pos"],
    attention_mask: Int[Tensor, "batch pos"],
    *,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float | None,
    stop_ids: Sequence[int],
    pad_id: int,
    use_kv_cache: bool = True,
    cache: Any = None,
    past_mask: Int[Tensor, "batch past"] | None = None,
    drop_finished: bool = True,
) -> Int[Tensor, "batch total"]:
    """A lean decoding loop that mirrors ``TransformerBridge.generate`` on a Hugging Face model.

    Returns prompt and generated tokens; rows that finished are filled with ``pad_id``. Each
    step is reported to the :func:`lensteer.runtime.on_step` callbacks, which may end rows early.
    ``cache`` (a ``DynamicCache`` holding ``past_mask.shape[1]`` columns, extended in place)
    continues a sequence: ``tokens`` are then only the new columns after the cached ones, and
    ``past_mask`` says which cached columns count (:class:`lensteer.generation.ChatSession`).

    ``drop_finished``: greedy decoding on a cache of its own stops computing rows that finished
    once a quarter of the rows still computed have (their cache rows are dropped; hooks see the
    rows left, :func:`lensteer.runtime.live_rows`); outputs are unchanged. Sampling keeps every
    row, so a seed draws the same random stream as the TransformerLens path.
    """
    from transformers import DynamicCache

    sample_logits = _sample_logits()

    current = tokens
    mask = attention_mask.long()
    if cache is not None:
        if past_mask is None or not use_kv_cache:
            raise ValueError("Continuing on a cache needs past_mask and use_kv_cache=True.")
        mask = torch.cat([past_mask.long().to(mask.device), mask], 1)
    past = 0 if past_mask is None else past_mask.shape[1]
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    stops = torch.tensor(list(stop_ids), device=tokens.device)
    drop = drop_finished and use_kv_cache and cache is None and not do_sample
    if cache is None and use_kv_cache:
        cache = DynamicCache(config=hf.config)
    live = torch.arange(tokens.shape[0], device=tokens.device)  # the rows still computed
    for step in range(max_new_tokens):
        width = past + current.shape[1]
        running = torch.cat([mask, mask.new_ones(mask.shape[0], width - mask.shape[1])], 1)
        positions = running.cumsum(-1) - 1
        positions.masked_fill_(running == 0, 1)
        if use_kv_cache and step > 0:
            inputs, positions = current[:, -1:], positions[:, -1:]
        else:
            inputs, positions = current, positions[:, past:]
        everyone = len(live) == current.shape[0]
        with runtime.live_rows(None if everyone else live.tolist()):
            out = hf(
                input_ids=inputs if everyone else inputs[live],
                attention_mask=running if everyone else running[live],
                position_ids=positions if everyone else positions[live],
                past_key_values=cache,
                use_cache=use_kv_cache,
                logits_to_keep=1,
            )
        logits = out.logits[:, -1, :]
        if do_sample:
            sampled = sample_logits(logits, top_p=top_p, temperature=temperature, tokens=current)
        else:
            sampled = sample_logits(logits, temperature=0.0,
                                    tokens=current if everyone else current[live])
        if not everyone:
            sampled = torch.full_like(current[:, 0], pad_id).index_copy_(
                0, live, sampled.to(current.device))
        sampled = sampled.to(current.device)
        sampled[finished] = pad_id
        finished |= torch.isin(sampled, stops)
        ended = runtime.step_done(sampled)  # listeners may stream the tokens and end rows early
        if ended:
            finished[sorted(ended)] = True
        current = torch.cat([current, sampled.unsqueeze(1)], dim=1)
        if bool(finished.all()):
            break
        done = finished[live]
        if drop and cache is not None and 4 * int(done.sum()) >= len(live):  # a quarter finished
            keep = (~done).nonzero().flatten()
            cache.batch_select_indices(keep)
            live = live[keep]
    return current
