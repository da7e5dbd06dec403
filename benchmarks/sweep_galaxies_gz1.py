"""Configuration sweep behind the galaxies default model, on the real Galaxy Zoo 1 cutouts.

Outside the training loop on purpose: it holds every image in memory as one tensor and skips the
per-item dataset and Lightning, so one configuration of 15 epochs takes ~2 min on 2 CPU cores (or
seconds on a GPU). It never reads the frozen outer test split of ``benchmarks/protocol.md``
(``benchmarks/splits/gz1_outer_test.json``): those galaxies are dropped first, and what the sweep
reports is accuracy on a *selection* split (stratified 20 % of the remaining 4,532, seed 0), so that
the outer split stays untouched by every choice made here. It mirrors skysift's galaxies pipeline:
a stratified validation split of the rest for picking the best epoch, the package's
own symmetry + small-rotation + crop augmentation (``SymmetryAugment``) and brightness factor,
AdamW with warm-up and cosine decay, cross-entropy, and 8-symmetry TTA. Winners are then re-measured through ``skysift.train`` with
``bench_galaxies.py gz1``.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/sweep_galaxies_gz1.py CONFIGS.json RESULTS.jsonl

``CONFIGS.json`` is a list of overrides, e.g. ``[{"backbone": "resnet10t", "size": 48, "epochs": 15}]``
(keys: backbone, size, crop, epochs, lr, wd, bs, seed, scheme three|six|six_to_three, rot,
crop_scale, bright, drop, ls, val_frac, mixup, ema, sampler none|sqrt, save: a .npy path for the
selection-split probabilities). Each line of ``RESULTS.jsonl``: selection-split accuracy and macro-F1
without and with TTA. (Figures from before the protocol, in the README's sweep table, were measured
on a split that overlapped today's outer test split and are kept there only as history.)
"""
import json
import math
import os
import sys
import time

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from skysift.galaxies.augment import SymmetryAugment, dihedral

dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DT = dev.type
GZ1 = os.environ.get("SKYSIFT_GZ1", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "..", "..", "shared", "data", "galaxyzoo", "gz1"))
import pandas as pd

lab = pd.read_csv(f"{GZ1}/labels.csv", dtype={"OBJID": str})
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import outer_mask  # noqa: E402

# the frozen outer test galaxies: dropped before any split is drawn; their images sit in RAW only
# because indices are global, and are never trained, validated or scored on here
OUTER = outer_mask(lab.OBJID.to_numpy(), "gz1_outer_test")


def _central(path, frac=0.4):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    c = int(round(frac * min(w, h)))
    l, t = (w - c) // 2, (h - c) // 2
    return np.asarray(im.crop((l, t, l + c, t + c)))


# the central 40 % of each 423-px cutout, at full resolution: every crop the sweep tries is inside it
RAW = [_central(f"{GZ1}/images/{o}.jpeg") for o in lab.OBJID]
SIX = lab.CLASS.to_numpy()
THREE = np.select([SIX == 0, np.isin(SIX, [1, 2, 3])], [0, 1], 2)
_cache = {}


def images(crop, size):
    key = (crop, size)
    if key not in _cache:
        out = np.empty((len(RAW), size, size, 3), np.uint8)
        for i, a in enumerate(RAW):
            n = a.shape[0]; c = int(round(crop / 0.4 * n)); l = (n - c) // 2
            out[i] = np.asarray(Image.fromarray(a[l:l + c, l:l + c]).resize((size, size), Image.BICUBIC))
        _cache[key] = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    return _cache[key]


def augment(x, rot_deg, crop_scale, bright, g):
    """The package's batch augmentation (symmetry, rotation, crop), then its brightness factor,
    which the package draws per item in the dataset and this sweep per image of the batch."""
    out, _ = SymmetryAugment(rot_deg, crop_scale)(x, torch.zeros(len(x), dtype=torch.long), g)
    if bright:
        out = out * (1 + bright * (2 * torch.rand(len(x), 1, 1, 1, generator=g).to(x.device) - 1))
    return out


