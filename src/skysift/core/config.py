"""Training configuration as plain data, validated early.

This module imports neither torch nor Lightning: the CLI builds ``train``'s options from
:class:`TrainConfig` and validates them before anything heavy loads.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from .registry import ModelSpec
    from .task import Task

LOSSES = ("ce", "weighted_ce", "focal")
RESAMPLERS = ("none", "over", "under", "smote")
SAMPLERS = ("none", "weighted")
#: which weights training ends with: the best validation epoch, or the final one (see TrainConfig.checkpoint)
CHECKPOINTS = ("best", "last")
PRECISIONS = ("auto", "32", "16-mixed", "bf16-mixed")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
#: Lightning's ``StrategyRegistry`` names (2.6) plus "auto"; a test keeps the two in step, so that
#: validating here needs no Lightning import
STRATEGIES = (
    "auto", "ddp", "ddp_find_unused_parameters_false", "ddp_find_unused_parameters_true", "ddp_fork",
    "ddp_fork_find_unused_parameters_false", "ddp_fork_find_unused_parameters_true", "ddp_notebook",
    "ddp_notebook_find_unused_parameters_false", "ddp_notebook_find_unused_parameters_true", "ddp_spawn",
    "ddp_spawn_find_unused_parameters_false", "ddp_spawn_find_unused_parameters_true", "deepspeed",
    "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_2_offload", "deepspeed_stage_3",
    "deepspeed_stage_3_offload", "deepspeed_stage_3_offload_nvme", "fsdp", "fsdp_cpu_offload", "single_device",
    "single_tpu", "single_xla", "xla", "xla_debug",
)
# Lightning's device indices: "0,1" or "1," (the trailing comma makes one index, not a count)
_DEVICE_LIST = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*,?\s*$")


def _help(text: str) -> dict[str, str]:
    """Field metadata: the one description of an option, shown by ``skysift train --help``."""
    return {"help": text}


def _field(default: Any, help: str) -> Any:
    return field(default=default, metadata=_help(help))


@dataclass
class TrainConfig:
    """Everything that controls one training run (stored in the bundle as JSON).

    ``model_params`` override the chosen model's defaults (model or data parameters, routed by
    key), ``data_params`` its data parameters only; ``precision="auto"`` picks bf16/fp16
    mixed precision on a GPU and fp32 on CPU.
    """

    model: str | None = _field(None, "model name (see `skysift models TASK`)")
    epochs: int = _field(20, "most training epochs (early stopping may end sooner)")
    batch_size: int = _field(64, "objects per batch")
    lr: float = _field(1e-3, "learning rate (AdamW)")
    weight_decay: float = _field(1e-4, "AdamW weight decay")
    patience: int = _field(5, "epochs without improvement before early stopping")
    checkpoint: str = _field("best", "best | last: keep the epoch with the best validation headline metric, or "
                                     "train every epoch (no early stopping) and keep the final weights")
    val_frac: float = _field(0.2, "fraction held out (stratified) for validation, in (0, 0.5)")
    test_frac: float = _field(0.2, "fraction held out (stratified, grouped) as a test split no choice touches; "
                                   "its metrics are the headline. 0: no test split (bring your own)")
    seed: int = _field(0, "random seed of the split, initialisation and augmentation")
    sampler: str = _field("weighted", " | ".join(SAMPLERS[::-1]) + ": class-balanced batches or not")
    loss: str = _field("ce", " | ".join(LOSSES))
    focal_gamma: float = _field(2.0, "focusing exponent of the focal loss")
    resample: str = _field("none", " | ".join(RESAMPLERS) + " (training split only)")
    augment: bool = _field(True, "the task's training-time augmentation")
    tta: bool = _field(False, "test-time augmentation when evaluating and predicting")
    calibrate: bool = _field(True, "fit temperature scaling and the decision threshold on validation")
    precision: str = _field("auto", " | ".join(PRECISIONS) + " (auto: mixed on a GPU, 32 on CPU)")
    accelerator: str = _field("auto", " | ".join(ACCELERATORS))
    devices: int | str = _field(1, "number of devices, 'auto', -1 (all) or indices like '0,1'")
    num_nodes: int = _field(1, "machines for distributed training")
    strategy: str = _field("auto", "Lightning strategy: auto | ddp | ddp_spawn | fsdp | deepspeed | ...")
    num_workers: int = _field(0, "DataLoader worker processes (0: load in the main process)")
    max_time_minutes: float | None = _field(None, "stop training after this many minutes")
    threads: int | None = _field(None, "CPU threads of torch and numba in this process while training "
                                       "(default: theirs, one per core); 1 on a machine other jobs share, "
                                       "where waiting threads spin")
    model_params: dict = field(default_factory=dict, metadata=_help("model parameter"))
    #: overrides of the model's data parameters (augmentation, preprocessing); ``model_params``
    #: may hold them too and is routed by key
    data_params: dict = field(default_factory=dict, metadata=_help("data/augmentation parameter"))

    def __post_init__(self) -> None:
        # every field, before any data loads: a bad --devices must not surface as a Lightning
        # TypeError after minutes of reading files
        def integer(name: str, low: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{name} must be an integer, got {v!r}")
            if v < low:
                raise ConfigError(f"{name} must be >= {low}, got {v}")

        def number(name: str, *, positive: bool) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"{name} must be a number, got {v!r}")
            if not (v > 0 if positive else v >= 0):
                raise ConfigError(f"{name} must be {'>' if positive else '>='} 0, got {v}")

        def choice(name: str, allowed: tuple[str, ...]) -> None:
            v = getattr(self, name)
            if v not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {v!r}")

        if self.model is not None and not isinstance(self.model, str):
            raise ConfigError(f"model must be a name, got {self.model!r}")
        integer("epochs", 1)
        integer("batch_size", 1)
        integer("patience", 1)
        integer("seed", 0)
        integer("num_nodes", 1)
        integer("num_workers", 0)
        number("lr", positive=True)
        number("weight_decay", positive=False)
        number("focal_gamma", positive=False)
        number("val_frac", positive=True)
        number("test_frac", positive=False)
        if not 0 < self.val_frac < 0.5:
            raise ConfigError(f"val_frac must be in (0, 0.5), got {self.val_frac}")
        if not 0 <= self.test_frac < 0.5:
            raise ConfigError(f"test_frac must be in [0, 0.5), got {self.test_frac}")
        if self.val_frac + self.test_frac > 0.6:
            raise ConfigError(f"val_frac + test_frac must leave at least 40% for training, got "
                              f"{self.val_frac} + {self.test_frac}")
        if self.max_time_minutes is not None:
            number("max_time_minutes", positive=True)
        if self.threads is not None:
            integer("threads", 1)
        choice("sampler", SAMPLERS)
        choice("checkpoint", CHECKPOINTS)
        choice("loss", LOSSES)
        choice("resample", RESAMPLERS)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto, 32, 16-mixed or bf16-mixed, got {self.precision!r}")
        choice("accelerator", ACCELERATORS)
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be a Lightning strategy name (auto, ddp, ddp_spawn, ddp_fork, "
                              f"ddp_notebook, fsdp, deepspeed, single_device, xla ...); got {self.strategy!r}")
        for name in ("augment", "tta", "calibrate"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        _check_devices(self.devices)
        for f in fields(self):
            if f.type in ("dict", dict) and not isinstance(getattr(self, f.name), dict):
                raise ConfigError(f"{f.name} must be a mapping of NAME to VALUE, got {getattr(self, f.name)!r}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def _check_devices(devices: Any) -> None:
    """What Lightning's Trainer accepts: a count >= 1, -1 (all), "auto", or a list of indices."""
    if isinstance(devices, bool):
        ok = False
    elif isinstance(devices, int):
        ok = devices >= 1 or devices == -1
    elif isinstance(devices, str):
        d = devices.strip()
        if d in ("auto", "-1"):
            ok = True
        elif "," in d:
            ok = bool(_DEVICE_LIST.match(d))
        else:
            ok = d.isdigit() and int(d) >= 1
    else:
        ok = False
    if not ok:
        raise ConfigError(f"devices must be a positive number, 'auto', -1 (all) or indices like '0,1'; "
                          f"got {devices!r}")


def resolve_config(task: Task, options: dict[str, Any]) -> tuple[TrainConfig, ModelSpec, dict, dict]:
    """Merge task defaults < model overrides < user options; return (config, spec, model params,
    data params). A ``model_params`` key goes to whichever of the two the model declares it in."""
    options = {k: v for k, v in options.items() if v is not None}
    model_name = options.get("model") or task.info.train_defaults.get("model") or task.info.default_model
    spec = task.models.get(model_name)
    merged = {**task.info.train_defaults, **spec.train_overrides, **options, "model": model_name}
    user_params = dict(merged.pop("model_params", None) or {})
    user_data = dict(merged.pop("data_params", None) or {})
    cfg = TrainConfig.from_dict({**merged, "model_params": user_params, "data_params": user_data})
    params, data_params = spec.resolve(user_params, user_data)
    return cfg, spec, params, data_params
