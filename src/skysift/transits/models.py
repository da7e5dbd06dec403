"""Networks for the transits task. Inputs: ``(B, L)`` or ``(B, 1, L)`` cleaned flux in noise units."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.registry import ModelRegistry, register_model


def _as_channels(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(1) if x.ndim == 2 else x


class SeedCNN(nn.Module):
    """The seed project's 1-D CNN, kept for parity: Conv1d 1→6 k3, max-pool 3, BN,
    Conv1d 6→16 k3, max-pool 3, BN, then fully connected 500 → 64 → K. Like the seed it sees one
    channel: the flux in noise units."""

    def __init__(self, length: int, n_classes: int = 2):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 6, 3), nn.ReLU(), nn.MaxPool1d(3), nn.BatchNorm1d(6),
            nn.Conv1d(6, 16, 3), nn.ReLU(), nn.MaxPool1d(3), nn.BatchNorm1d(16),
        )
        flat = 16 * (((length - 2) // 3 - 2) // 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, 500), nn.ReLU(), nn.Dropout(0.3),
                                  nn.Linear(500, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, x):
        x = _as_channels(x)[:, :1]
        return self.head(self.features(x))


class ResBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dilation: int = 1, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 7, stride=stride, padding=3, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 5, padding=2 * dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.drop = nn.Dropout(dropout)
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)))

    def forward(self, x):
        h = F.gelu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(self.drop(h)))
        return F.gelu(h + self.skip(x))


class ResNet1d(nn.Module):
    """Residual 1-D CNN with dilations, optional self-attention over time, and global average +
    max pooling.

    The convolutions see a few days at a time: enough for one transit's shape. Telling a planet
    from an eclipsing binary needs the whole series: a secondary eclipse half a period away, odd
    and even eclipses of different depth. ``attention_layers`` transformer layers over the
    down-sampled sequence (~100 steps of ~16 h) compare every event with every other. Max pooling
    makes the score depend on the strongest dip-like pattern anywhere (a transit covers < 5% of the
    cadences), average pooling on the overall texture.
    """

    def __init__(self, n_classes: int = 2, width: int = 24, depth: int = 4, dropout: float = 0.1,
                 in_channels: int = 2, attention_layers: int = 0, heads: int = 4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(in_channels, width, 9, stride=2, padding=4, bias=False),
                                  nn.BatchNorm1d(width), nn.GELU())
        blocks, c = [], width
        for i in range(depth):
            c_out = width * 2 ** min(i, 2)
            blocks.append(ResBlock1d(c, c_out, stride=2, dilation=1 + (i % 2), dropout=dropout))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.attention = None
        if attention_layers > 0:
            layer = nn.TransformerEncoderLayer(c, heads, dim_feedforward=2 * c, dropout=dropout,
                                               batch_first=True, norm_first=True, activation="gelu")
            self.attention = nn.TransformerEncoder(layer, attention_layers, enable_nested_tensor=False)
            self.max_positions = 512
            self.position = nn.Parameter(torch.zeros(1, self.max_positions, c))
            nn.init.trunc_normal_(self.position, std=0.02)
        self.head = nn.Sequential(nn.Linear(2 * c, 64), nn.GELU(), nn.Dropout(dropout), nn.Linear(64, n_classes))

    def forward(self, x):
        h = self.blocks(self.stem(_as_channels(x)))
        if self.attention is not None:
            seq = h.transpose(1, 2)
            seq = seq + self.position[:, : seq.shape[1]]
            h = self.attention(seq).transpose(1, 2)
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.head(pooled)


MODELS = ModelRegistry()


@register_model(MODELS, data_defaults={"input": "views", "inject_prob": 0.4, "inject_eb_prob": 0.15,
                                      "inject_beb_prob": 0.15, "detrend": "median", "window_days": 1.0},
                # the injected light curves already balance the classes (~1 host in 3)
                train_overrides={"sampler": "none", "lr": 2e-3, "batch_size": 128})
def views_net(n_classes: int, stats: dict, *, width: int = 16, dropout: float = 0.2):
    """CNN on box-least-squares transit views (global, local, odd/even, secondary) + search
    statistics, trained with planets, EBs and background EBs injected into raw light curves
    (default)

    Data parameters: ``inject_prob`` / ``inject_eb_prob`` / ``inject_beb_prob``, extra training
    light curves per non-host with an injected planet / eclipsing binary / background EB;
    ``detrend`` (median | biweight | none) and ``window_days`` of the detrending."""
    from .search import SearchSettings
    from .views_net import ViewsNet

    s = SearchSettings.from_stats(stats)
    return ViewsNet(n_classes, s.n_global, s.n_local, s.n_scalars, width=width, dropout=dropout)


@register_model(MODELS, data_defaults={"inject_prob": 0.3, "inject_eb_prob": 0.2})
def resnet1d(n_classes: int, stats: dict, *, width: int = 32, depth: int = 5, dropout: float = 0.1,
             attention_layers: int = 2) -> ResNet1d:
    """residual dilated 1-D CNN + self-attention over time, trained with injected transits
    and eclipsing binaries

    Data parameters: ``inject_prob`` / ``inject_eb_prob``, the chance that a training series
    receives a synthetic transit / eclipsing binary (see :mod:`.augment`)."""
    return ResNet1d(n_classes, width=width, depth=depth, dropout=dropout, attention_layers=attention_layers)


@register_model(MODELS, data_defaults={"inject_prob": 0.0, "inject_eb_prob": 0.0}, train_overrides={"lr": 1e-3})
def seed_cnn(n_classes: int, stats: dict) -> SeedCNN:
    """the seed project's Conv1d 6/16 + FC 500-64 network (parity)"""
    return SeedCNN(int(stats.get("length", 3197)), n_classes)
