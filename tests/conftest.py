"""Shared fixtures: the real-data folder beside the checkout, and quiet, single-thread torch."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("SKYSIFT_NO_PROGRESS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as skysift sets it, before any test imports torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKYSIFT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that use it are marked ``realdata`` and skip when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    yield


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; installed with apt-get when missing (as root), else the test skips."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe:
        return exe
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("headless Chromium is not installed and apt-get (as root) is unavailable: "
                    "install Debian's 'chromium' package to run the browser check")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    r = subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, text=True, timeout=900, env=env)
    if r.returncode != 0:  # stale or missing package lists: refresh once and retry
        subprocess.run([apt, "update"], capture_output=True, text=True, timeout=600, env=env)
        r = subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, text=True, timeout=900, env=env)
    exe = shutil.which("chromium")
    if r.returncode != 0 or exe is None:
        pytest.skip(f"could not install chromium with apt-get: {r.stderr[-300:]}")
    return exe
