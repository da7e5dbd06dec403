"""Shared fixtures: the real-data folder beside the checkout, and quiet, single-thread torch."""
from __future__ import annotations

import os
import shutil
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
def _private_cache(tmp_path_factory):
    """Preprocessing caches (transit views) go to a folder of the session, never ~/.cache."""
    old = os.environ.get("SKYSIFT_CACHE_DIR")
    os.environ["SKYSIFT_CACHE_DIR"] = str(tmp_path_factory.mktemp("skysift_cache"))
    yield
    if old is None:
        os.environ.pop("SKYSIFT_CACHE_DIR", None)
    else:
        os.environ["SKYSIFT_CACHE_DIR"] = old


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    # under pytest-xdist (`make test` runs two workers) the cores are shared out between workers:
    # threads beyond a worker's share only wait on each other
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // max(1, workers))))
    yield


#: a transits network small enough to train in seconds on one CPU core
TINY_TRANSITS = {"width": 8, "depth": 2, "attention_layers": 1}


@pytest.fixture(scope="session")
def train_tiny_transits(tmp_path_factory):
    """``train_tiny_transits(seed=, epochs=, n=120, positive_fraction=0.1) -> (run_dir, training CSV)``:
    a tiny transits model trained on ``n`` simulated light curves. Trained once per distinct
    arguments per session, so test modules asking for the same run share it; treat it as read-only."""
    import skysift
    from skysift.transits.simulate import simulate_light_curves, write_kaggle_csv

    runs: dict[tuple, tuple[Path, Path]] = {}

    def train(*, seed: int, epochs: int = 1, n: int = 120, positive_fraction: float = 0.1) -> tuple[Path, Path]:
        key = (seed, epochs, n, positive_fraction)
        if key not in runs:
            d = tmp_path_factory.mktemp(f"tiny_transits_s{seed}_e{epochs}")
            flux, labels, _ = simulate_light_curves(n, seed=seed, positive_fraction=positive_fraction)
            csv = write_kaggle_csv(d / "exoTrain.csv", flux, labels)
            skysift.train("transits", csv, d / "run", model="resnet1d", epochs=epochs, progress=False,
                          model_params=TINY_TRANSITS)
            runs[key] = (d / "run", csv)
        return runs[key]

    return train


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium. The suite installs nothing: ``make install`` (and so ``make test``
    and ``.ci/run``) puts it there when it can; without it the browser tests skip."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("headless Chromium is not installed: run `make chromium` as root (it installs "
                    "Debian's 'chromium' package), or install that package yourself")
    return exe


@pytest.fixture(scope="session")
def as_upload():
    """``as_upload(path) -> (filename, bytes)`` for a multipart upload: a file as is, a folder as a
    zip of it (the service unpacks it)."""
    import io
    import zipfile

    def upload(path: Path) -> tuple[str, bytes]:
        path = Path(path)
        if path.is_file():
            return path.name, path.read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    zf.write(f, Path(path.name) / f.relative_to(path))
        return path.name + ".zip", buf.getvalue()

    return upload
