"""Batched inference shared by validation, ``evaluate``, ``predict`` and serving."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader


def to_device(x, device):
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    return x.to(device) if hasattr(x, "to") else x


def pick_device(accelerator: str = "auto") -> torch.device:
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@torch.no_grad()
def predict_logits(
    net: torch.nn.Module,
    dataset,
    *,
    batch_size: int = 256,
    collate_fn: Callable | None = None,
    tta_views: Sequence[Callable] = (),
    device: torch.device | None = None,
    num_workers: int = 0,
) -> np.ndarray:
    """``(N, K)`` logits for a dataset of ``(inputs, target)`` items, in dataset order.

    With ``tta_views`` the logits returned are the log of the probabilities averaged over the
    identity view and every augmented view (averaging probabilities, not logits, keeps a view
    that is very confident from dominating).
    """
    device = device or next(net.parameters()).device
    net.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn,
                        num_workers=num_workers)
    out = []
    use_amp = device.type == "cuda"
    batches: Any = loader
    if len(loader) >= 4:  # a server's small requests stay quiet; a test set shows its progress
        from .progress import track

        batches = track(loader, "predicting", unit=f"batches of {batch_size}")
    for inputs, _ in batches:
        inputs = to_device(inputs, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            if tta_views:
                probs = torch.softmax(net(inputs).float(), dim=1)
                for view in tta_views:
                    view_probs = torch.softmax(net(view(inputs)).float(), dim=1)
                    perm = getattr(view, "output_permutation", None)
                    probs = probs + (view_probs[:, perm] if perm is not None else view_probs)
                probs = probs / (1 + len(tta_views))
                logits = probs.clamp_min(1e-12).log()
            else:
                logits = net(inputs).float()
        out.append(logits.cpu().numpy())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out, axis=0)
