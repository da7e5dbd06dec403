"""HTTP serving of trained skysift models (FastAPI).

>>> from skysift.serving import create_app
>>> app = create_app({"kepler": "runs/kepler", "gz": "runs/gz"})   # uvicorn.run(app)

Every task that implements ``parse_request`` (JSON bodies) and ``load`` (uploaded files) is served
with no task-specific code here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_OBJECTS, create_app

__all__ = ["create_app", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_OBJECTS"]


def __getattr__(name: str):
    # FastAPI and torch load on first use: the CLI imports ``skysift.serving.cli`` to mount
    # ``serve`` and must stay quick
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module 'skysift.serving' has no attribute {name!r}")
