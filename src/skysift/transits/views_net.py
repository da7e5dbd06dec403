"""The network on transit-search views (AstroNet-style two-branch CNN plus the search's scalars).

Input: the flat ``(B, n_candidates × (n_global + 4 n_local + n_scalars))`` vector of :mod:`.search`
(one tensor, so that batching, test-time views and ONNX export need nothing special): the views of
each transit candidate the iterated search found, strongest first.
"""
from __future__ import annotations

import torch
import torch.nn as nn


class AdaptiveAvgPool1d(nn.Module):
    """``nn.AdaptiveAvgPool1d`` written as slices (the same windows: floor(i L / n) to
    ceil((i + 1) L / n)), because ONNX cannot export the adaptive pool when L is not a multiple of
    n. No parameters: bundles are the same either way."""

    def __init__(self, out_len: int):
        super().__init__()
        self.out_len = out_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length = self.out_len, int(x.shape[-1])
        return torch.stack([x[..., (i * length) // n: -((-(i + 1) * length) // n)].mean(dim=-1)
                            for i in range(n)], dim=-1)


def _branch(c_in: int, width: int, n_pool: int, out_len: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = c_in
    for i in range(n_pool):
        c_out = width * 2 ** i
        layers += [nn.Conv1d(c, c_out, 5, padding=2), nn.GELU(), nn.Conv1d(c_out, c_out, 5, padding=2),
                   nn.BatchNorm1d(c_out), nn.GELU(), nn.MaxPool1d(2)]
        c = c_out
    # a fixed-length summary that keeps position: the secondary eclipse's phase matters
    layers += [AdaptiveAvgPool1d(out_len), nn.Flatten()]
    return nn.Sequential(*layers)


class ViewsNet(nn.Module):
    """Global view → CNN; local, odd, even and secondary views as four channels → CNN (so that
    the filters compare odd with even and primary with secondary at each phase); scalars → MLP."""

    def __init__(self, n_classes: int, n_global: int, n_local: int, n_scalars: int, width: int = 16,
                 dropout: float = 0.2, n_candidates: int = 1, context: bool = False):
        super().__init__()
        self.n_global, self.n_local, self.n_scalars = n_global, n_local, n_scalars
        self.n_candidates = n_candidates
        self.n_per = n_global + 4 * n_local + n_scalars
        self.global_net = _branch(1, width, 3, 6)
        self.local_net = _branch(5, width, 2, 6)
        # the scalars are log-scaled by the search already; batch norm adapts their remaining scale
        self.scalar_net = nn.Sequential(nn.BatchNorm1d(n_scalars), nn.Linear(n_scalars, 4 * width), nn.GELU())
        n_flat = 6 * width * 4 + 6 * width * 2 + 4 * width
        # each candidate is scored knowing the other candidates' scalars: alone, the secondary eclipse
        # of an eclipsing binary (found by the second search once the primary is masked: flat, no
        # eclipse at its own phase 0.5) looks like a planet; beside a deeper candidate at the same
        # period it does not
        self.n_context = n_scalars * (n_candidates - 1) if context and n_candidates > 1 else 0
        if self.n_context:
            self.context_net = nn.Sequential(nn.BatchNorm1d(self.n_context), nn.Linear(self.n_context, 2 * width),
                                             nn.GELU())
            n_flat += 2 * width
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_flat, 128), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(128, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_candidates == 1:
            return self.score(x)
        # multiple-instance learning: a star hosts a planet if any of its candidates is one, so the
        # same network scores every candidate and the star takes the most planet-like candidate's
        # logits (trained on star labels alone: which candidate is the planet is never needed)
        k = self.n_candidates
        flat = x.reshape(-1, self.n_per)
        ctx = None
        if self.n_context:
            lo = self.n_global + 4 * self.n_local
            s = x.reshape(-1, k, self.n_per)[..., lo: lo + self.n_scalars]
            # candidate i sees candidates i+1, i+2, ... (cyclically): the others, in a fixed order
            ctx = torch.cat([torch.roll(s, -j, dims=1) for j in range(1, k)], dim=-1).reshape(-1, self.n_context)
        logits = self.score(flat, ctx).reshape(-1, k, self.head[-1].out_features)
        margin = logits[..., 1:].amax(dim=-1) - logits[..., 0]
        idx = margin.argmax(dim=1, keepdim=True).unsqueeze(-1).expand(-1, 1, logits.shape[-1])
        return torch.gather(logits, 1, idx).squeeze(1)

    def score(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of single candidates ``(M, n_per)`` (with the other candidates' scalars
        ``(M, n_context)`` when the network uses them)."""
        g = x[:, : self.n_global].unsqueeze(1)
        lo = self.n_global + 4 * self.n_local
        local = x[:, self.n_global: lo].reshape(-1, 4, self.n_local)  # -1: ONNX keeps the batch dynamic
        # odd minus even as its own channel: the one difference an eclipsing binary cannot hide
        local = torch.cat([local, local[:, 1:2] - local[:, 2:3]], dim=1)
        s = x[:, lo: lo + self.n_scalars]
        parts = [self.global_net(g), self.local_net(local), self.scalar_net(s)]
        if self.n_context:
            if context is None:
                raise ValueError("this network scores a candidate with the other candidates' scalars")
            parts.append(self.context_net(context))
        return self.head(torch.cat(parts, dim=1))


class ViewsEnsemble(nn.Module):
    """``members`` independently initialised :class:`ViewsNet` (same data, one training run, each
    with its own loss: in training the forward returns their logits ``(M, B, K)``, which the
    training step scores member by member). In evaluation the star's logits are the log of the
    members' mean probabilities. Why: trainings of the same network from different seeds differ by
    about ±0.04 in PR-AUC on validation stars (75 hosts); their average is steadier and better."""

    def __init__(self, members: int, *args, **kwargs):
        super().__init__()
        self.members = nn.ModuleList([ViewsNet(*args, **kwargs) for _ in range(members)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x) for m in self.members])
        if self.training:
            return logits
        return torch.log_softmax(logits, dim=-1).exp().mean(dim=0).clamp_min(1e-12).log()
