"""``skysift datasets``: downloads and cutouts against a local HTTP server on 127.0.0.1.

No test touches the internet: every URL points at a threaded ``http.server`` started here (or at
a closed local port for the offline case). The server counts requests so that retries are
bounded and visible.
"""
from __future__ import annotations

import hashlib
import io
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from skysift.datasets import registry
from skysift.datasets.cutouts import RateLimiter, fetch_cutouts, read_catalogue
from skysift.datasets.download import DownloadError, download
from skysift.errors import ConfigError, DataError

PAYLOAD = np.random.default_rng(0).integers(0, 256, size=200_000, dtype=np.uint8).tobytes()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    arr = np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


class Server:
    """Serves ``PAYLOAD`` under several behaviours, chosen by the file name in the path:

    ``good.bin`` honours ``Range``; ``flaky.bin`` answers 503 to its first ``fail_first``
    requests; ``cut.bin`` drops the connection half-way through its first full transfer;
    ``/cutout`` is a fake SDSS service (503 once for dec=-1).
    """

    def __init__(self):
        self.requests: list[tuple[str, str]] = []
        self.fail_first = 2
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                with outer.lock:
                    # keyed by path + query: each cutout (ra, dec) is its own resource
                    outer.requests.append((self.path, self.headers.get("Range", "")))
                    n_same = sum(p == self.path for p, _ in outer.requests)
                if url.path == "/cutout":
                    q = parse_qs(url.query)
                    if q["dec"][0].startswith("-1.0") and n_same == 1:
                        return self._send(503, b"busy")
                    return self._send(200, _jpeg(int(float(q["ra"][0]))), "image/jpeg")
                name = url.path.rsplit("/", 1)[-1]
                if name == "flaky.bin" and n_same <= outer.fail_first:
                    return self._send(503, b"try later")
                if name not in ("good.bin", "flaky.bin", "cut.bin", "wrong.bin"):
                    return self._send(404, b"no")
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    body = PAYLOAD[start:]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if name == "cut.bin" and n_same == 1:
                    # announce the whole file, send 40% of it, hang up
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(PAYLOAD)))
                    self.end_headers()
                    self.wfile.write(PAYLOAD[: len(PAYLOAD) * 2 // 5])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self._send(200, PAYLOAD, "application/octet-stream")

            def _send(self, code, body, ctype="text/plain"):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()
    assert len(s.requests) < 100  # bounded: no runaway retry loop


def _fake_dataset(monkeypatch, files):
    ds = registry.PublicDataset(name="fake", task="galaxies", title="test", size="200 kB", licence="test",
                                homepage="http://127.0.0.1/", files=tuple(files))
    monkeypatch.setitem(registry.DATASETS, "fake", ds)
    return ds


def test_download_verifies_checksum_and_caches(server, tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, [registry.RemoteFile("good.bin", "http://unused.invalid/x", "md5:" + MD5)])
    path = download("fake", tmp_path, mirror=server.url, progressbar=False, backoff=0.01)
    assert path == tmp_path / "fake"
    assert (path / "good.bin").read_bytes() == PAYLOAD
    assert registry.cache_status(registry.get("fake"), tmp_path) == "complete"
    n = len(server.requests)
    download("fake", tmp_path, mirror=server.url, progressbar=False)  # cached and verified: no request
    assert len(server.requests) == n


def test_checksum_mismatch_is_refused_and_removed(server, tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, [registry.RemoteFile("wrong.bin", "http://unused.invalid/x", "md5:" + "0" * 32,
                                                    "a test")])
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download("fake", tmp_path, mirror=server.url, progressbar=False, backoff=0.01)
    assert not (tmp_path / "fake" / "wrong.bin").exists()
    assert not list((tmp_path / "fake").glob("tmp*"))


def test_mirror_from_environment(server, tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, [registry.RemoteFile("good.bin", "http://unused.invalid/x", "md5:" + MD5)])
    monkeypatch.setenv(registry.MIRROR_ENV, server.url)
    monkeypatch.setenv(registry.DATA_DIR_ENV, str(tmp_path / "cache"))
    path = download("fake", progressbar=False)
    assert path == tmp_path / "cache" / "fake"
    assert server.requests[0][0] == "/fake/good.bin"


def test_retry_after_503(server, tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, [registry.RemoteFile("flaky.bin", "http://unused.invalid/x", "md5:" + MD5)])
    download("fake", tmp_path, mirror=server.url, progressbar=False, backoff=0.01, retries=3)
    assert [p for p, _ in server.requests] == ["/fake/flaky.bin"] * 3  # two 503s, then the file
    assert (tmp_path / "fake" / "flaky.bin").read_bytes() == PAYLOAD


def test_503_beyond_retries_is_a_clear_error(server, tmp_path, monkeypatch):
    server.fail_first = 50
    _fake_dataset(monkeypatch, [registry.RemoteFile("flaky.bin", "http://unused.invalid/x", "md5:" + MD5)])
    with pytest.raises(DownloadError, match="HTTP 503"):
        download("fake", tmp_path, mirror=server.url, progressbar=False, backoff=0.01, retries=2)
    assert len(server.requests) == 3


def test_resume_after_interrupted_transfer(server, tmp_path, monkeypatch):
    _fake_dataset(monkeypatch, [registry.RemoteFile("cut.bin", "http://unused.invalid/x", "md5:" + MD5)])
    # first run: the connection drops after 40%; retries=0 so the interruption reaches the user
    with pytest.raises(DownloadError, match="resume"):
        download("fake", tmp_path, mirror=server.url, progressbar=False, retries=0)
    part = tmp_path / "fake" / ".partial" / "cut.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert not (tmp_path / "fake" / "cut.bin").exists()
    assert registry.cache_status(registry.get("fake"), tmp_path).startswith("partial")
    kept = part.stat().st_size
    download("fake", tmp_path, mirror=server.url, progressbar=False, retries=0)
    assert server.requests[-1] == ("/fake/cut.bin", f"bytes={kept}-")  # asked only for the rest
    assert (tmp_path / "fake" / "cut.bin").read_bytes() == PAYLOAD
    assert not part.exists()


def test_offline_is_a_clear_error(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _fake_dataset(monkeypatch, [registry.RemoteFile("good.bin", "http://unused.invalid/x", "md5:" + MD5)])
    with pytest.raises(DownloadError, match=r"cannot reach .*connection refused.*offline"):
        download("fake", tmp_path, mirror=f"http://127.0.0.1:{port}", progressbar=False, retries=1, backoff=0.01)


def test_kaggle_dataset_says_what_to_download(tmp_path):
    with pytest.raises(DownloadError) as e:
        download("kepler", tmp_path)
    msg = str(e.value)
    assert "kaggle datasets download -d keplersmith/kepler-labelled-time-series-data" in msg
    assert str(tmp_path / "kepler" / "exoTrain.csv") in msg
    (tmp_path / "kepler").mkdir()
    for name in ("exoTrain.csv", "exoTest.csv"):
        (tmp_path / "kepler" / name).write_text("LABEL,FLUX.1\n")
    assert download("kepler", tmp_path) == tmp_path / "kepler" / "exoTrain.csv"


def test_registry_hashes_are_sourced_and_unknown_dataset():
    for ds in registry.DATASETS.values():
        for f in ds.files:
            if f.known_hash is not None:
                algo, _, digest = f.known_hash.partition(":")
                assert algo in ("md5", "sha256") and len(digest) == {"md5": 32, "sha256": 64}[algo]
                assert f.hash_source, f"{ds.name}/{f.name}: hash without a source"
    with pytest.raises(ConfigError, match="unknown dataset"):
        registry.get("nope")


def _catalogue(path: Path, rows) -> Path:
    text = "OBJID,RA,DEC,NVOTE,P_EL,P_CW,P_ACW,P_EDGE,P_DK,P_MG\n" + "".join(
        f"{i},{ra},{dec},20,0.7,0.1,0.1,0.05,0.03,0.02\n" for i, ra, dec in rows)
    path.write_text(text)
    return path


def test_cutouts_retry_resume_and_labels(server, tmp_path):
    cat = _catalogue(tmp_path / "gz1.csv", [
        (587727178986356823, "00:00:00.41", "-10:22:25.7"),   # sexagesimal, as in GZ1 table 2
        (587727227300741210, "10.5", "-1.0"),                  # decimal degrees; 503 once
        (587727225690980449, "20.25", "+14.5"),
        (587730847423757273, "30.0", "0.5"),
    ])
    out = tmp_path / "cutouts"
    res = fetch_cutouts(cat, out, max_n=3, size=64, fov_arcsec=64 * 0.4, workers=2, rate=200,
                        backoff=0.01, service_url=server.url + "/cutout")
    assert (res.written, res.skipped, res.failed) == (3, 0, [])
    assert len(server.requests) == 4  # three images, one of them retried after a 503
    assert sum("dec=-1.0" in p for p, _ in server.requests) == 2
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(f"{i}.jpeg" for i in (587727178986356823, 587727227300741210, 587727225690980449))
    assert not list((out / "images").glob(".*.tmp"))  # no half-written files left
    import pandas as pd

    labels = pd.read_csv(out / "labels.csv", dtype={"OBJID": str})
    assert list(labels["OBJID"]) == ["587727178986356823", "587727227300741210", "587727225690980449"]
    # resume: the three are skipped, only the fourth is fetched
    n = len(server.requests)
    res = fetch_cutouts(cat, out, size=64, workers=2, rate=200, backoff=0.01, service_url=server.url + "/cutout")
    assert (res.written, res.skipped) == (1, 3)
    assert len(server.requests) == n + 1
    assert len(pd.read_csv(out / "labels.csv")) == 4


def test_cutout_query_parameters(tmp_path):
    from skysift.datasets.cutouts import cutout_params

    df, id_col, ra, dec = read_catalogue(_catalogue(tmp_path / "c.csv", [(1, "00:00:00.41", "-10:22:25.7")]))
    assert id_col == "OBJID"
    assert ra[0] == pytest.approx(0.41 * 15 / 3600, abs=1e-9)          # hours → degrees
    assert dec[0] == pytest.approx(-(10 + 22 / 60 + 25.7 / 3600), abs=1e-9)
    p = cutout_params(ra[0], dec[0], 128, 0.2)
    assert p == {"ra": "0.001708", "dec": "-10.373806", "scale": "0.20000", "width": 128, "height": 128}


def test_cutouts_bad_input(tmp_path):
    with pytest.raises(DataError, match=r"c\.csv, row 2: cannot read RA/Dec"):
        read_catalogue(_catalogue(tmp_path / "c.csv", [(1, "1.0", "2.0"), (2, "abc", "2.0")]))
    with pytest.raises(DataError, match="out of range") as e:
        read_catalogue(_catalogue(tmp_path / "d.csv", [(1, "1.0", "95.0")]))
    assert e.value.where == "row 1"
    with pytest.raises(DataError, match="row 2: duplicate id '1' in rows 1, 2"):
        read_catalogue(_catalogue(tmp_path / "e.csv", [(1, "1.0", "2.0"), (1, "1.0", "2.0")]))
    (tmp_path / "f.csv").write_text("name,x\na,1\n")
    with pytest.raises(DataError, match="missing an id column"):
        read_catalogue(tmp_path / "f.csv")
    with pytest.raises(ConfigError):
        fetch_cutouts(tmp_path / "c.csv", tmp_path / "o", size=4)
    with pytest.raises(ConfigError):
        RateLimiter(0)


def test_cutouts_offline(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cat = _catalogue(tmp_path / "c.csv", [(1, "1.0", "2.0"), (2, "3.0", "4.0")])
    with pytest.raises(DownloadError, match="connection refused"):
        fetch_cutouts(cat, tmp_path / "o", workers=1, retries=0, service_url=f"http://127.0.0.1:{port}/x")
    assert not list((tmp_path / "o" / "images").iterdir())


def test_rate_limiter_spaces_requests():
    import time

    lim = RateLimiter(50)
    t0 = time.monotonic()
    for _ in range(6):
        lim.wait()
    assert time.monotonic() - t0 >= 5 / 50 * 0.9


def test_cli_list_and_download(server, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from skysift.datasets.cli import app

    _fake_dataset(monkeypatch, [registry.RemoteFile("good.bin", "http://unused.invalid/x", "md5:" + MD5)])
    runner = CliRunner()
    r = runner.invoke(app, ["download", "fake", "--dest", str(tmp_path), "--mirror", server.url])
    assert r.exit_code == 0, r.output
    assert "ready" in r.output
    r = runner.invoke(app, ["list", "--dest", str(tmp_path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    line = next(row for row in r.output.splitlines() if "fake" in row)
    assert "complete" in line
    assert "plasticc" in r.output and "galaxy10_decals" in r.output
