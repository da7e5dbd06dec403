"""The FastAPI application: several trained models behind one process, chosen by name in the path.

Routes (``NAME`` is each served model's name; the first model is also the default):

===============================  ==========================================================
``GET  /health``                 liveness + the names of the models served
``GET  /models``                 one line per model (task, network, classes)
``GET  /model``                  the default model's card (``model.json``)
``POST /predict``                class probabilities from the default model
``GET  /models/NAME``            that model's card
``POST /models/NAME/predict``    class probabilities from that model
``GET  /example``, ``/models/NAME/example``  a complete valid JSON body for that model
``GET  /ping``                   managed-endpoint health check (200 once the models are loaded)
``POST /invocations``            managed-endpoint prediction: the same as ``POST /predict``
``GET  /docs``, ``/redoc``, ``/openapi.json``  interactive docs (served from the installed
                                 package, no CDN) and the OpenAPI schema
===============================  ==========================================================

``POST .../predict`` takes the task's JSON body (``application/json``, parsed by
``task.parse_request``: a flux array, observations with metadata, a base64 ``.npy`` cadence, a base64
image; one object, or ``{"objects": [...]}`` for batches), one uploaded file in the task's file
format (``multipart/form-data``, field ``file``; a ``.zip`` is unpacked into a folder first, for
tasks whose format is a folder), or that file as the raw body with its own content type
(``text/csv``, ``application/x-npy``, ``image/png``, ``image/jpeg``, ``application/zip``,
``application/vnd.apache.parquet``, ``application/octet-stream``), read by ``task.load``.
``/ping`` + ``/invocations`` are the convention of managed model endpoints (SageMaker's, which
Vertex AI and others accept too); ``skysift serve`` takes its port from ``SAGEMAKER_BIND_TO_PORT``,
``AIP_HTTP_PORT`` or ``PORT`` when set.

Bad input never reaches a 500: the body size is capped while it is read (413), JSON that does not
parse or uses NaN/Infinity is a 400, an unknown content type a 415, a body the task rejects a 422
whose ``detail`` names the object and the problem, more objects than the limit a 413, and a
prediction that runs past the per-request timeout a 503 (the server stays up).
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .._version import __version__
from ..errors import SkysiftError

log = logging.getLogger("skysift.serving")

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_OBJECTS = 4096
DEFAULT_TIMEOUT_S = 60.0
#: an example body larger than this is replaced in the OpenAPI schema by a pointer to GET .../example
#: (technosignatures' base64 cadence alone would make /openapi.json over a megabyte)
MAX_SCHEMA_EXAMPLE_BYTES = 8192
#: raw-body uploads: content type -> the file name the task's reader identifies it by
RAW_TYPES = {
    "text/csv": "upload.csv",
    "application/x-npy": "upload.npy",
    "image/png": "upload.png",
    "image/jpeg": "upload.jpg",
    "application/zip": "upload.zip",
    "application/vnd.apache.parquet": "upload.parquet",
    "application/octet-stream": "upload",
}
#: an uploaded zip may unpack to at most this many times the body limit (zip bombs)
ZIP_EXPANSION_LIMIT = 8
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# ---- response schemas (they document the API and are checked by the fuzz test) ----------------
class Prediction(BaseModel):
    id: str = Field(description="the object's id (from the request, or its position)")
    predicted: str = Field(description="the predicted class: for two-class models the second class "
                                       "when its probability is at least `threshold`, otherwise the "
                                       "most probable class")
    probabilities: dict[str, float] = Field(description="calibrated probability of every class")
    predicted_class: str | None = Field(None, description=(
        "the task's declared decision rule where it has one (`skysift predict --predicted-class`; "
        "transients: the Bayes decision under the training set's class frequencies, while the "
        "probabilities stay those the class-weighted PLAsTiCC metric rewards); absent otherwise"))


class PredictResponse(BaseModel):
    model: str
    task: str
    class_names: list[str]
    threshold: float | None = Field(None, description=(
        "two-class models: the probability of the second class at and above which it is predicted "
        "(chosen on the validation split; it may be far from 0.5 when that class is rare); null "
        "for models with more classes"))
    n: int = Field(description="number of objects")
    seconds: float = Field(description="time spent parsing and predicting")
    predictions: list[Prediction]


class ModelSummary(BaseModel):
    name: str
    task: str
    network: str
    class_names: list[str]
    accepts_json: bool
    predict_path: str


class Health(BaseModel):
    status: str
    version: str
    models: list[str]


class ErrorBody(BaseModel):
    detail: str


ERRORS = {code: {"model": ErrorBody, "description": text} for code, text in (
    (400, "the body is not valid JSON (NaN and Infinity are not JSON)"),
    (404, "no such model"),
    (413, "body larger than the limit, or more objects than the limit"),
    (415, "content type not accepted (see the request body's media types), or this task takes "
          "no JSON"),
    (422, "the task rejected the input: the message names the object and the problem"),
    (503, "the prediction ran past the server's per-request timeout"),
)}


# ---- one served model ---------------------------------------------------------------------------
class ServedModel:
    """A loaded model plus what the API needs to describe it."""

    def __init__(self, name: str, model):
        self.name = name
        self.model = model
        self.task = model.task
        self.accepts_json = self.task.requests is not None
        self.example: dict | None = self.task.request_example()

    def summary(self, path: str) -> dict:
        return {"name": self.name, "task": self.task.name, "network": self.model.card["model"]["name"],
                "class_names": self.model.class_names, "accepts_json": self.accepts_json,
                "predict_path": path}


def _load_models(models: Mapping[str, Any] | Sequence[Any]) -> dict[str, ServedModel]:
    from ..core.model import Model, load

    if not isinstance(models, Mapping):
        named: dict[str, Any] = {}
        for m in models:
            name = m.run_dir.name if isinstance(m, Model) and m.run_dir else Path(m).name
            if name in named:
                raise SkysiftError(f"two models would be served as {name!r}; name them with NAME=RUN_DIR")
            named[name] = m
        models = named
    if not models:
        raise SkysiftError("no model to serve")
    served = {}
    for name, m in models.items():
        if not NAME_PATTERN.match(name):
            raise SkysiftError(f"model name {name!r} must be letters, digits, '_', '.', '-' (at most 64)")
        served[name] = ServedModel(name, m if isinstance(m, Model) else load(m))
    return served


# ---- helpers ----------------------------------------------------------------------------------
def finite_json(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None: cards may hold NaN metrics, which JSON cannot."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON; send null for a missing value")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPException(413, f"body of {int(declared)} bytes exceeds the limit of {limit} bytes")
        except ValueError:
            raise HTTPException(400, "bad Content-Length header") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _safe_filename(name: str | None) -> str:
    base = Path(name or "upload").name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".") or "upload"
    return base[-120:]


def _unpack_zip(raw: bytes, dest: Path, limit: int) -> Path:
    """Unpack an uploaded zip into ``dest`` after checking every member (no absolute paths, no
    ``..``, bounded total size); returns the folder to load (the single top folder if there is one)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise HTTPException(422, f"the uploaded .zip cannot be read ({e})") from None
    total = 0
    for info in infos:
        p = Path(info.filename)
        if p.is_absolute() or ".." in p.parts or info.filename.startswith(("/", "\\")):
            raise HTTPException(422, f"the uploaded .zip holds an unsafe path {info.filename!r}")
        total += info.file_size
        if total > limit:
            raise HTTPException(413, f"the uploaded .zip unpacks to more than {limit} bytes")
    try:
        zf.extractall(dest)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError) as e:
        raise HTTPException(422, f"the uploaded .zip cannot be unpacked ({e})") from None
    entries = [p for p in dest.iterdir() if p.name != "__MACOSX"]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _clean(text: str) -> str:
    """A message without Python object reprs (a library's ``<_io.BytesIO object at 0x...>``)."""
    return _REPR.sub("the upload", text)


