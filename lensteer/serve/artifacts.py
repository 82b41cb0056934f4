"""The steering artifacts a server offers: the steering specs (``.safetensors`` written by
:func:`lensteer.steering.save_steerer` or ``lensteer steer --save-spec``) in one folder, each
named by its file stem.

Every spec is read once at start-up and checked against the served model; one made for another
model stays listed with the reason, and a request that names it gets a 400 saying so. Per
request, :meth:`ArtifactStore.steerer` rebuilds a fresh steerer with the request's α and
positions (a fresh object per request, so rows of one batch never share hooks).

>>> import tempfile, torch, lensteer
>>> from lensteer.directions import TraitDirection
>>> model = lensteer.load_model("organism")
>>> d = TraitDirection(v_hat=torch.ones(128), boundary=0.0, mu_pos=1.0, sigma_pos=0.5,
...                    mu_neg=-1.0, sigma_neg=0.5, layer=3, hook="blocks.3.hook_resid_post",
...                    model=lensteer.model_info(model).to_dict())
>>> folder = tempfile.mkdtemp()
>>> lensteer.steering.save_steerer(lensteer.StTP(d, alpha=6), f"{folder}/honesty.safetensors")
>>> store = ArtifactStore(folder, model)
>>> store.names(), store.steerer("honesty", alpha=2).alpha
(['honesty'], 2.0)
>>> store.steerer("nope")
Traceback (most recent call last):
...
lensteer.serve.protocol.RequestError: Unknown steering artifact 'nope': this server has honesty.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LensteerError
from ..protocols import LensModel
from ..steering.spec import load_steerer
from ..steering.steerers import POSITIONS, Monitor, Steerer, make_steerer
from .protocol import RequestError

#: The largest α a request may ask for unless the server says otherwise (``--max-alpha``);
#: the paper's grids end at 36 (StTP) and 5 (SwFC).
MAX_ALPHA = 100.0


class ArtifactDirError(LensteerError, ValueError):
    """An artifact folder that does not exist or holds no steering spec."""


@dataclass
class Artifact:
    """One spec file: its steerer when it fits the served model, else why not."""

    name: str
    path: Path
    steerer: Steerer | None
    problem: str | None = None

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/artifacts`` lists for it."""
        out: dict[str, Any] = {"name": self.name, "usable": self.steerer is not None}
        if self.steerer is not None:
            config = self.steerer.config()
            out.update({k: config[k] for k in ("method", "alpha", "sign", "threshold",
                                                "positions", "layers")})
            out["trait"] = self.steerer.directions[0].trait
        else:
            out["problem"] = self.problem
        return out


def check_folder(directory: str | os.PathLike) -> list[Path]:
    """The spec files of ``directory`` (sorted); one clear error if there are none."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ArtifactDirError(f"--artifacts {folder}: no such folder; give a folder of steering "
                               "specs (.safetensors written by `lensteer steer --save-spec`).")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ArtifactDirError(f"--artifacts {folder} holds no .safetensors steering spec; write "
                               "one with `lensteer steer ... --save-spec FOLDER/NAME.safetensors`.")
    return files


class ArtifactStore:
    """The steering specs of one folder, checked against ``model`` (``None``: no folder, no
    artifacts)."""

    def __init__(self, directory: str | os.PathLike | None, model: LensModel, *,
                 max_alpha: float = MAX_ALPHA) -> None:
        self.max_alpha = float(max_alpha)
        self.artifacts: dict[str, Artifact] = {}
        for path in check_folder(directory) if directory is not None else []:
            try:
                steerer: Steerer | None = load_steerer(path, model=model)
                problem = None
            except (LensteerError, ValueError, TypeError, KeyError, OSError) as error:
                steerer, problem = None, " ".join(str(error).split())
            self.artifacts[path.stem] = Artifact(path.stem, path, steerer, problem)

    def names(self) -> list[str]:
        """The usable artifacts' names."""
        return [a.name for a in self.artifacts.values() if a.steerer is not None]

    def describe(self) -> list[dict[str, Any]]:
        return [a.describe() for a in self.artifacts.values()]

    def _get(self, name: Any, param: str) -> Steerer:
        if not isinstance(name, str):
            raise RequestError(f"{param} must name a steering artifact (a string), got {name!r}.",
                               param=param)
        artifact = self.artifacts.get(name)
        if artifact is None:
            offered = ", ".join(self.names()) or "none (start it with --artifacts DIR)"
            raise RequestError(f"Unknown steering artifact {name!r}: this server has {offered}.",
                               param=param, code="unknown_artifact")
        if artifact.steerer is None:
            raise RequestError(f"Steering artifact {name!r} cannot steer the served model: "
                               f"{artifact.problem}", param=param, code="artifact_model_mismatch")
        return artifact.steerer

    def steerer(self, name: Any, *, alpha: Any = None, positions: Any = None,
                param: str = "steering") -> Steerer:
        """A fresh steerer of artifact ``name`` with α and positions overridden when given."""
        base = self._get(name, param)
        config = base.config()
        if alpha is not None:
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (
                    math.isfinite(alpha) and 0 <= alpha <= self.max_alpha):
                raise RequestError(f"alpha for {name!r} must be a number in [0, {self.max_alpha:g}]"
                                   f", got {alpha!r}.", param=f"{param}.alpha",
                                   code="alpha_out_of_range")
            config["alpha"] = float(alpha)
        if positions is not None:
            if positions not in POSITIONS:
                raise RequestError(f"positions for {name!r} must be one of {', '.join(POSITIONS)}"
                                   f", got {positions!r}.", param=f"{param}.positions")
            config["positions"] = positions
        method = config.pop("method")
        alpha_value = config.pop("alpha")
        for key in ("layers", "points"):
            config.pop(key)
        return make_steerer(method, base.directions, alpha_value, **config)

    def monitor(self, name: Any, param: str = "monitor") -> Monitor:
        """A monitor on artifact ``name``'s directions, side and threshold."""
        return Monitor.watching(self._get(name, param))
