"""The one LightningModule every torch model of every task trains in."""
from __future__ import annotations

from typing import Callable

import lightning as L
import numpy as np
import torch

from .losses import ClassificationLoss


class ClassifierModule(L.LightningModule):
    """Wraps a task network ``net`` (inputs -> ``(B, K)`` logits) with loss, optimiser and logging.

    ``batch_augment(inputs, targets, generator)`` (mixup, CutMix ...) runs on training batches only.
    Validation logs ``val_loss`` and, from ``val_scores(targets, logits) -> {name: value}`` on the
    whole validation split each epoch, ``val_<name>`` for each score: the task's headline metric
    among them, which early stopping and the best checkpoint watch.
    """

    def __init__(self, net: torch.nn.Module, loss: ClassificationLoss, *, lr: float, weight_decay: float,
                 epochs: int, batch_augment: Callable | None = None, seed: int = 0,
                 val_scores: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None):
        super().__init__()
        self.net = net
        self.loss_fn = loss
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_augment = batch_augment
        self.val_scores = val_scores
        self._gen = torch.Generator().manual_seed(seed)
        self._val_logits: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, inputs):
        return self.net(inputs)

    def training_step(self, batch, batch_idx):
        inputs, target = batch
        if self.batch_augment is not None:
            inputs, target = self.batch_augment(inputs, target, self._gen)
        logits = self.net(inputs)
        if logits.ndim == 3:
            # an ensemble in training returns its members' logits ``(M, B, K)``: each member learns
            # from its own loss (independent members, which is what averaging needs), in one run
            loss = torch.stack([self.loss_fn(m, target) for m in logits]).mean()
        else:
            loss = self.loss_fn(logits, target)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target))
        return loss

    def validation_step(self, batch, batch_idx):
        inputs, target = batch
        logits = self.net(inputs)
        loss = self.loss_fn(logits, target)
        # sync_dist: under DDP each process sees part of the validation set; the monitor must
        # see all of it, or early stopping and checkpoint choice differ between processes
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(logits),
                 sync_dist=True)
        self._val_logits.append(logits.detach().float().cpu())
        self._val_targets.append(target.detach().cpu())

    def on_validation_epoch_end(self):
        if not self._val_logits:
            return
        logits = torch.cat(self._val_logits)
        target = torch.cat(self._val_targets)
        self._val_logits.clear()
        self._val_targets.clear()
        if self.trainer.world_size > 1:
            # the distributed sampler pads every process's share to one size, so gather works;
            # the padding repeats a few objects, which moves the scores by a hair, not the choice
            gathered = self.all_gather(logits.to(self.device)), self.all_gather(target.to(self.device))
            assert isinstance(gathered[0], torch.Tensor) and isinstance(gathered[1], torch.Tensor)
            logits = gathered[0].reshape(-1, logits.shape[-1]).cpu()
            target = gathered[1].reshape(-1, *target.shape[1:]).cpu()
        hard = target.argmax(dim=1) if target.ndim == 2 else target.long()
        self.log("val_acc", (logits.argmax(dim=1) == hard).float().mean(), prog_bar=True)
        if self.val_scores is not None:
            for name, value in self.val_scores(target.numpy(), logits.numpy()).items():
                self.log(f"val_{name}", float(value), prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps = self.trainer.estimated_stepping_batches
        if not np.isfinite(steps) or steps <= 0:
            return opt
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr, total_steps=int(steps), pct_start=0.15, anneal_strategy="cos"
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
