"""The ``skysift`` command line: the same verbs for every task.

User errors (bad files, bad options) print one ``error: ...`` line on stderr and exit with code 2;
no traceback. Set ``SKYSIFT_DEBUG=1`` to see the traceback anyway.
"""
from __future__ import annotations

import inspect
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import SkysiftError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, evaluate and serve classifiers for astronomical survey data.")
console = Console(stderr=True)
out_console = Console()


def _show_version(value: bool) -> None:
    if value:
        from ._version import __version__

        out_console.print(f"skysift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Train, evaluate and serve classifiers for astronomical survey data."""


#: how help shows a value's type, instead of typer's ``<int>``, ``<list[Path]>`` ...
_TYPE_WORDS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "path": "PATH", "file": "FILE",
               "directory": "FOLDER", "bool": ""}


def _readable_help_types() -> None:
    """Typer 0.2x prints Python annotations as types in help (``<bool>`` beside every flag,
    ``<list[Path]>``); show click's words instead, and nothing for flags."""
    try:
        from typer.core import _TyperParameter
    except ImportError:  # another typer: its own display is kept
        return
    original = _TyperParameter.display_type
    if getattr(original, "_skysift", False):
        return

    def display_type(self: Any, ctx: Any) -> str:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return ""
        label = original(self, ctx).strip("<>")
        if label.startswith("list[") and label.endswith("]"):
            label = label[5:-1]
        if "|" in label:  # choices: keep them
            return label
        return _TYPE_WORDS.get(label.lower(), label.upper())

    display_type._skysift = True  # type: ignore[attr-defined]
    _TyperParameter.display_type = display_type  # type: ignore[method-assign]


