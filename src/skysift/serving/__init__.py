"""HTTP serving of trained skysift models (FastAPI).

>>> from skysift.serving import create_app
>>> app = create_app({"kepler": "runs/kepler", "gz": "runs/gz"})   # uvicorn.run(app)

Every task that implements ``parse_request`` (JSON bodies) and ``load`` (uploaded files) is served
with no task-specific code here.
"""
from __future__ import annotations

from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_OBJECTS, create_app

__all__ = ["create_app", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_OBJECTS"]
