"""Losses for imbalanced classification: class-weighted cross-entropy, focal loss, soft targets."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ClassificationLoss(nn.Module):
    """Cross-entropy or focal loss on ``(B, K)`` logits.

    Targets are ``(B,)`` class indices or ``(B, K)`` soft targets (vote fractions, mixup labels).

    Parameters
    ----------
    kind : "ce" or "focal".
    weight : optional ``(K,)`` class weights (``loss="weighted_ce"`` passes inverse frequencies).
    gamma : focal-loss focusing parameter (Lin et al. 2017); 0 reduces focal to cross-entropy.
    label_smoothing : passed to cross-entropy for hard targets.
    """

    def __init__(self, kind: str = "ce", weight: torch.Tensor | None = None, gamma: float = 2.0,
                 label_smoothing: float = 0.0):
        super().__init__()
        if kind not in ("ce", "focal"):
            raise ValueError(f"unknown loss kind {kind!r}")
        self.kind = kind
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        logp = F.log_softmax(logits, dim=1)
        if target.ndim == 1:
            target_dist = F.one_hot(target.long(), logits.shape[1]).float()
            if self.label_smoothing > 0:
                k = logits.shape[1]
                target_dist = target_dist * (1 - self.label_smoothing) + self.label_smoothing / k
        else:
            target_dist = target.float()
        weight = self.weight
        w = weight if isinstance(weight, torch.Tensor) else torch.ones(logits.shape[1], device=logits.device)
        per_class = -target_dist * logp * w  # (B, K)
        if self.kind == "focal":
            per_class = per_class * (1.0 - logp.exp()).pow(self.gamma)
        per_sample = per_class.sum(dim=1)
        # Normalise by the summed weight of the true classes, as torch's weighted CE does, so
        # that weighting changes the balance between classes, not the loss scale.
        norm = (target_dist * w).sum(dim=1).sum().clamp_min(1e-12)
        return per_sample.sum() / norm