def run(cfg):
    c = dict(backbone="regnetx_002", size=64, crop=0.3, epochs=15, lr=2e-3, wd=0.05, bs=64, seed=0, scheme="three",
             rot=15.0, crop_scale=0.85, bright=0.15, drop=0.1, ls=0.0, val_frac=0.2, sched="cos", warm=1,
             mixup=0.0, ema=0.0, sampler="none")
    c.update(cfg)
    y_all = THREE if c["scheme"] == "three" else SIX
    merge = c["scheme"] == "six_to_three"
    K = int(y_all.max()) + 1
    x_all = images(c["crop"], c["size"])
    idx = np.flatnonzero(~OUTER)
    strat = THREE[idx] if merge else y_all[idx]
    fit_idx, test_idx = train_test_split(idx, test_size=0.2, stratify=strat, random_state=0)
    fit_idx = np.sort(fit_idx); test_idx = np.sort(test_idx)
    tr_idx, va_idx = train_test_split(fit_idx, test_size=c["val_frac"], stratify=y_all[fit_idx], random_state=c["seed"])
    torch.manual_seed(c["seed"])
    xf = x_all.float().div(255)
    mean = xf[tr_idx].mean(dim=(0, 2, 3)).view(1, 3, 1, 1); std = xf[tr_idx].std(dim=(0, 2, 3)).view(1, 3, 1, 1)
    xn = ((xf - mean) / std).to(dev)
    y = torch.from_numpy(y_all).to(dev)
    net = timm.create_model(c["backbone"], pretrained=False, num_classes=K, drop_rate=c["drop"]).to(dev)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=c["lr"], weight_decay=c["wd"])
    steps_per = len(tr_idx) // c["bs"]
    total = steps_per * c["epochs"]
    warm = steps_per * c["warm"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / max(1, warm)) * (
        0.5 * (1 + math.cos(math.pi * min(1.0, s / total))) if c["sched"] == "cos" else 1.0))
    # one CPU generator drives every random draw, on any device, as in the package
    g = torch.Generator().manual_seed(c["seed"])
    ema = timm.utils.ModelEmaV3(net, decay=c["ema"]) if c["ema"] else None
    tr_t = torch.from_numpy(tr_idx).to(dev)

    def predict(model, ids, tta):
        model.eval(); outs = []
        with torch.no_grad(), torch.autocast(DT, dtype=torch.bfloat16, enabled=DT == "cuda"):
            for i in range(0, len(ids), 512):
                xb = xn[ids[i:i + 512]]
                p = sum(F.softmax(model(dihedral(xb, k).contiguous(memory_format=torch.channels_last)).float(), 1)
                        for k in (range(8) if tta else [0]))
                outs.append(p / (8 if tta else 1))
        return torch.cat(outs).cpu().numpy()

    best, best_state, hist = (1e9, None), None, []
    t0 = time.time()
    if c["sampler"] == "sqrt":
        counts = np.bincount(y_all[tr_idx], minlength=K); w = 1 / np.sqrt(counts[y_all[tr_idx]])
        wt = torch.tensor(w / w.sum())
    for ep in range(c["epochs"]):
        net.train()
        if c["sampler"] == "sqrt":
            perm = tr_t[torch.multinomial(wt, len(tr_t), replacement=True, generator=g).to(dev)]
        else:
            perm = tr_t[torch.randperm(len(tr_t), generator=g).to(dev)]
        for i in range(steps_per):
            b = perm[i * c["bs"]:(i + 1) * c["bs"]]
            xb = augment(xn[b], c["rot"], c["crop_scale"], c["bright"], g).contiguous(memory_format=torch.channels_last)
            yb = F.one_hot(y[b], K).float()
            if c["ls"]:
                yb = yb * (1 - c["ls"]) + c["ls"] / K
            if c["mixup"]:
                lam = float(np.random.beta(c["mixup"], c["mixup"]))
                p2 = torch.randperm(len(b), device=dev)
                xb = lam * xb + (1 - lam) * xb[p2]; yb = lam * yb + (1 - lam) * yb[p2]
            with torch.autocast(DT, dtype=torch.bfloat16, enabled=DT == "cuda"):
                out = net(xb)
            loss = -(yb * F.log_softmax(out.float(), 1)).sum(1).mean()
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
            if ema is not None:
                ema.update(net)
        model = ema.module if ema is not None else net
        pv = predict(model, va_idx, False)
        vl = float(-np.log(np.clip(pv[np.arange(len(va_idx)), y_all[va_idx]], 1e-9, 1)).mean())
        hist.append(round(vl, 4))
        if vl < best[0]:
            best = (vl, ep); best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model = ema.module if ema is not None else net
    model.load_state_dict(best_state)
    res = {}
    for tta in (False, True):
        p = predict(model, test_idx, tta); yt = y_all[test_idx]
        if merge:
            p = np.stack([p[:, 0], p[:, 1:4].sum(1), p[:, 4:].sum(1)], 1); yt = THREE[test_idx]
        pred = p.argmax(1)
        if tta and c.get("save"):
            np.save(c["save"], p)
        res["tta" if tta else "plain"] = (round(float((pred == yt).mean()), 4), round(float(f1_score(yt, pred, average="macro")), 4))
    pv = predict(model, va_idx, True)
    res["val_acc_tta"] = round(float((pv.argmax(1) == y_all[va_idx]).mean()), 4)
    res.update(cfg=cfg, best_epoch=best[1], val_loss=round(best[0], 4), secs=round(time.time() - t0, 1))
    return res


if __name__ == "__main__":
    cfgs = json.loads(open(sys.argv[1]).read())
    out = open(sys.argv[2], "a")
    for cfg in cfgs:
        try:
            r = run(cfg)
        except Exception as e:  # keep sweeping
            r = {"cfg": cfg, "error": repr(e)[:300]}
        print(json.dumps(r), flush=True); out.write(json.dumps(r) + "\n"); out.flush()
