"""Training configuration as plain data, validated early."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .sampling import RESAMPLERS, SAMPLERS

if TYPE_CHECKING:
    from .registry import ModelSpec
    from .task import Task

LOSSES = ("ce", "weighted_ce", "focal")


@dataclass
class TrainConfig:
    """Everything that controls one training run (stored in the bundle as JSON).

    ``model_params`` override the chosen model's defaults (model or data parameters, routed by
    key), ``data_params`` its data parameters only; ``precision="auto"`` picks bf16/fp16
    mixed precision on a GPU and fp32 on CPU.
    """

    model: str | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    val_frac: float = 0.2
    seed: int = 0
    sampler: str = "weighted"
    loss: str = "ce"
    focal_gamma: float = 2.0
    resample: str = "none"
    augment: bool = True
    tta: bool = False
    calibrate: bool = True
    precision: str = "auto"
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int = 0
    max_time_minutes: float | None = None
    model_params: dict = field(default_factory=dict)
    #: overrides of the model's data parameters (augmentation, preprocessing); ``model_params``
    #: may hold them too and is routed by key
    data_params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.val_frac < 0.5:
            raise ConfigError(f"val_frac must be in (0, 0.5), got {self.val_frac}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.resample not in RESAMPLERS:
            raise ConfigError(f"resample must be one of {RESAMPLERS}, got {self.resample!r}")
        if self.precision not in ("auto", "32", "16-mixed", "bf16-mixed"):
            raise ConfigError(f"precision must be auto, 32, 16-mixed or bf16-mixed, got {self.precision!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


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
