"""The GZ1 candidates: galaxy-d4cnn (invariant to quarter turns and mirrors; trains and reloads
through the package like any other galaxies model) and galaxy-multiscale (two views of a cutout)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from skysift.errors import ConfigError
from skysift.galaxies.networks import D4Conv, D4GroupCNN


def test_d4_group_cnn_is_invariant_to_the_dihedral_group():
    torch.manual_seed(0)
    net = D4GroupCNN(3, widths=(2, 4), input_size=16).eval()
    x = torch.randn(2, 3, 20, 20)
    with torch.no_grad():
        ref = net(x)
        for xt in (torch.rot90(x, 1, (2, 3)), torch.rot90(x, 2, (2, 3)), torch.flip(x, (3,)), x.transpose(2, 3)):
            assert torch.allclose(net(xt), ref, atol=1e-5)


def test_d4_conv_is_equivariant_field_by_field():
    torch.manual_seed(1)
    lift, conv = D4Conv(3, 2, 3, lift=True), D4Conv(2, 2, 3)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        y, yr = conv(lift(x)), conv(lift(torch.rot90(x, 1, (2, 3))))
    # a quarter turn rotates the maps and cyclically shifts each field's rotation channels
    y = torch.rot90(y, 1, (2, 3)).view(1, 2, 2, 4, 8, 8)
    assert torch.allclose(torch.roll(y, 1, dims=3).view(1, -1, 8, 8), yr, atol=1e-5) or \
        torch.allclose(torch.roll(y, -1, dims=3).view(1, -1, 8, 8), yr, atol=1e-5)


def test_d4_group_cnn_rejects_sizes_pooling_would_break():
    with pytest.raises(ConfigError):
        D4GroupCNN(3, widths=(2, 4, 8), input_size=30)


def test_galaxy_d4cnn_trains_saves_and_reloads(tmp_path):
    import skysift

    task = skysift.get_task("galaxies")
    path = task.simulate(tmp_path / "sim", n=60, seed=0)
    model = skysift.train("galaxies", path, tmp_path / "run", model="galaxy-d4cnn",
                          model_params={"widths": [2, 4], "input_size": 32}, epochs=1, batch_size=16,
                          progress=False)
    data = task.load(path, labelled=True)
    p = model.predict_proba(data)
    again = skysift.load(tmp_path / "run").predict_proba(data)
    assert p.shape == (60, len(model.class_names)) and np.allclose(p, again, atol=1e-5)


def test_multiscale_sees_the_whole_cutout_and_its_centre():
    from skysift.galaxies.networks import MultiScaleNet

    torch.manual_seed(0)
    net = MultiScaleNet("resnet10t", 3, centre=0.5, input_size=32).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
        ring = x.clone()
        ring[..., :16, :] = 0  # outside the centre: only the whole-cutout view changes
        assert ref.shape == (2, 3) and not torch.allclose(net(ring), ref)
    with pytest.raises(ConfigError):
        MultiScaleNet("resnet10t", 3, centre=1.5)
