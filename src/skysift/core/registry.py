"""Models by name, timm style: one documented builder function per model.

A builder is a plain function ``builder(n_classes, stats, *, <model parameters with defaults>)``
returning an ``nn.Module`` that maps a batch of inputs to ``(B, K)`` logits (``kind="torch"``) or
an :class:`Estimator` (``kind="estimator"``). ``stats`` is what the task's ``fit_preprocessing``
learnt; the keyword-only parameters and their defaults *are* the model's parameters: there is no
second list of defaults to keep in step with the constructor. The first line of the docstring is
the description ``skysift models`` shows.

>>> @register_model(MODELS, data_defaults={"inject_prob": 0.3})
... def resnet1d(n_classes: int, stats: dict, *, width: int = 32, depth: int = 5) -> nn.Module:
...     '''Residual 1-D CNN.'''
...     from .networks import ResNet1d
...
...     return ResNet1d(n_classes, width=width, depth=depth)
>>> net = create_model("transits", "resnet1d", 2, stats, width=16)

The builder imports its network in its body: the task's ``models.py`` (what ``skysift models``
lists) then loads without torch, timm or LightGBM.

Data parameters (augmentation probabilities, preprocessing choices) are declared apart, with
``data_defaults``: they go to the task's ``dataset`` / ``batch_augment`` / ``tta_views`` hooks,
never to the network. A builder that must agree with the data pipeline (the number of input
channels of a view) names that data parameter as a keyword argument and receives the data value.

Bundles store both dicts (``card["model"]["params"]`` and ``["data_params"]``); cards written
before the split kept everything in ``params`` and :func:`card_params` splits them again.
"""
from __future__ import annotations

import copy
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    from .task import Task


@dataclass
class ModelSpec:
    """The registry's record of one named model.

    ``build(params, stats, n_classes, data_params=None)`` returns the network (or estimator).
    ``defaults`` are the model parameters (from the builder's signature), ``data_defaults`` the
    data parameters; both are stored in the bundle, so values must be JSON-serialisable.
    """

    name: str
    build: Callable[..., Any]
    defaults: dict = field(default_factory=dict)
    description: str = ""
    kind: str = "torch"
    train_overrides: dict = field(default_factory=dict)  # e.g. a different lr or batch size
    data_defaults: dict = field(default_factory=dict)
    builder: Callable | None = None
    #: data parameters the builder also reads (see the module docstring)
    shared: tuple = ()

    def accepted(self) -> list[str]:
        return sorted({*self.defaults, *self.data_defaults})

    def split(self, params: dict) -> tuple[dict, dict]:
        """``(model params, data params)`` of a dict that may hold both (a pre-split card)."""
        model = {k: v for k, v in params.items() if k not in self.data_defaults}
        data = {k: v for k, v in params.items() if k in self.data_defaults}
        return model, data

    def resolve(self, overrides: dict | None = None, data_overrides: dict | None = None) -> tuple[dict, dict]:
        """Defaults updated with the user's overrides, each routed to the dict that declares it.

        ``overrides`` may mix model and data parameters (``model_params`` of the CLI);
        ``data_overrides`` are data parameters only. ConfigError names the accepted keys."""
        overrides, data_overrides = dict(overrides or {}), dict(data_overrides or {})
        unknown = set(overrides) - set(self.defaults) - set(self.data_defaults)
        if unknown and (self.defaults or self.data_defaults):
            raise ConfigError(f"model {self.name!r} has no parameter(s) {', '.join(sorted(unknown))}; "
                              f"it takes: {', '.join(self.accepted())}")
        unknown_data = set(data_overrides) - set(self.data_defaults)
        if unknown_data:
            raise ConfigError(f"model {self.name!r} has no data parameter(s) {', '.join(sorted(unknown_data))}; "
                              f"its data parameters are: {', '.join(sorted(self.data_defaults)) or 'none'}")
        model, data = self.split(overrides)
        params = {**copy.deepcopy(self.defaults), **model}
        data_params = {**copy.deepcopy(self.data_defaults), **data, **data_overrides}
        return params, data_params


def _signature_defaults(fn: Callable) -> dict:
    """The keyword-only parameters of a builder and their defaults; TypeError on a malformed one."""
    sig = inspect.signature(fn)
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != 2:
        raise TypeError(f"model builder {fn.__name__} must take (n_classes, stats, *, ...), "
                        f"got {sig}")
    out = {}
    for p in sig.parameters.values():
        if p.kind == p.KEYWORD_ONLY:
            if p.default is p.empty:
                raise TypeError(f"model builder {fn.__name__}: parameter {p.name!r} needs a default")
            out[p.name] = p.default
        elif p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            raise TypeError(f"model builder {fn.__name__}: no *args/**kwargs; name every parameter")
    return copy.deepcopy(out)


def _description(fn: Callable) -> str:
    doc = inspect.getdoc(fn) or ""
    return " ".join(doc.split("\n\n")[0].split())


