"""Temperature scaling (Guo et al. 2017) fitted on validation logits, and calibration error."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def fit_temperature(logits: np.ndarray, y: np.ndarray, max_iter: int = 200) -> float:
    """Return T > 0 minimising the NLL of ``softmax(logits / T)`` on (logits ``(N, K)``, y ``(N,)``)."""
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if len(t) == 0 or len(torch.unique(t)) < 2:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    temp = float(log_t.exp().item())
    if not np.isfinite(temp) or temp <= 0:
        return 1.0
    return float(np.clip(temp, 0.05, 20.0))


def fit_bias_corrected_temperature(logits: np.ndarray, y: np.ndarray, n_classes: int | None = None,
                                   max_iter: int = 200, l2: float = 1e-3,
                                   sample_weight: np.ndarray | None = None) -> tuple[float, list[float]]:
    """Bias-corrected temperature scaling (Alexandari et al. 2020): ``softmax(logits / T + b)``.

    The per-class bias ``b`` undoes the prior shift that a weighted sampler or injected positives
    build into a network (it is trained on ~balanced classes and deployed on rare ones), which a
    temperature alone cannot. Classes absent from ``y`` keep bias 0; a small L2 penalty keeps the
    biases finite when a class has very few validation members.

    ``sample_weight`` ``(N,)`` makes the fitted loss a weighted mean: a task judged by a
    class-balanced metric (PLAsTiCC's weighted log-loss) calibrates for that metric, not for the
    class mix of the validation split, which would pull probabilities towards frequent classes.
    """
    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    w = None
    if sample_weight is not None:
        w = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64))
        if w.shape != t.shape or not torch.all(torch.isfinite(w)) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"sample_weight must be {tuple(t.shape)} finite non-negative weights, not all zero")
        w = w / w.sum()
    k = n_classes or z.shape[1]
    if len(t) == 0 or len(torch.unique(t)) < 2:
        return 1.0, [0.0] * k
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    present = torch.zeros(k, dtype=torch.float64)
    present[torch.unique(t)] = 1.0
    opt = torch.optim.LBFGS([log_t, bias], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        scaled = z / log_t.exp() + bias * present
        nll = (F.cross_entropy(scaled, t) if w is None
               else (F.cross_entropy(scaled, t, reduction="none") * w).sum())
        loss = nll + l2 * (bias * present).pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    temp = float(log_t.exp().item())
    b = (bias * present).detach().numpy()
    if not np.isfinite(temp) or temp <= 0 or not np.all(np.isfinite(b)):
        return 1.0, [0.0] * k
    b = b - b.mean()  # only differences between classes matter
    return float(np.clip(temp, 0.05, 20.0)), [float(v) for v in b]


def softmax(logits: np.ndarray, temperature: float = 1.0, bias=None) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    if bias is not None:
        z = z + np.asarray(bias, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins (torchmetrics' definition)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = torch.as_tensor(np.asarray(proba), dtype=torch.float32)
    t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if len(t) == 0:
        return float("nan")
    return float(multiclass_calibration_error(p, t, num_classes=p.shape[1], n_bins=n_bins, norm="l1"))


def reliability_curve(proba: np.ndarray, y: np.ndarray, n_bins: int = 10):
    """(bin centres, accuracy, mean confidence, count) for the top-label reliability diagram."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(conf, edges) - 1, 0, n_bins - 1)
    centres, acc, mconf, count = [], [], [], []
    for b in range(n_bins):
        m = which == b
        centres.append((edges[b] + edges[b + 1]) / 2)
        count.append(int(m.sum()))
        acc.append(float(correct[m].mean()) if m.any() else np.nan)
        mconf.append(float(conf[m].mean()) if m.any() else np.nan)
    return np.array(centres), np.array(acc), np.array(mconf), np.array(count)