def _parse_params(items: list[str] | None, option: str = "--param") -> dict:
    """``--param depth=4 --param dropout=0.1`` → dict; values parsed as JSON when they can be."""
    params = {}
    for item in items or []:
        if "=" not in item:
            raise SkysiftError(f"{option} expects NAME=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    return params


@app.command()
def simulate(task: str = typer.Argument(..., help="task name"),
             out: Path = typer.Option(..., "--out", help="folder to write the dataset into"),
             n: Optional[int] = typer.Option(None, "--n", help="number of objects"),
             seed: int = typer.Option(0, "--seed")):
    """Write a simulated dataset in the task's real public format."""
    from . import api

    if n is not None and n < 1:
        raise SkysiftError(f"--n must be >= 1, got {n}")
    path = api.simulate(task, out, n=n, seed=seed)
    out_console.print(f"wrote {path}")


# ---- train: one option per TrainConfig field ---------------------------------------------------
# The options are generated from the dataclass so that a new field cannot be forgotten here; the
# help text is the field's ``metadata["help"]``. Every default is None: the task's own defaults
# (``Task.train_defaults``, then the model's ``train_overrides``) fill in what the user leaves out.

# dict fields keep the option names users know: model_params is --param, data_params --data-param
_DICT_OPTION = {"model_params": "--param"}


def _dict_option(name: str) -> str:
    if name in _DICT_OPTION:
        return _DICT_OPTION[name]
    stem = name[: -len("_params")] if name.endswith("_params") else name
    return f"--{stem.replace('_', '-')}-param"


def _train_fields() -> list[tuple[str, Any, str, str]]:
    """``(field name, CLI type, option declaration, help)`` for every TrainConfig field."""
    import dataclasses
    import typing

    from .core.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    out: list[tuple[str, Any, str, str]] = []
    for f in dataclasses.fields(TrainConfig):
        help_text = f.metadata.get("help", "")
        kinds = set(typing.get_args(hints[f.name])) - {type(None)} or {hints[f.name]}
        if any(k is dict or typing.get_origin(k) is dict for k in kinds):
            out.append((f.name, Optional[List[str]], _dict_option(f.name), f"{help_text} NAME=VALUE (repeatable)"))
        elif kinds == {bool}:
            flag = f.name.replace("_", "-")
            out.append((f.name, Optional[bool], f"--{flag}/--no-{flag}", help_text))
        elif len(kinds) == 1 and kinds <= {int, float}:
            out.append((f.name, Optional[kinds.pop()], "--" + f.name.replace("_", "-"), help_text))
        else:  # str; int | str (devices) is parsed in _train_options
            out.append((f.name, Optional[str], "--" + f.name.replace("_", "-"), help_text))
    return out


def _train_options(values: dict[str, Any]) -> dict[str, Any]:
    """The command line's values as TrainConfig options, leaving out those not given."""
    opts: dict[str, Any] = {}
    for name, cli_type, decl, _ in _train_fields():
        v = values.get(name)
        if cli_type == Optional[List[str]]:
            v = _parse_params(v, decl) or None
        if v is None:
            continue
        if name == "devices" and v.isdigit():
            v = int(v)  # "--devices 2" is two devices; "0,1" and "1," are device indices
        opts[name] = v
    return opts


def _train(task: str, data: Path, out: Path, logger: Optional[List[str]], resume: bool,
           **values: Any) -> None:
    """Train a model; RUN_DIR gets the bundle, logs, validation metrics and plots."""
    from .core.config import TrainConfig

    options = _train_options(values)
    # every value is checked before torch, Lightning or the data load (the task's defaults for
    # what is not given are valid by construction and checked again when merged)
    TrainConfig(**options)
    from .core.training import fit

    t0 = time.time()
    model_obj = fit(task, data, out, resume=resume, loggers=list(logger or []), **options)
    card = model_obj.card
    sizes = card["data"]
    columns = {"validation": card["validation_metrics"]}
    if card.get("validation_metrics_as_is"):  # trained on test-like copies: every figure twice
        columns = {"validation (test-like)": card["validation_metrics"],
                   "validation (as-is)": card["validation_metrics_as_is"]}
    if card.get("test_metrics"):
        test = {"test (headline)": card["test_metrics"]}
        if card.get("test_metrics_test_like"):
            test = {"test (as-is)": card["test_metrics"], "test (test-like)": card["test_metrics_test_like"]}
        columns = {**test, **columns}
    _print_metrics(columns, title=f"{task} / {card['model']['name']} ({time.time() - t0:.0f} s): "
                                  f"train {sizes['n_train']} / validation {sizes['n_val']} / "
                                  f"test {sizes.get('n_test', 0)} objects")
    if not card.get("test_metrics"):
        out_console.print("no test split (--test-frac 0): the validation metrics chose the model; "
                          "measure it with `skysift evaluate` on a test set of your own")
    out_console.print(f"model saved in {out}")


_TRAIN_OWN = ("task", "data", "out", "logger", "resume")


def _train_command() -> Callable[..., None]:
    """``_train`` with a signature typer reads: fixed arguments, then one option per field."""
    P = inspect.Parameter
    params = [
        P("task", P.POSITIONAL_OR_KEYWORD, annotation=str, default=typer.Argument(..., help="task name")),
        P("data", P.KEYWORD_ONLY, annotation=Path,
          default=typer.Option(..., "--data", help="training data (file or folder)")),
        P("out", P.KEYWORD_ONLY, annotation=Path, default=typer.Option(..., "--out", help="run directory")),
    ]
    for name, cli_type, decl, help_text in _train_fields():
        if name in _TRAIN_OWN:
            raise RuntimeError(f"TrainConfig.{name} clashes with the train command's own --{name}")
        metavar = "NAME=VALUE" if cli_type == Optional[List[str]] else None
        params.append(P(name, P.KEYWORD_ONLY, annotation=cli_type,
                        default=typer.Option(None, decl, help=help_text, show_default=False, metavar=metavar)))
    params += [
        P("logger", P.KEYWORD_ONLY, annotation=Optional[List[str]],
          default=typer.Option(None, "--logger", help="extra logger: tensorboard | mlflow | wandb")),
        P("resume", P.KEYWORD_ONLY, annotation=bool,
          default=typer.Option(False, "--resume", help="continue from RUN_DIR/checkpoints/last.ckpt")),
    ]

    def train(**kwargs: Any) -> None:
        _train(**kwargs)

    train.__doc__ = _train.__doc__
    train.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    train.__annotations__ = {p.name: p.annotation for p in params}
    return train


app.command("train")(_train_command())


def _print_metrics(m: dict, title: str) -> None:
    """A table of the numeric metrics in ``m``; ``m`` may also map column names to such dicts."""
    columns = m if m and all(isinstance(v, dict) for v in m.values()) else {"value": m}
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    keys = [k for k, v in next(iter(columns.values())).items() if isinstance(v, (int, float))]

    def cell(v) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v) if isinstance(v, int) else ""

    for k in keys:
        table.add_row(k, *(cell(col.get(k)) for col in columns.values()))
    out_console.print(table)