def spec_from_builder(fn: Callable, *, name: str | None = None, kind: str = "torch",
                      data_defaults: dict | None = None, train_overrides: dict | None = None,
                      description: str | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of a builder function (what :func:`register_model` registers).

    ``name`` defaults to the function's name with ``_`` → ``-`` (``seed_cnn`` → ``seed-cnn``);
    ``description`` to the first paragraph of its docstring."""
    data_defaults = copy.deepcopy(dict(data_defaults or {}))
    signature = _signature_defaults(fn)
    shared = tuple(k for k in signature if k in data_defaults)
    defaults = {k: v for k, v in signature.items() if k not in data_defaults}
    spec_name = name or fn.__name__.replace("_", "-")

    def build(params: dict, stats: dict, n_classes: int, data_params: dict | None = None):
        # ``params`` may still hold data keys (a card from before the split, or {**defaults,
        # **data}): they are not the network's, but a shared one is taken from there when
        # ``data_params`` does not give it
        model, data = spec.split(dict(params or {}))
        unknown = set(model) - set(defaults)
        if unknown:
            raise ConfigError(f"model {spec_name!r} has no parameter(s) {', '.join(sorted(unknown))}; "
                              f"it takes: {', '.join(spec.accepted())}")
        data = {**data_defaults, **data, **(data_params or {})}
        kwargs = {**copy.deepcopy(defaults), **model, **{k: data[k] for k in shared}}
        return fn(int(n_classes), stats or {}, **kwargs)

    spec = ModelSpec(spec_name, build, defaults, _description(fn) if description is None else description,
                     kind, dict(train_overrides or {}), data_defaults, fn, shared)
    return spec


class ModelRegistry:
    """Models of one task by name; ``timm:<name>`` style prefixes are resolved by ``fallback``
    (a function ``name -> ModelSpec | None``, see :func:`skysift.core.backbones.timm_fallback`)."""

    def __init__(self, fallback: Callable[[str], ModelSpec | None] | None = None):
        self._specs: dict[str, ModelSpec] = {}
        self._fallback = fallback

    def register(self, spec: ModelSpec) -> ModelSpec:
        self._specs[spec.name] = spec
        return spec

    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> ModelSpec:
        if name in self._specs:
            return self._specs[name]
        if self._fallback is not None:
            spec = self._fallback(name)
            if spec is not None:
                return spec
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(self._specs)}")

    def __contains__(self, name: str) -> bool:
        return name in self._specs


#: registries addressed by task name, for builders defined outside the task's ``models.py``
_TASK_REGISTRIES: dict[str, ModelRegistry] = {}


def task_registry(task_name: str, fallback: Callable[[str], ModelSpec | None] | None = None) -> ModelRegistry:
    """The registry of ``task_name`` that ``@register_model("<task>")`` fills (created on first use;
    the task's ``models.py`` exposes it as ``MODELS``)."""
    reg = _TASK_REGISTRIES.setdefault(task_name, ModelRegistry())
    if fallback is not None:
        reg._fallback = fallback
    return reg


def register_model(registry: ModelRegistry | str, *, name: str | None = None, kind: str = "torch",
                   data_defaults: dict | None = None, train_overrides: dict | None = None) -> Callable:
    """Decorator: register builder ``fn`` in ``registry`` (a :class:`ModelRegistry` or a task name).

    Returns ``fn`` unchanged (it stays callable as ``fn(n_classes, stats, width=16)``); the spec
    is ``registry.get(name)``."""
    reg = task_registry(registry) if isinstance(registry, str) else registry

    def decorate(fn: Callable) -> Callable:
        reg.register(spec_from_builder(fn, name=name, kind=kind, data_defaults=data_defaults,
                                       train_overrides=train_overrides))
        return fn

    return decorate


def _registry_of(task_or_registry: Task | ModelRegistry | str) -> ModelRegistry:
    if isinstance(task_or_registry, ModelRegistry):
        return task_or_registry
    if isinstance(task_or_registry, str):
        from .task import get_task

        return get_task(task_or_registry).models
    return task_or_registry.models


def create_model(task_or_registry: Task | ModelRegistry | str, name: str, n_classes: int,
                 stats: dict | None = None, **overrides):
    """Build model ``name`` with its defaults updated by ``overrides`` (model parameters, and
    the data parameters the network itself reads, e.g. a view's channel count).

    ConfigError on an unknown model or parameter, naming the accepted ones."""
    spec = _registry_of(task_or_registry).get(name)
    accepted = {*spec.defaults, *spec.shared}
    unknown = set(overrides) - accepted
    if unknown:
        data_only = sorted(unknown & set(spec.data_defaults))
        hint = (f" ({', '.join(data_only)}: data parameter(s), given to the task's dataset, not the network)"
                if data_only else "")
        raise ConfigError(f"model {spec.name!r} has no parameter(s) {', '.join(sorted(unknown))}{hint}; "
                          f"it takes: {', '.join(sorted(accepted)) or 'none'}")
    model = {k: v for k, v in overrides.items() if k in spec.defaults}
    data = {k: v for k, v in overrides.items() if k in spec.shared}
    return spec.build(model, stats or {}, n_classes, data)


def card_params(spec: ModelSpec, card_model: dict) -> tuple[dict, dict]:
    """``(params, data_params)`` of a bundle card's ``"model"`` entry.

    Cards written before data parameters were split off hold both in ``params``; they are split
    by the keys ``spec`` declares, so an old bundle rebuilds and predicts exactly as before. Data
    defaults fill keys a card lacks (a parameter added since), as the hooks' fallbacks did."""
    params = dict(card_model.get("params") or {})
    if "data_params" in card_model:
        return params, {**copy.deepcopy(spec.data_defaults), **dict(card_model["data_params"] or {})}
    model, data = spec.split(params)
    return model, {**copy.deepcopy(spec.data_defaults), **data}


class Estimator(ABC):
    """A non-torch model on feature vectors (e.g. LightGBM). Its state must be arrays, not pickle."""

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
            sample_weight: np.ndarray | None = None) -> Any:
        """Fit on ``(X, y)``, early-stopping on ``(X_val, y_val)``."""

    @abstractmethod
    def predict_logits(self, X: np.ndarray) -> np.ndarray:
        """``(N, K)`` logits."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (stored in safetensors)."""

    @abstractmethod
    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state`."""


__all__ = ["Estimator", "ModelRegistry", "ModelSpec", "card_params", "create_model", "register_model",
           "spec_from_builder", "task_registry"]
