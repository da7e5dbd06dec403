"""HTTP serving: every task present, JSON and file uploads, strict validation, several models per
process, OpenAPI fuzzing (schemathesis, in-process ASGI), and ``skysift serve`` as a real server."""
from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from skysift.core.task import get_task, task_names
from skysift.errors import SkysiftError
from skysift.serving import create_app
from skysift.serving.cli import parse_models
from skysift.serving.testing import random_bundle

TASKS = task_names()


def _example_or_skip(task):
    if task.requests is None:
        pytest.skip(f"task {task.name!r} takes no JSON requests")
    return task.request_example()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """``{task: (run_dir, data_path)}``: a small simulated dataset and a random-weight bundle per task."""
    root = tmp_path_factory.mktemp("serving")
    out = {}
    for name in TASKS:
        data = get_task(name).simulate(root / f"data_{name}", n=40, seed=1)
        out[name] = (random_bundle(name, data, root / f"run_{name}"), data)
    return out


@pytest.fixture(scope="module")
def app(bundles):
    return create_app({name: run for name, (run, _) in bundles.items()})


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def _bundle(bundles, name):
    if name not in bundles:
        pytest.skip(f"task {name!r} has no simulator")
    return bundles[name]


def test_health_models_and_cards(client, bundles):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["models"] == list(bundles)
    listing = client.get("/models").json()
    assert [m["name"] for m in listing] == list(bundles)
    for m in listing:
        card = client.get(f"/models/{m['name']}").json()
        assert card["task"] == m["task"] and card["class_names"] == m["class_names"]
    # the default model is the first one
    assert client.get("/model").json()["task"] == listing[0]["task"]
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert all(f"/models/{n}/predict" in schema["paths"] for n in bundles)


