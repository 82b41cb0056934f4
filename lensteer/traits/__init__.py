"""Traits as data: system-prompt paraphrases and scenarios in one JSON file per trait.

A trait file (format: ``docs/traits.md``) holds aligned and malicious system-prompt
paraphrases, training scenarios (user prompts, optionally with given responses for off-policy
use), disjoint evaluation paraphrases and scenarios, and trait-free ``neutral_scenarios``.
Bundled files live in ``lensteer/traits/data/``: ``<name>.json`` for general chat models and
``organism_<name>.json`` for the organism (whose word-level vocabulary needs its own prompts).

>>> import lensteer
>>> t = lensteer.load_trait("honesty")
>>> t.name, len(t.aligned_prompts) > 3, len(t.scenarios) >= 40
('honesty', True, True)
>>> lensteer.load_trait("honesty", model="organism").model
'organism'
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TraitFileError

DATA_DIR = Path(__file__).parent / "data"
FORMAT_VERSION = 1
_PROMPT_LISTS = ("aligned_prompts", "malicious_prompts", "eval_aligned_prompts", "eval_malicious_prompts")


@dataclass(frozen=True)
class Scenario:
    """One user prompt; ``aligned_response``/``malicious_response`` are for off-policy use."""

    id: str
    prompt: str
    category: str = ""
    aligned_response: str | None = None
    malicious_response: str | None = None

    @property
    def has_responses(self) -> bool:
        return self.aligned_response is not None and self.malicious_response is not None


@dataclass
class Trait:
    """A trait: its prompts and scenarios (see ``docs/traits.md``)."""

    name: str
    description: str
    aligned_prompts: list[str]
    malicious_prompts: list[str]
    eval_aligned_prompts: list[str]
    eval_malicious_prompts: list[str]
    scenarios: list[Scenario]
    eval_scenarios: list[Scenario]
    neutral_scenarios: list[Scenario] = field(default_factory=list)
    neutral_prompts: list[str] = field(default_factory=list)
    model: str = "general"
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        for key in ("scenarios", "eval_scenarios", "neutral_scenarios"):
            data[key] = [{k: v for k, v in s.items() if v not in (None, "")} for s in data[key]]
        return {"format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Trait:
        """Validate and build; every error names the field and ``source``."""
        return _parse(data, source)

    def save(self, path: str | os.PathLike) -> None:
        from ..io import write_json

        write_json(path, self.to_dict())


# ------------------------------------------------------------------ validation
def _fail(source: str, field_name: str, problem: str) -> TraitFileError:
    return TraitFileError(f"Trait file {source}: field {field_name!r} {problem} (see docs/traits.md).")


def _strings(data: dict, key: str, source: str, *, required: bool = True, allow_empty: bool = False) -> list[str]:
    if key not in data:
        if required:
            raise _fail(source, key, "is missing")
        return []
    value = data[key]
    if not isinstance(value, list) or (required and not value):
        raise _fail(source, key, "must be a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or (not allow_empty and not item.strip()):
            raise _fail(source, f"{key}[{i}]", f"must be a non-empty string, got {item!r}")
    return list(value)


def _scenarios(data: dict, key: str, source: str, *, required: bool = True) -> list[Scenario]:
    if key not in data:
        if required:
            raise _fail(source, key, "is missing")
        return []
    value = data[key]
    if not isinstance(value, list) or (required and not value):
        raise _fail(source, key, "must be a non-empty list of prompts or scenario objects")
    out, seen = [], set()
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"prompt": item}
        if not isinstance(item, dict):
            raise _fail(source, where, f"must be a string or an object with 'prompt', got {item!r}")
        unknown = set(item) - {"id", "prompt", "category", "aligned_response", "malicious_response"}
        if unknown:
            raise _fail(source, where, f"has unknown keys {sorted(unknown)}")
        prompt = item.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _fail(source, f"{where}.prompt", "must be a non-empty string")
        for extra in ("id", "category", "aligned_response", "malicious_response"):
            if extra in item and not isinstance(item[extra], str):
                raise _fail(source, f"{where}.{extra}", "must be a string")
        if ("aligned_response" in item) != ("malicious_response" in item):
            raise _fail(source, where, "must give both aligned_response and malicious_response, or neither")
        sid = item.get("id") or f"{key.removesuffix('s')}-{i}"
        if sid in seen:
            raise _fail(source, f"{where}.id", f"repeats the id {sid!r}; scenario ids must be unique")
        seen.add(sid)
        out.append(Scenario(sid, prompt, item.get("category", ""), item.get("aligned_response"),
                            item.get("malicious_response")))
    return out


def _parse(data: Any, source: str) -> Trait:
    if not isinstance(data, dict):
        raise TraitFileError(f"Trait file {source} must hold a JSON object, not {type(data).__name__}.")
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise _fail(source, "format_version", f"is {version!r}; this lensteer reads version {FORMAT_VERSION}")
    known = {"format_version", "name", "description", "model", "scenarios", "eval_scenarios",
             "neutral_scenarios", "neutral_prompts", *_PROMPT_LISTS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(source, unknown[0], f"is not a trait field; known fields: {sorted(known)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(source, "name", "must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(source, "description", "must be a string")
    model = data.get("model", "general")
    if not isinstance(model, str):
        raise _fail(source, "model", "must be a string ('general' or a bundled model's name)")
    prompts = {key: _strings(data, key, source) for key in _PROMPT_LISTS}
    trait = Trait(
        name=name,
        description=description,
        scenarios=_scenarios(data, "scenarios", source),
        eval_scenarios=_scenarios(data, "eval_scenarios", source),
        neutral_scenarios=_scenarios(data, "neutral_scenarios", source, required=False),
        neutral_prompts=_strings(data, "neutral_prompts", source, required=False, allow_empty=True),
        model=model,
        path=source,
        **prompts,
    )
    overlap = {s.prompt for s in trait.scenarios} & {s.prompt for s in trait.eval_scenarios}
    if overlap:
        raise _fail(source, "eval_scenarios", f"must be disjoint from 'scenarios'; shared: {sorted(overlap)[:3]}")
    for side in ("aligned", "malicious"):
        shared = set(prompts[f"{side}_prompts"]) & set(prompts[f"eval_{side}_prompts"])
        if shared:
            raise _fail(source, f"eval_{side}_prompts",
                        f"must be disjoint from '{side}_prompts'; shared: {sorted(shared)[:3]}")
    return trait


# ------------------------------------------------------------------ loading
def available_traits() -> dict[str, list[str]]:
    """Bundled trait names per model family: ``"general"`` for any chat model, and one family
    per bundled model with traits of its own (file ``<model>_<trait>.json``).

    >>> traits = available_traits()
    >>> sorted(traits["general"]), sorted(traits["organism"])
    (['compassion', 'honesty'], ['compassion', 'honesty'])
    """
    out: dict[str, list[str]] = {"general": []}
    for stem in sorted(p.stem for p in DATA_DIR.glob("*.json")):
        family, _, name = stem.rpartition("_")
        out.setdefault(family or "general", []).append(name)
    return out


def _model_kind(model: Any) -> str:
    """The trait family of ``model``: its bundled name when it has trait files, else general."""
    if model is None:
        return "general"
    name = model if isinstance(model, str) else getattr(getattr(model, "lensteer_info", None), "name", None)
    return name if isinstance(name, str) and name in available_traits() else "general"


def load_trait(name_or_path: str | os.PathLike | Trait, *, model: Any = None) -> Trait:
    """Load a bundled trait by name, or any trait file by path.

    Args:
        name_or_path: ``"honesty"``, ``"compassion"``, or a path to a JSON trait file.
        model: a bundled model with traits of its own (``"organism"``, ``"smollm2-persona"``),
            given by name or loaded, picks its file ``<model>_<name>.json``; anything else the
            general one.
    """
    if isinstance(name_or_path, Trait):
        return name_or_path
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".json") or os.sep in text or path.exists():
        if not path.is_file():
            raise TraitFileError(f"No trait file at {path}.")
        source = str(path)
    else:
        kind = _model_kind(model)
        stem = text if kind == "general" else f"{kind}_{text}"
        path = DATA_DIR / f"{stem}.json"
        if not path.is_file():
            have = available_traits().get(kind, [])
            raise TraitFileError(
                f"No bundled trait {text!r} for {kind} models; bundled: {', '.join(have)}. "
                "Write your own trait file (docs/traits.md) and pass its path."
            )
        source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TraitFileError(f"Trait file {source} is not valid JSON: {error}.") from None
    return _parse(data, source)


__all__ = ["Scenario", "Trait", "available_traits", "load_trait"]
