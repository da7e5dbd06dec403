"""One object, one probability: the same objects reach a model through every input path a user
has — a catalogue folder, a bare folder, one file, another file format, a JSON body, an HTTP upload
— and get the same probabilities (to float tolerance).

The preprocessing chosen at training (the galaxy cutouts' crop and size, the light curves' length)
lives in the bundle and is applied to every later input by the model's own reader
(``Model.read`` / ``Model.parse_request``), whichever path the objects took.
"""
from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

import skysift
from skysift.serving import create_app
from skysift.serving.testing import random_bundle


def _by_id(ids, proba) -> dict[str, np.ndarray]:
    return {str(i): np.asarray(p) for i, p in zip(ids, proba)}


def _assert_same(reference: dict[str, np.ndarray], other: dict[str, np.ndarray], path: str) -> None:
    assert set(other) == set(reference), f"{path}: other objects"
    for k, p in reference.items():
        np.testing.assert_allclose(other[k], p, atol=1e-5, err_msg=f"{path}, object {k}")


def _served(run: Path, task: str, client_body) -> dict[str, np.ndarray]:
    client = TestClient(create_app({task: run}))
    r = client.post(f"/models/{task}/predict", **client_body)
    assert r.status_code == 200, r.text
    body = r.json()
    return {p["id"]: np.array([p["probabilities"][c] for c in body["class_names"]]) for p in body["predictions"]}


@pytest.mark.realdata
def test_galaxy_cutouts_get_one_probability_through_every_path(shared_data, tmp_path, as_upload):
    gz1 = shared_data / "galaxyzoo" / "gz1"
    labels = pd.read_csv(gz1 / "labels.csv", dtype={"OBJID": str})
    picked = labels.groupby("CLASS").head(3).head(12)
    catalogue, bare = tmp_path / "catalogue", tmp_path / "bare"
    for folder in (catalogue / "images", bare):
        folder.mkdir(parents=True)
    for objid in picked["OBJID"]:
        for folder in (catalogue / "images", bare):
            shutil.copy(gz1 / "images" / f"{objid}.jpeg", folder / f"{objid}.jpeg")
    picked.to_csv(catalogue / "labels.csv", index=False)
    run = random_bundle("galaxies", catalogue, tmp_path / "run")
    model = skysift.load(run)
    assert model.stats["crop"] == pytest.approx(0.3)  # the GZ1 cutouts' default crop, now in the bundle

    reference = _by_id(*_ids_and_proba(model, catalogue))
    _assert_same(reference, _by_id(*_ids_and_proba(model, bare)), "bare folder")
    one = next(iter(reference))
    _assert_same({one: reference[one]}, _by_id(*_ids_and_proba(model, bare / f"{one}.jpeg")), "one file")
    body = {"objects": [{"id": k, "image": base64.b64encode((bare / f"{k}.jpeg").read_bytes()).decode()}
                        for k in reference]}
    _assert_same(reference, _by_id(*_ids_and_proba(model, body)), "JSON body")
    _assert_same(reference, _served(run, "galaxies", {"json": body}), "HTTP JSON")
    name, raw = as_upload(bare)
    _assert_same(reference, _served(run, "galaxies", {"files": {"file": (name, raw)}}), "HTTP upload of a folder")


def _ids_and_proba(model, source):
    data = model.parse_request(source) if isinstance(source, dict) else model.read(source)
    return data.ids, model.predict_proba(data)


def test_light_curves_get_one_probability_through_every_path(tmp_path):
    from skysift.transits.io import load, write_parquet_catalogue

    csv = skysift.simulate("transits", tmp_path / "data", n=40, seed=5)
    run = random_bundle("transits", csv, tmp_path / "run")
    model = skysift.load(run)
    data = load(csv)
    reference = _by_id(*_ids_and_proba(model, csv))
    write_parquet_catalogue(tmp_path / "catalogue", data.x, data.y, n_partitions=2)
    parquet = model.read(tmp_path / "catalogue")
    _assert_same(reference, _by_id(data.ids, model.predict_proba(parquet)), "Parquet catalogue")
    body = {"objects": [{"id": str(i), "flux": [float(v) for v in row]} for i, row in zip(data.ids, data.x)]}
    _assert_same(reference, _by_id(*_ids_and_proba(model, body)), "JSON body")
    _assert_same(reference, _served(run, "transits", {"json": body}), "HTTP JSON")
    _assert_same(reference, _served(run, "transits", {"files": {"file": (csv.name, csv.read_bytes())}}),
                 "HTTP upload")


def test_cadence_snippets_get_one_probability_through_every_path(tmp_path, as_upload):
    folder = skysift.simulate("technosignatures", tmp_path / "data", n=6, seed=5)
    run = random_bundle("technosignatures", folder, tmp_path / "run")
    model = skysift.load(run)
    reference = _by_id(*_ids_and_proba(model, folder))
    files = {p.stem: p for p in Path(folder).rglob("*.npy")}
    one = sorted(files)[0]
    _assert_same({one: reference[one]}, _by_id(*_ids_and_proba(model, files[one])), "one .npy file")
    body = {"objects": [{"id": k, "npy": base64.b64encode(files[k].read_bytes()).decode()} for k in reference]}
    _assert_same(reference, _by_id(*_ids_and_proba(model, body)), "JSON body")
    _assert_same(reference, _served(run, "technosignatures", {"json": body}), "HTTP JSON")
    name, raw = as_upload(Path(folder))
    _assert_same(reference, _served(run, "technosignatures", {"files": {"file": (name, raw)}}), "HTTP upload")


def test_multiband_light_curves_get_one_probability_through_every_path(tmp_path, as_upload):
    from skysift.transients.data import META_COLUMNS

    folder = skysift.simulate("transients", tmp_path / "data", n=30, seed=5)
    run = random_bundle("transients", folder, tmp_path / "run", model="transformer",
                        model_params={"d_model": 16, "layers": 1, "heads": 2})
    model = skysift.load(run)
    data = model.read(folder, labelled=False)
    reference = _by_id(*_ids_and_proba(model, folder))
    objects = []
    for k, i in enumerate(data.ids):
        o = data.x.object(k)
        objects.append({"id": int(i), **{c: [float(v) for v in o[c]] for c in ("mjd", "flux", "flux_err")},
                        "passband": [int(v) for v in o["passband"]], "detected": [int(v) for v in o["detected"]],
                        "metadata": {m: (None if not np.isfinite(o[m]) else float(o[m])) for m in META_COLUMNS}})
    body = {"objects": objects}
    _assert_same(reference, _by_id(*_ids_and_proba(model, body)), "JSON body")
    _assert_same(reference, _served(run, "transients", {"json": body}), "HTTP JSON")
    name, raw = as_upload(Path(folder))
    _assert_same(reference, _served(run, "transients", {"files": {"file": (name, raw)}}), "HTTP upload")