@pytest.mark.parametrize("name", TASKS)
def test_json_request_gives_the_models_probabilities(client, app, name, bundles):
    _bundle(bundles, name)
    served = app.state.models[name]
    example = _example_or_skip(served.task)
    r = client.post(f"/models/{name}/predict", json=example)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = served.model.predict_proba(served.task.parse_request(example))
    got = np.array([[p["probabilities"][c] for c in body["class_names"]] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert body["n"] == len(expected) and body["class_names"] == served.model.class_names
    assert all(p["predicted"] in body["class_names"] for p in body["predictions"])


@pytest.mark.parametrize("name", TASKS)
def test_batch_request(client, app, name, bundles):
    _bundle(bundles, name)
    task = app.state.models[name].task
    one = _example_or_skip(task)["objects"][0]
    batch = {"objects": [{**one, "id": f"obj-{k}"} for k in range(5)]}
    r = client.post(f"/models/{name}/predict", json=batch)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["id"] for p in preds] == [f"obj-{k}" for k in range(5)]
    # the same object five times gets the same probabilities five times
    first = preds[0]["probabilities"]
    assert all(p["probabilities"] == pytest.approx(first, abs=1e-6) for p in preds)


@pytest.mark.parametrize("name", TASKS)
def test_file_upload_gives_the_models_probabilities(client, app, name, bundles, as_upload):
    run, data_path = _bundle(bundles, name)
    served = app.state.models[name]
    filename, raw = as_upload(Path(data_path))
    r = client.post(f"/models/{name}/predict", files={"file": (filename, raw)})
    assert r.status_code == 200, r.text
    body = r.json()
    data = served.task.load(data_path, labelled=False)
    expected = served.model.predict_proba(data)
    assert [p["id"] for p in body["predictions"]] == [str(i) for i in data.ids]
    got = np.array([[p["probabilities"][c] for c in body["class_names"]] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("name", TASKS)
def test_bad_requests_get_4xx_with_a_message(client, app, name, bundles):
    _bundle(bundles, name)
    url = f"/models/{name}/predict"
    cases = [
        (b'{"objects": [NaN]}', "application/json", 400, "NaN"),
        (b'{"objects": [', "application/json", 400, "not valid JSON"),
        (b"[1, 2, 3]", "application/json", 422, "JSON object"),
        (b'{"objects": []}', "application/json", 422, "non-empty"),
        (b'{"objects": [{"id": 1}]}', "application/json", 422, "object 0"),
        (b'{"objects": "x"}', "application/json", 422, "list"),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        (b"hello", "text/plain", 415, "content type"),
    ]
    for body, ctype, status, words in cases:
        r = client.post(url, content=body, headers={"content-type": ctype})
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["detail"], (body, r.json())
    r = client.post(url, files={"file": ("junk.csv", b"a,b\n1,2\n")})
    assert r.status_code == 422 and "junk.csv" in r.json()["detail"], r.text
    r = client.post(url, files={"other": ("x.csv", b"1")})
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    r = client.post(url, content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xx"})
    assert 400 <= r.status_code < 500, r.text


def test_wrong_shape_and_values_named_by_object(client, bundles):
    if "transits" not in bundles:
        pytest.skip("transits not present")
    ok = [1.0] * 200
    for flux, words in (([1.0] * 5, "at least 100"), (ok[:-1] + ["x"], "only numbers"),
                        ([None] * 200, "fewer than 10 valid")):
        r = client.post("/models/transits/predict", json={"objects": [{"id": "a", "flux": ok},
                                                                       {"id": "b", "flux": flux}]})
        assert r.status_code == 422 and "object 1" in r.json()["detail"] and words in r.json()["detail"], r.text


def test_body_and_object_limits(bundles):
    name = next(iter(bundles))
    small = TestClient(create_app({name: bundles[name][0]}, max_body_bytes=4096, max_objects=2))
    r = small.post("/predict", content=b"[" + b"1," * 5000 + b"1]", headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    one = _example_or_skip(get_task(name))["objects"][0]
    limited = TestClient(create_app({name: bundles[name][0]}, max_objects=2))
    r = limited.post("/predict", json={"objects": [{**one, "id": str(k)} for k in range(3)]})
    assert r.status_code == 413 and "limit is 2" in r.json()["detail"]


def test_zip_upload_with_unsafe_paths_is_refused(client, bundles):
    name = next(iter(bundles))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../escape.csv", "a,b\n1,2\n")
    r = client.post(f"/models/{name}/predict", files={"file": ("data.zip", buf.getvalue())})
    assert r.status_code == 422 and "unsafe path" in r.json()["detail"]
    r = client.post(f"/models/{name}/predict", files={"file": ("data.zip", b"PK\x03\x04 not a zip")})
    assert r.status_code == 422 and ".zip" in r.json()["detail"]


def test_unknown_model_is_404_naming_the_served_ones(client, bundles):
    r = client.post("/models/nope/predict", json={})
    assert r.status_code == 404 and all(n in r.json()["detail"] for n in bundles)


def test_model_names_from_cli_arguments(tmp_path):
    a, b = tmp_path / "kepler", tmp_path / "x" / "kepler"
    assert list(parse_models([a], ["gz=" + str(b)])) == ["kepler", "gz"]
    with pytest.raises(SkysiftError, match="two models"):
        parse_models([a, b], None)
    with pytest.raises(SkysiftError, match="NAME=RUN_DIR"):
        parse_models(None, ["no-equals"])
    with pytest.raises(SkysiftError, match="at least one"):
        parse_models(None, None)
    with pytest.raises(SkysiftError, match="must be letters"):
        create_app({"bad name!": a})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(args: list[str], port: int, env: dict, ready: str = "/health"):
    """``python -m skysift serve ARGS`` as a real process, once ``ready`` answers; stopped on exit."""
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "skysift", "serve", *args, "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 90
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.time() < deadline, "server did not start"
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_command_runs_a_real_server(bundles, tmp_path):
    import httpx

    name = next(iter(bundles))
    port = _free_port()
    env = {**os.environ, "SKYSIFT_NO_PROGRESS": "1"}
    with _serving(["--model", f"m1={bundles[name][0]}", "--port", str(port)], port, env) as url:
        assert httpx.get(f"{url}/health", timeout=5).json()["models"] == ["m1"]
        assert httpx.get(f"{url}/models/m1", timeout=5).json()["task"] == name


def test_serve_command_bad_run_dir_exits_2(tmp_path):
    from skysift.cli import main

    assert main(["serve", str(tmp_path / "missing")]) == 2


# ---- fuzzing from the app's own OpenAPI schema ---------------------------------------------
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzz_openapi_no_server_errors(app, bundles, mode):
    _fuzz(app, bundles, mode, examples=15)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzz_openapi_deeper(app, bundles, mode):
    _fuzz(app, bundles, mode, examples=150)


def _fuzzer(operation, generation, examples: int, owner: str, calls: list):
    @given(case=operation.as_strategy(generation_mode=generation))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call_and_validate(checks=[not_a_server_error])
        calls.append((owner, response.status_code))

    return fuzz


def _fuzz(app, bundles, mode: str, examples: int) -> None:
    """Bodies, content types and uploads generated from the app's own OpenAPI schema, valid
    (positive) and deliberately invalid (negative), sent in process to the ASGI app: never a 5xx.
    Examples are bounded per operation so the whole fuzz takes seconds; the count per task is
    printed (the unprefixed routes belong to the default model, the first task)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    generation = schemathesis.GenerationMode(mode)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4
    calls: list[tuple[str, int]] = []
    default = next(iter(bundles))
    for operation in operations:
        if mode == "negative" and operation.method.upper() == "GET" and "{" not in operation.path:
            continue  # nothing to make invalid in a GET without parameters
        parts = operation.path.strip("/").split("/")
        owner = parts[1] if parts[0] == "models" and len(parts) > 1 else default

        _fuzzer(operation, generation, examples, owner, calls)()
    from collections import Counter
    per_task = Counter(owner for owner, _ in calls)
    print(mode, "requests per task:", dict(per_task), "statuses:", sorted(Counter(c for _, c in calls).items()))
    assert set(per_task) == set(bundles)
    assert calls and max(c for _, c in calls) < 500


# ---- the managed-endpoint contract, thresholds, docs, limits ----------------------------------------
def _probabilities(body) -> np.ndarray:
    return np.array([[p["probabilities"][c] for c in body["class_names"]] for p in body["predictions"]])


#: each task's file as a raw body: (content type, how to make the bytes from the simulated data)
def _raw_body(name: str, data_path: Path, as_upload) -> tuple[str, bytes]:
    path = Path(data_path)
    if path.is_file():
        ctype = {".csv": "text/csv", ".npz": "application/octet-stream", ".npy": "application/x-npy"}[path.suffix]
        return ctype, path.read_bytes()
    _, raw = as_upload(path)
    return "application/zip", raw


@pytest.mark.parametrize("name", TASKS)
def test_ping_and_invocations_answer_as_predict(bundles, name, as_upload):
    """The default model behind /invocations gives /predict's probabilities, for JSON and files."""
    run, data_path = _bundle(bundles, name)
    client = TestClient(create_app({name: run}))
    assert client.get("/ping").status_code == 200
    example = client.get("/example")
    requests = []
    if example.status_code == 200:
        requests.append({"json": example.json()})
    else:
        assert example.status_code == 404 and "upload" in example.json()["detail"]
    filename, raw = as_upload(Path(data_path))
    requests.append({"files": {"file": (filename, raw)}})
    ctype, body = _raw_body(name, data_path, as_upload)
    requests.append({"content": body, "headers": {"content-type": ctype}})
    for kw in requests:
        a, b = client.post("/predict", **kw), client.post("/invocations", **kw)
        assert a.status_code == 200 and b.status_code == 200, (a.text[:300], b.text[:300])
        assert [p["id"] for p in a.json()["predictions"]] == [p["id"] for p in b.json()["predictions"]]
        assert np.array_equal(_probabilities(a.json()), _probabilities(b.json()))
    # the raw body, the multipart upload and the file read directly agree
    served = client.app.state.models[name]
    expected = served.model.predict_output(served.task.load(data_path, labelled=False))[0]
    np.testing.assert_allclose(_probabilities(b.json()), expected, atol=1e-6)


def test_binary_responses_carry_their_threshold(client, bundles, app):
    for name, sm in app.state.models.items():
        example = sm.task.request_example()
        if example is None:
            continue
        body = client.post(f"/models/{name}/predict", json=example).json()
        if len(body["class_names"]) == 2:
            t = body["threshold"]
            assert t == pytest.approx(sm.model.threshold)
            for p in body["predictions"]:
                assert (p["predicted"] == body["class_names"][1]) == (p["probabilities"][body["class_names"][1]] >= t)
        else:
            assert body["threshold"] is None


def test_docs_are_served_without_a_cdn_and_the_schema_is_compact(client, bundles):
    schema = client.get("/openapi.json")
    assert len(schema.content) < 200_000, len(schema.content)
    paths = schema.json()["paths"]
    assert {"/ping", "/invocations", "/example"} <= set(paths)
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert f"/static-docs/{asset}" in html and "cdn" not in html.lower(), html[:500]
        assert client.get(f"/static-docs/{asset}").status_code == 200
    # a compacted example points at the full one, and the full one predicts
    for name in bundles:
        full = client.get(f"/models/{name}/example")
        if full.status_code == 200:
            assert client.post(f"/models/{name}/predict", json=full.json()).status_code == 200


@pytest.mark.parametrize("name", TASKS)
def test_one_object_without_the_envelope(client, bundles, name):
    _bundle(bundles, name)
    one = _example_or_skip(get_task(name))["objects"][0]
    r = client.post(f"/models/{name}/predict", json=one)
    assert r.status_code == 200, r.text
    assert r.json()["n"] == 1


def test_messages_hold_no_python_reprs(client, bundles):
    import base64

    if "galaxies" not in bundles:
        pytest.skip("galaxies not present")
    bad = base64.b64encode(b"definitely not an image").decode()
    r = client.post("/models/galaxies/predict", json={"image": bad})
    assert r.status_code == 422 and "object at 0x" not in r.text and "object 0" in r.json()["detail"], r.text
    r = client.post("/models/galaxies/predict", content=b"junk", headers={"content-type": "image/png"})
    assert r.status_code == 422 and "object at 0x" not in r.text and "upload.png" in r.json()["detail"], r.text


def test_request_timeout_is_a_503_and_the_server_goes_on(bundles):
    name = next(iter(bundles))
    run, data_path = bundles[name]
    slow = TestClient(create_app({name: run}, timeout_s=1e-4))
    one = (_example_or_skip(get_task(name)) or {"objects": [{}]})["objects"][0]
    r = slow.post("/predict", json={"objects": [{**one, "id": str(k)} for k in range(50)]})
    assert r.status_code == 503 and "limit" in r.json()["detail"], r.text
    assert slow.get("/ping").status_code == 200


def test_port_and_models_from_the_environment(monkeypatch, tmp_path):
    from skysift.serving import cli as serving_cli

    for var in serving_cli.PORT_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("SKYSIFT_MODELS", raising=False)
    assert serving_cli.port_from_env() == 8000
    monkeypatch.setenv("PORT", "9001")
    assert serving_cli.port_from_env() == 9001
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "8080")
    assert serving_cli.port_from_env() == 8080
    monkeypatch.setenv("PORT", "http")
    monkeypatch.delenv("SAGEMAKER_BIND_TO_PORT")
    with pytest.raises(SkysiftError, match=r"\$PORT must be a port number"):
        serving_cli.port_from_env()
    monkeypatch.setenv("SKYSIFT_MODELS", f"a={tmp_path}, {tmp_path / 'b'}")
    assert serving_cli.models_from_env() == [f"a={tmp_path}", str(tmp_path / "b")]


def test_graceful_shutdown_finishes_the_request_in_flight(bundles, as_upload):
    """SIGTERM while a client is still sending its body: the server stops accepting, answers that
    request in full, then exits."""
    import signal
    import threading

    import httpx

    name = next(iter(bundles))
    run, data_path = bundles[name]
    port = _free_port()
    env = {**os.environ, "SKYSIFT_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "skysift", "serve", str(run), "--port", str(port),
                             "--log-level", "warning", "--graceful-timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 90
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.time() < deadline, "server did not start"
                time.sleep(0.3)
        filename, raw = as_upload(Path(data_path))
        ctype, body = _raw_body(name, data_path, as_upload)
        started = threading.Event()

        def slowly():
            step = max(1, len(body) // 8)
            for k in range(0, len(body), step):
                if k:
                    started.set()
                    time.sleep(0.25)
                yield body[k:k + step]

        result = {}

        def send():
            result["r"] = httpx.post(f"http://127.0.0.1:{port}/invocations", content=slowly(),
                                     headers={"content-type": ctype, "content-length": str(len(body))}, timeout=60)

        t = threading.Thread(target=send)
        t.start()
        assert started.wait(30)
        proc.send_signal(signal.SIGTERM)
        t.join(90)
        assert result["r"].status_code == 200, result["r"].text[:300]
        # uvicorn re-raises the signal once it has shut down, so the status says "ended by SIGTERM"
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _dockerfile_env() -> dict[str, str]:
    import re

    text = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()
    block = re.findall(r"^ENV PATH=.*?(?=^\S)", text, re.M | re.S)[-1]  # the runtime stage's
    return dict(re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")))


def test_dockerfile_speaks_what_serve_reads():
    """The image sets its port, host and model folder through variables ``skysift serve`` reads,
    runs as a non-root user and checks its health on /ping."""
    from skysift.serving import cli as serving_cli

    text = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()
    env = _dockerfile_env()
    assert "PORT" in serving_cli.PORT_ENV and env["PORT"] == "8080"
    assert env["SKYSIFT_MODELS"] == str(serving_cli.MANAGED_MODEL_DIR) and env["SKYSIFT_HOST"] == "0.0.0.0"
    assert "\nUSER skysift\n" in text and "/ping" in text.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["skysift"]' in text and 'CMD ["serve"]' in text


def test_serve_with_the_containers_environment(bundles):
    """``skysift serve`` with no arguments and the image's variables (loopback here): the model
    from $SKYSIFT_MODELS, the port from $PORT, /ping and /invocations answered."""
    import httpx

    name = next(iter(bundles))
    run, data_path = bundles[name]
    port = _free_port()
    env = {**os.environ, **_dockerfile_env(), "SKYSIFT_HOST": "127.0.0.1", "PORT": str(port),
           "SKYSIFT_MODELS": str(run), "PATH": os.environ["PATH"]}
    for var in ("SAGEMAKER_BIND_TO_PORT", "AIP_HTTP_PORT"):
        env.pop(var, None)
    with _serving([], port, env, ready="/ping") as url:
        assert httpx.get(f"{url}/ping", timeout=5).status_code == 200
        raw = Path(data_path).read_bytes() if Path(data_path).is_file() else None
        if raw is not None:
            ctype = {".csv": "text/csv", ".npz": "application/octet-stream"}.get(Path(data_path).suffix,
                                                                                  "application/octet-stream")
            r = httpx.post(f"{url}/invocations", content=raw, headers={"content-type": ctype}, timeout=60)
            assert r.status_code == 200 and r.json()["model"] == Path(run).name, r.text[:300]


@pytest.mark.slow
def test_fifty_concurrent_clients_get_no_errors(bundles):
    """benchmarks/bench_load.py in small: 50 clients for 5 s against a real server, every answer a 200."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_load

    name = "galaxies" if "galaxies" in bundles else next(iter(bundles))
    if get_task(name).requests is None:
        pytest.skip(f"task {name!r} takes no JSON body")
    run, _ = bundles[name]
    res = bench_load.bench(name, Path(run), clients=50, seconds=5, cores=2, timeout=60)
    assert res["errors"] == {} and res["ok"] >= 50, res