@app.command()
def evaluate(run_dir: Path = typer.Argument(..., help="a trained run directory"),
             data: Path = typer.Option(..., "--data", help="labelled data (file or folder)"),
             as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
             plots: Optional[Path] = typer.Option(None, "--plots", help="folder for ROC/PR/confusion/reliability PNGs"),
             tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="test-time augmentation "
                                                "(default: as the model was trained)")):
    """Metrics of a trained model on labelled data; objects the model was trained or validated on
    are counted, and the unseen ones scored apart."""
    from . import api
    from .core.overlap import evaluate_with_overlap
    from .core.progress import step

    with step(f"loading model {run_dir}"):
        model = api.load(run_dir)
    with step(f"loading {data}"):
        labelled = model.read(data, labelled=True)
    m = evaluate_with_overlap(model, labelled, tta=tta, plots_dir=plots,
                              warn=lambda msg: console.print(f"warning: {msg}", style="yellow", markup=False,
                                                             highlight=False, soft_wrap=True))
    if as_json:
        sys.stdout.write(json.dumps(m) + "\n")
        return
    _print_metrics(m, title=f"evaluation on {data} ({len(labelled):,} objects)")
    if m.get("unseen"):
        _print_metrics(m["unseen"], title=f"the {m['overlap']['unseen']:,} objects not seen in training")
    if plots is not None:
        out_console.print(f"figures in {plots}")


_DASK_HELP = ("run one Dask task per partition of a catalogue (a folder of Parquet files): on the scheduler "
              "at this address (tcp://host:8786), on a local 2-worker cluster with 'local', or one partition "
              "after the other in this process with 'inline'")


@app.command()
def predict(run_dir: Path = typer.Argument(...), data: Path = typer.Option(..., "--data"),
            out: Path = typer.Option(..., "--out", help="CSV to write (id + class probabilities)"),
            tta: Optional[bool] = typer.Option(None, "--tta/--no-tta"),
            dask: Optional[str] = typer.Option(None, "--dask", metavar="SCHEDULER|local",
                                               help=_DASK_HELP),
            resume: bool = typer.Option(True, "--resume/--no-resume",
                                        help="a streamed prediction (a light-curve file too large to load) "
                                             "continues an interrupted run of the same model and settings; "
                                             "--no-resume starts over"),
            predicted_class: bool = typer.Option(False, "--predicted-class",
                                                 help="append a predicted_class column: the task's declared "
                                                      "decision rule (transients: the Bayes decision under the "
                                                      "training set's class frequencies, stored in the model); "
                                                      "the probability columns are unchanged")):
    """Predict in batch into a submission-style CSV."""
    if dask is not None:
        from .core.scale import predict_catalogue

        r = predict_catalogue(run_dir, data, out, scheduler=dask, tta=tta, predicted_class=predicted_class)
        out_console.print(f"wrote {r['n']} predictions to {out} ({r['partitions']} partitions on "
                          f"{r['workers']} Dask workers, {r['seconds']:.1f} s)")
        return
    from . import api

    result = api.predict(run_dir, data, out, tta=tta, resume=resume, predicted_class=predicted_class)
    if isinstance(result, dict):  # streamed chunk by chunk (a file too large to load)
        resumed = result.get("resumed_from")
        out_console.print(f"wrote {result['objects']} predictions to {out} in {result['chunks']} chunks"
                          + (f" (resumed after object {resumed})" if resumed is not None else ""))
    else:
        out_console.print(f"wrote {len(result)} predictions to {out}")