def _input_error(e: Exception, where: str) -> HTTPException:
    """A 422 for input the task refused. Exceptions other than DataError mean the task's parser
    missed a case; the client still gets a 4xx naming the problem, and the log keeps the traceback."""
    if isinstance(e, SkysiftError):
        return HTTPException(422, _clean(str(e)))
    log.warning("unexpected %s while reading %s", type(e).__name__, where, exc_info=True)
    return HTTPException(422, _clean(f"{where}: cannot be read ({type(e).__name__}: {e})"))


# ---- the application ----------------------------------------------------------------------------
def create_app(models: Mapping[str, Any] | Sequence[Any], *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_objects: int = DEFAULT_MAX_OBJECTS, timeout_s: float = DEFAULT_TIMEOUT_S,
               max_concurrent: int | None = None) -> FastAPI:
    """A FastAPI app serving ``models``: ``{name: run_dir or Model}`` or a list of run dirs (named by
    folder). ``max_body_bytes`` caps a request body, ``max_objects`` the objects in one request,
    ``timeout_s`` the seconds one request may take to parse and predict, waiting included (503 past
    it), ``max_concurrent`` the requests parsed and predicted at once (default: the CPU cores this
    process may use); the others wait their turn."""
    from fastapi_offline import FastAPIOffline

    if max_body_bytes < 1024:
        raise SkysiftError(f"max_body_bytes must be >= 1024, got {max_body_bytes}")
    if max_objects < 1:
        raise SkysiftError(f"max_objects must be >= 1, got {max_objects}")
    if not timeout_s > 0:
        raise SkysiftError(f"timeout must be > 0 seconds, got {timeout_s}")
    if max_concurrent is None:
        max_concurrent = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if max_concurrent < 1:
        raise SkysiftError(f"max_concurrent must be >= 1, got {max_concurrent}")
    # Without a bound, 50 clients mean 40 threads (anyio's pool) decoding and predicting at once:
    # each of them multi-threaded (torch, LightGBM), all contending for the cores and the GIL, so
    # that the event loop itself is starved, latencies grow for everyone and keep-alive
    # connections are dropped. Waiting in the loop costs nothing.
    gate = asyncio.Semaphore(max_concurrent)
    served = _load_models(models)
    default = next(iter(served))
    # Swagger UI and ReDoc from the installed package's static files: served models often sit on
    # networks without a route to a CDN
    app = FastAPIOffline(
        static_url="/static-docs",
        title="skysift",
        version=__version__,
        description=("Classifiers for astronomical survey data. Models served: "
                     + ", ".join(f"`{n}` ({s.task.name})" for n, s in served.items())
                     + f". The default model (`/predict`, `/model`) is `{default}`."),
    )
    app.state.models = served

    async def predict(served_model: ServedModel, request: Request) -> dict:
        body = await read_body(request, max_body_bytes)
        async def gated() -> dict:
            async with gate:
                return await _predict(served_model, request, body)

        try:
            return await asyncio.wait_for(gated(), timeout_s)
        except TimeoutError:
            # the worker thread finishes in the background; the client is told now, and the server
            # keeps answering others
            raise HTTPException(503, f"prediction took longer than the server's limit of {timeout_s:g} s; "
                                     "send fewer objects per request") from None

    async def _predict(served_model: ServedModel, request: Request, body: bytes) -> dict:
        t0 = time.perf_counter()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # uploaded files live until the prediction is done: loaders may read them lazily
        tmp = Path(tempfile.mkdtemp(prefix="skysift-upload-"))
        try:
            if ctype in ("application/json", ""):
                data = await _from_json(served_model, body)
            elif ctype == "multipart/form-data":
                data = await _from_upload(served_model, request, body, tmp)
            elif ctype in RAW_TYPES:
                data = await _from_file(served_model, body, RAW_TYPES[ctype], tmp)
            else:
                raise HTTPException(415, f"content type {ctype!r} not accepted: send application/json, a "
                                         "multipart/form-data upload in field 'file', or the file itself as "
                                         f"one of {', '.join(RAW_TYPES)}")
            if len(data) > max_objects:
                raise HTTPException(413, f"{len(data)} objects in one request; the limit is {max_objects}")
            if len(data) == 0:
                raise HTTPException(422, "the request holds no objects")
            model = served_model.model
            try:
                # the task's extra columns too (PLAsTiCC's class 99)
                proba, names = await run_in_threadpool(model.predict_output, data)
            except SkysiftError as e:  # lazily read inputs are validated as they are read
                raise HTTPException(422, _clean(str(e).replace(str(tmp), "upload"))) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        bad = np.flatnonzero(~np.isfinite(proba).all(axis=1))
        if len(bad):
            raise HTTPException(422, f"object {int(bad[0])} ({data.ids[bad[0]]}): the model produced "
                                     "non-finite probabilities for this input")
        threshold = float(model.threshold) if len(names) == 2 else None
        if threshold is not None:
            pred = (proba[:, 1] >= threshold).astype(int)
        else:
            pred = proba.argmax(axis=1)
        # the task's declared decision rule (``predict --predicted-class``), where it has one: the
        # same answer over HTTP as from the command line, the API and a Dask catalogue
        decided = model.task.decide(proba, names, model.stats)
        predictions = [{"id": str(i), "predicted": names[p],
                        "probabilities": {c: float(v) for c, v in zip(names, row)}}
                       for i, p, row in zip(data.ids, pred, proba)]
        if decided is not None:
            for entry, d in zip(predictions, decided):
                entry["predicted_class"] = str(d)
        return {
            "model": served_model.name, "task": served_model.task.name, "class_names": names,
            "threshold": threshold, "n": len(data), "seconds": round(time.perf_counter() - t0, 4),
            "predictions": predictions,
        }

    async def _from_json(served_model: ServedModel, body: bytes):
        try:
            payload = json.loads(body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise HTTPException(400, f"body is not valid JSON ({str(e)[:200]})") from None
        if not served_model.accepts_json:
            raise HTTPException(415, f"task {served_model.task.name!r} takes no JSON body; upload a file "
                                     "(multipart/form-data, field 'file')")
        try:
            return await run_in_threadpool(served_model.model.parse_request, payload)
        except Exception as e:  # noqa: BLE001 - see _input_error
            raise _input_error(e, "request") from None

    async def _from_upload(served_model: ServedModel, request: Request, body: bytes, tmp: Path):
        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
        except HTTPException:
            raise
        except Exception as e:  # noqa: BLE001 - malformed multipart bodies raise parser-specific errors
            raise HTTPException(400, f"malformed multipart body ({type(e).__name__}: {str(e)[:200]})") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart body needs one file in field 'file'")
        return await _from_file(served_model, await upload.read(), _safe_filename(upload.filename), tmp)

    async def _from_file(served_model: ServedModel, raw: bytes, name: str, tmp: Path):
        if name.lower().endswith(".zip"):
            path = _unpack_zip(raw, tmp / "unpacked", ZIP_EXPANSION_LIMIT * max_body_bytes)
        else:
            path = tmp / name
            path.write_bytes(raw)
        try:
            return await run_in_threadpool(served_model.model.read, path, labelled=False)
        except Exception as e:  # noqa: BLE001 - see _input_error
            err = _input_error(e, name)
            err.detail = str(err.detail).replace(str(path), name).replace(str(tmp), "upload")
            raise err from None

    def request_body(served_model: ServedModel) -> dict:
        content: dict = {}
        if served_model.accepts_json:
            json_body: dict = {"schema": {"type": "object", "additionalProperties": True,
                                          "description": type(served_model.task.requests).__doc__ or ""}}
            if served_model.example is not None:
                json_body["example"] = compact_example(served_model.example)
            content["application/json"] = json_body
        content["multipart/form-data"] = {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": f"one file (or a .zip of a folder) in a format "
                                                   f"{served_model.task.name}'s loader reads"}}}}
        for ctype in RAW_TYPES:
            content[ctype] = {"schema": {"type": "string", "format": "binary",
                                         "description": "the file itself as the body"}}
        return {"requestBody": {"required": True, "content": content}}

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> dict:
        return {"status": "ok", "version": __version__, "models": list(served)}

    @app.get("/ping", tags=["managed endpoint"], summary="health check of the managed-endpoint convention",
             responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}})
    def ping() -> JSONResponse:
        # the models were loaded before the app was built: being able to answer is being healthy
        return JSONResponse({"status": "ok"})

    async def invocations(request: Request) -> dict:
        return await predict(served[default], request)

    app.add_api_route("/invocations", invocations, methods=["POST"], tags=["managed endpoint"],
                      response_model=PredictResponse, responses=ERRORS,
                      summary=f"class probabilities from the default model {default!r} (as POST /predict)",
                      operation_id="invocations", openapi_extra=request_body(served[default]))

    @app.get("/models", response_model=list[ModelSummary], tags=["service"])
    def list_models() -> list[dict]:
        return [s.summary(f"/models/{n}/predict") for n, s in served.items()]

    def add_routes(prefix: str, sm: ServedModel, tag: str) -> None:
        async def card() -> JSONResponse:
            return JSONResponse(finite_json(sm.model.card))

        async def predict_route(request: Request) -> dict:
            return await predict(sm, request)

        async def example() -> Response:
            if sm.example is None:
                raise HTTPException(404, f"task {sm.task.name!r} takes no JSON body; upload a file")
            return JSONResponse(sm.example)

        app.add_api_route(f"{prefix}/example", example, methods=["GET"], tags=[tag],
                          summary=f"a complete valid JSON body for {sm.name!r}",
                          operation_id=f"example_{_op(prefix or 'default')}",
                          responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}},
                                     404: ERRORS[404] | {"description": "the task takes no JSON body"}})
        app.add_api_route(prefix or "/model", card, methods=["GET"], tags=[tag],
                          summary=f"model card of {sm.name!r} ({sm.task.name})",
                          operation_id=f"card_{_op(prefix or 'default')}",
                          responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}})
        app.add_api_route(f"{prefix}/predict", predict_route, methods=["POST"], tags=[tag],
                          response_model=PredictResponse, responses=ERRORS,
                          summary=f"class probabilities from {sm.name!r} ({sm.task.name})",
                          description=sm.task.describe_input(),
                          operation_id=f"predict_{_op(prefix or 'default')}",
                          openapi_extra=request_body(sm))

    add_routes("", served[default], "default model")
    for name, sm in served.items():
        add_routes(f"/models/{name}", sm, name)

    def unknown(name: str):
        raise HTTPException(404, f"no model named {name!r}; served: {', '.join(served)}")

    # after the real routes, so only names that are not served reach these
    app.add_api_route("/models/{name}", unknown, methods=["GET"], include_in_schema=False)
    app.add_api_route("/models/{name}/predict", unknown, methods=["POST"], include_in_schema=False)
    app.add_api_route("/models/{name}/example", unknown, methods=["GET"], include_in_schema=False)
    return app


def compact_example(example: dict) -> dict:
    """``example`` for the OpenAPI schema: itself when small; otherwise its first object with long
    lists cut to their first values and long strings elided, and a note pointing to GET .../example
    for the complete body (the schema is downloaded by every docs page view)."""
    if len(json.dumps(example)) <= MAX_SCHEMA_EXAMPLE_BYTES:
        return example

    def shrink(v: Any) -> Any:
        if isinstance(v, str) and len(v) > 64:
            return v[:32] + "...(elided: GET .../example has the full body)"
        if isinstance(v, list):
            return [shrink(x) for x in v[:8]]
        if isinstance(v, dict):
            return {k: shrink(x) for k, x in v.items()}
        return v

    objects = example.get("objects")
    return shrink({**example, "objects": objects[:1]} if isinstance(objects, list) else example)


def _op(prefix: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", prefix).strip("_") or "default"
