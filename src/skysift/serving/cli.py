"""``skysift serve``: mounted on the main CLI by :func:`register`."""
from __future__ import annotations

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


def serve(run_dirs: Optional[List[Path]] = typer.Argument(None,
                                                          help="run directories, served under their folder names"),
          model: Optional[List[str]] = typer.Option(None, "--model", help="NAME=RUN_DIR (repeatable)"),
          host: str = typer.Option("127.0.0.1", "--host"),
          port: int = typer.Option(8000, "--port"),
          max_body_mb: float = typer.Option(64.0, "--max-body-mb", help="largest request body accepted"),
          max_objects: int = typer.Option(4096, "--max-objects", help="most objects in one request"),
          log_level: str = typer.Option("info", "--log-level")):
    """Serve trained models over HTTP (FastAPI): /health, /model, /predict, /models/NAME/predict, /docs."""
    import uvicorn

    from .app import create_app

    if not 1 <= port <= 65535:
        raise SkysiftError(f"--port must be in 1..65535, got {port}")
    app = create_app(parse_models(run_dirs, model), max_body_bytes=int(max_body_mb * 1024 * 1024),
                     max_objects=max_objects)
    names = ", ".join(app.state.models)
    typer.echo(f"serving {names} on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