@app.command()
def features(task: str = typer.Argument(..., help="task name, or a run directory (its training statistics)"),
             data: Path = typer.Option(..., "--data", help="data or a catalogue (a folder of Parquet partitions)"),
             out: Path = typer.Option(..., "--out", help="Parquet file: id, label (when known), f000..."),
             dask: Optional[str] = typer.Option(None, "--dask", metavar="SCHEDULER|local",
                                                help=_DASK_HELP)):
    """Feature vectors of every object (the task's features) into one Parquet file."""
    from .core.scale import features_catalogue

    # without --dask the partitions are processed one after the other in this process
    r = features_catalogue(task, data, out, scheduler=dask or "inline")
    out_console.print(f"wrote {r['n']} x {r['n_features']} features to {out} ({r['partitions']} partitions, "
                      f"{r['seconds']:.1f} s)")


@app.command()
def info(run_dir: Path = typer.Argument(...),
         as_json: bool = typer.Option(False, "--json")):
    """Print the model card."""
    from .core.bundle import read_card

    card = read_card(run_dir)
    if as_json:
        sys.stdout.write(json.dumps(card) + "\n")
        return
    from .core.card import card_rows
    from .core.task import task_info, task_names

    task = task_info(card["task"]) if card["task"] in task_names() else None
    t = Table(title=f"model card: {run_dir}", show_header=False)
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")
    for k, v in card_rows(card, task):
        t.add_row(k, v)
    for prefix, key in (("test", "test_metrics"), ("val", "validation_metrics")):
        for k, v in (card.get(key) or {}).items():
            if isinstance(v, float):
                t.add_row(f"{prefix} {k}", f"{v:.4f}")
    out_console.print(t)


@app.command()
def models(task: str = typer.Argument(...)):
    """List the models registered for a task."""
    import importlib

    from .core.task import task_info

    info = task_info(task)
    # the task's models module alone: the task module would also load its data libraries
    registry = importlib.import_module(f"skysift.{task}.models").MODELS
    table = Table(title=f"{task} models")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("description")
    for name in registry.names():
        s = registry.get(name)
        table.add_row(name + (" (default)" if name == info.default_model else ""), s.kind, s.description)
    out_console.print(table)


@app.command()
def tasks():
    """List the installed tasks."""
    from .core.task import task_info, task_names

    for name in task_names():
        out_console.print(f"[bold]{name}[/bold]: {task_info(name).description}")


@app.command()
def demo(out: Path = typer.Option(Path("demo_out"), "--out"),
         task: Optional[List[str]] = typer.Option(None, "--task", help="only these tasks"),
         seed: int = typer.Option(0, "--seed")):
    """simulate → train → evaluate → predict for every task, on the embedded simulators."""
    from .demo import run_demo

    run_demo(out, tasks=task or None, seed=seed, console=out_console)


@app.command()
def explore(task: str = typer.Argument(...), data: Path = typer.Option(..., "--data"),
            out: Path = typer.Option(..., "--out", help="folder for the figures, tables and HTML pages"),
            max_n: int = typer.Option(5000, "--max-n", help="objects used for embeddings and statistics"),
            seed: int = typer.Option(0, "--seed")):
    """Look at a dataset: class balance, examples per class, statistics, PCA/UMAP 2-D and 3-D views."""
    from .explore import explore as run_explore

    if max_n < 10:
        raise SkysiftError(f"--max-n must be >= 10, got {max_n}")
    files = run_explore(task, data, out, max_n=max_n, seed=seed)
    for name, path in files.items():
        out_console.print(f"{name}: {path}")


