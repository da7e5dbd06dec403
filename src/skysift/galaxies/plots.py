"""Galaxy figures beyond the core's galleries: saliency / activation maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.data import TaskData
from ..core.plots import save


def _feature_module(net):
    """The module whose output is the last spatial feature map: a timm backbone's final stage
    (``forward_features`` ends there), else the last convolution."""
    import torch.nn as nn

    inner = getattr(net, "net", None)
    if inner is not None and hasattr(inner, "forward_features"):
        for attr in ("stages", "layer4", "s4", "blocks", "features", "trunk"):
            mod = getattr(inner, attr, None)
            if isinstance(mod, nn.Module):
                children = list(mod.children()) if attr in ("stages", "blocks", "features") else [mod]
                return children[-1] if children else mod
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1] if convs else None


def saliency_maps(model, data: TaskData, indices, out: Path, *, title: str = "") -> Path:
    """For a few images: the image, the gradient saliency of the predicted class (|∂logit/∂pixel|,
    max over colour channels) and the mean activation of the network's last feature map (a timm
    backbone's final stage, or the last convolution), upsampled (the seed visualised activations).
    ``model`` is a trained :class:`skysift.core.model.Model`."""
    import matplotlib.pyplot as plt
    import torch.nn.functional as F

    indices = np.asarray(indices, dtype=np.int64)[:8]
    sub = data.subset(indices)
    ds = model.task.dataset(sub, model.stats, model.data_params, train=False)
    net = model.net.cpu().eval()
    conv = _feature_module(net)
    acts: list = []
    hook = conv.register_forward_hook(lambda m, i, o: acts.append(o.detach())) if conv is not None else None
    fig, axes = plt.subplots(3, len(indices), figsize=(2.0 * len(indices), 6.3), squeeze=False)
    try:
        for col in range(len(indices)):
            x, _ = ds[col]
            x = x[None].clone().requires_grad_(True)
            acts.clear()
            logits = net(x)
            k = int(logits.argmax(dim=1))
            logits[0, k].backward()
            sal = x.grad[0].abs().amax(dim=0).numpy()
            img = np.asarray(sub.x[col])
            axes[0, col].imshow(img)
            true = sub.class_names[sub.hard_labels[col]] if sub.has_labels else "?"
            axes[0, col].set_title(f"true {true}\npred {model.class_names[k]}", fontsize=7)
            axes[1, col].imshow(sal, cmap="inferno")
            if acts and acts[-1].ndim == 4:
                a = acts[-1].abs().mean(dim=1, keepdim=True)
                a = F.interpolate(a, size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
                axes[2, col].imshow(img, alpha=0.55)
                axes[2, col].imshow(a, cmap="viridis", alpha=0.6)
            for r in range(3):
                axes[r, col].axis("off")
        axes[1, 0].text(-0.1, 0.5, "saliency", transform=axes[1, 0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=8)
        axes[2, 0].text(-0.1, 0.5, "last-stage\nactivation", transform=axes[2, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    finally:
        if hook is not None:
            hook.remove()
        net.zero_grad(set_to_none=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, out)
