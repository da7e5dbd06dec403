"""``skysift serve``: mounted on the main CLI by :func:`register`."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import SkysiftError


def parse_models(run_dirs: list[Path] | None, named: list[str] | None) -> dict[str, Path]:
    """``RUN_DIR ...`` (named by folder) and ``--model NAME=RUN_DIR ...`` → ``{name: run_dir}``,
    in the order given (the first is the default model)."""
    models: dict[str, Path] = {}

    def add(name: str, path: Path) -> None:
        if name in models:
            raise SkysiftError(f"two models would be served as {name!r}; name them with --model NAME=RUN_DIR")
        models[name] = path

    for d in run_dirs or []:
        add(Path(d).resolve().name, Path(d))
    for item in named or []:
        if "=" not in item:
            raise SkysiftError(f"--model expects NAME=RUN_DIR, got {item!r}")
        name, path = item.split("=", 1)
        add(name, Path(path))
    if not models:
        raise SkysiftError("give at least one RUN_DIR or --model NAME=RUN_DIR")
    return models


#: where managed endpoints tell a container its port (SageMaker, Vertex AI, then the generic one)
PORT_ENV = ("SAGEMAKER_BIND_TO_PORT", "AIP_HTTP_PORT", "PORT")
#: where SageMaker mounts the model artefacts; served when no run directory is given and it holds one
MANAGED_MODEL_DIR = Path("/opt/ml/model")


def port_from_env(default: int = 8000) -> int:
    for name in PORT_ENV:
        value = os.environ.get(name)
        if value:
            if not value.isdigit():
                raise SkysiftError(f"${name} must be a port number, got {value!r}")
            return int(value)
    return default


def models_from_env() -> list[str]:
    """``$SKYSIFT_MODELS`` (``RUN_DIR`` or ``NAME=RUN_DIR`` items, comma-separated), else the managed
    endpoint's model folder when it holds a bundle."""
    value = os.environ.get("SKYSIFT_MODELS", "").strip()
    if value:
        return [item.strip() for item in value.split(",") if item.strip()]
    if (MANAGED_MODEL_DIR / "model.json").is_file():
        return [f"model={MANAGED_MODEL_DIR}"]
    return []


def serve(run_dirs: Optional[List[Path]] = typer.Argument(None,
                                                          help="run directories, served under their folder names"),
          model: Optional[List[str]] = typer.Option(None, "--model", help="NAME=RUN_DIR (repeatable)"),
          host: str = typer.Option("127.0.0.1", "--host", envvar="SKYSIFT_HOST",
                                   help="address to bind (0.0.0.0 in a container)"),
          port: Optional[int] = typer.Option(None, "--port", show_default=False,
                                             help="port (default: $SAGEMAKER_BIND_TO_PORT, $AIP_HTTP_PORT, "
                                                  "$PORT, else 8000)"),
          max_body_mb: float = typer.Option(64.0, "--max-body-mb", help="largest request body accepted"),
          max_objects: int = typer.Option(4096, "--max-objects", help="most objects in one request"),
          timeout: float = typer.Option(60.0, "--timeout", help="seconds one request may take (503 past it)"),
          graceful_timeout: float = typer.Option(30.0, "--graceful-timeout",
                                                 help="on SIGTERM/SIGINT, seconds to let requests in flight "
                                                      "finish before closing"),
          max_concurrent: Optional[int] = typer.Option(None, "--max-concurrent", show_default=False,
                                                       help="requests predicted at once per process (default: "
                                                            "its CPU cores); the others wait"),
          keep_alive: float = typer.Option(75.0, "--keep-alive",
                                           help="seconds an idle client connection is kept open (longer than "
                                                "a load balancer's, so that it is never the server that closes "
                                                "a connection a request is on its way through)"),
          workers: int = typer.Option(1, "--workers", help="server processes (each loads the models)"),
          log_level: str = typer.Option("info", "--log-level")):
    """Serve trained models over HTTP (FastAPI): /health, /model, /predict, /models/NAME/predict, /docs,
    and the managed-endpoint pair /ping + /invocations. With no RUN_DIR: $SKYSIFT_MODELS, or
    /opt/ml/model when it holds a bundle."""
    import uvicorn

    from .app import create_app

    port = port_from_env() if port is None else port
    if not 1 <= port <= 65535:
        raise SkysiftError(f"--port must be in 1..65535, got {port}")
    if workers < 1:
        raise SkysiftError(f"--workers must be >= 1, got {workers}")
    if not run_dirs and not model:
        items = models_from_env()
        model = [i for i in items if "=" in i]
        run_dirs = [Path(i) for i in items if "=" not in i]
    models = parse_models(run_dirs, model)
    options = {"max_body_bytes": int(max_body_mb * 1024 * 1024), "max_objects": max_objects, "timeout_s": timeout,
               "max_concurrent": max_concurrent}
    app = create_app(models, **options)  # loads (and checks) every model before the port is bound
    names = ", ".join(app.state.models)
    typer.echo(f"serving {names} on http://{host}:{port} (docs at /docs)", err=True)
    config = {"host": host, "port": port, "log_level": log_level, "timeout_graceful_shutdown": graceful_timeout,
              "timeout_keep_alive": keep_alive}
    if workers > 1:
        # each worker process builds its own app from these environment variables (uvicorn's factory)
        os.environ["SKYSIFT_SERVE_SPEC"] = json.dumps({"models": {k: str(v) for k, v in models.items()},
                                                       **options})
        uvicorn.run("skysift.serving.cli:app_from_env", factory=True, workers=workers, **config)
    else:
        uvicorn.run(app, **config)


def app_from_env():
    """The app of ``skysift serve --workers N``, built in each worker process."""
    from .app import create_app

    spec = json.loads(os.environ["SKYSIFT_SERVE_SPEC"])
    return create_app(spec.pop("models"), **spec)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