def _mount_optional() -> None:
    """Sub-commands that live in their own modules (serving, reports, datasets, explore ...)."""
    import importlib

    _readable_help_types()
    for module, attr, name in (("skysift.serving.cli", "register", None),
                               ("skysift.report", "register", None),
                               ("skysift.export", "register", None),
                               ("skysift.datasets.cli", "app", "datasets")):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                continue
            raise
        obj = getattr(mod, attr, None)
        if obj is None:
            continue
        if name:
            app.add_typer(obj, name=name)
        else:
            obj(app)


# Third-party warnings that say nothing a skysift user can act on; each filter names its message
# (a regex on the start) so that every other warning, the loaders' own included, still shows.
_QUIET = (
    # DataLoader workers: num_workers=0 is the default on purpose (see TrainConfig.num_workers)
    (r".*does not have many workers", UserWarning),
    # Lightning's advice on how often to log, for our small validation sets
    (r"The number of training batches \(\d+\) is smaller than the logging interval", UserWarning),
    # torch's pytree deprecation, triggered inside Lightning
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", Warning),
    # matplotlib, when the validation split lacks a class to draw a curve for
    (r"No artists with labels found to put in legend", UserWarning),
)


def _show_warnings_once(console: Console) -> None:
    """Route Python warnings to ``console`` as one yellow ``warning: ...`` line each, once per
    message: a loader that warns per file or per batch would otherwise repeat itself."""
    seen: set[tuple[type, str]] = set()

    def show(message, category, filename, lineno, file=None, line=None):  # the warnings.showwarning API
        key = (category, str(message))
        if key in seen:
            return
        seen.add(key)
        console.print(f"warning: {message}", style="yellow", markup=False, highlight=False, soft_wrap=True)

    for message, category in _QUIET:
        warnings.filterwarnings("ignore", message=message, category=category)
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    # catch_warnings: a caller of main() (the tests, a notebook) gets its warning settings back
    with warnings.catch_warnings():
        if not sys.warnoptions:  # python -W ... given by the user wins
            _show_warnings_once(console)
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    _mount_optional()
    try:
        app(args=argv, standalone_mode=False)
        return 0
    except SkysiftError as e:
        if os.environ.get("SKYSIFT_DEBUG"):
            raise
        console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except OSError as e:
        # the operating system refusing a file the user named (missing, a folder, read-only, disk
        # full); an OSError without a file name is not the user's input and keeps its traceback
        if e.filename is None or os.environ.get("SKYSIFT_DEBUG"):
            raise
        what = "no such file or directory" if isinstance(e, FileNotFoundError) else \
            (e.strerror or type(e).__name__).lower()
        console.print(f"error: {e.filename}: {what}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("error: interrupted (resume training with --resume)", markup=False)
        return 130
    except SystemExit as e:
        return int(e.code or 0)
    except Exception as e:  # click usage errors
        aborts, usage = _click_exception_types()
        if isinstance(e, aborts):
            return 130
        if isinstance(e, usage):
            msg = e.format_message()
            console.print(f"error: {msg}", markup=False, highlight=False, soft_wrap=True)
            return 2
        raise


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(Abort, ClickException) classes of click and of the copy of click that newer Typer releases
    bundle (``typer._click``): usage errors come from whichever one parsed the command line."""
    import click

    aborts, usage = [click.exceptions.Abort], [click.ClickException]
    try:
        from typer import _click as bundled  # type: ignore[attr-defined]

        usage.append(bundled.exceptions.ClickException)
        import typer as _typer

        aborts.extend(m.Abort for m in (_typer, bundled, bundled.exceptions) if hasattr(m, "Abort"))
    except ImportError:
        pass
    return tuple(aborts), tuple(usage)


def entry() -> None:
    sys.exit(main())
