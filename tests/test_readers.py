"""The reader registry: formats identified by content, format= when ambiguous, each task's formats."""
from __future__ import annotations

import numpy as np
import pytest

from skysift.core import readers
from skysift.core.data import TaskData
from skysift.errors import ConfigError, DataError


def _starts(magic: bytes):
    def identify(path):
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            return fh.read(len(magic)) == magic
    return identify


def _reader(name):
    def read(path, *, labelled=None, **options):
        return TaskData(ids=np.array([name]), x=np.zeros((1, 1)), y=None, class_names=["a"], source=str(path),
                        meta={"format": name, "options": options, "labelled": labelled})
    return read


@pytest.fixture
def toy():
    readers.register_reader("toy", "alpha", identify=_starts(b"ALPHA"), read=_reader("alpha"), description="A")
    readers.register_reader("toy", "beta", identify=_starts(b"BETA"), read=_reader("beta"), description="B")
    readers.register_reader("toy", "al", identify=_starts(b"AL"), read=_reader("al"), description="AL*")
    yield "toy"
    readers._READERS.pop("toy", None)


def test_identified_by_content_not_name(toy, tmp_path):
    p = tmp_path / "data.alpha"
    p.write_bytes(b"BETA....")
    d = readers.read(toy, p, labelled=False, scale=2)
    assert d.meta == {"format": "beta", "options": {"scale": 2}, "labelled": False}
    assert readers.identify(toy, p) == ["beta"]


def test_ambiguous_asks_for_format(toy, tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"ALPHA...")
    with pytest.raises(ConfigError, match="could be read as any of alpha, al: pass format="):
        readers.read(toy, p)
    assert readers.read(toy, p, format="al").meta["format"] == "al"


def test_unknown_unrecognised_and_missing(toy, tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"GAMMA")
    with pytest.raises(ConfigError, match="unknown toy format 'gamma'; known: alpha, beta, al"):
        readers.read(toy, p, format="gamma")
    with pytest.raises(DataError, match=r"x: not a recognised toy format; known: alpha, beta, al"):
        readers.read(toy, p)
    with pytest.raises(DataError, match="nope: no such file or directory"):
        readers.read(toy, tmp_path / "nope")
    with pytest.raises(ConfigError, match="no readers for task 'nosuch'"):
        readers.formats("nosuch")
    assert readers.formats(toy) == [("alpha", "A"), ("beta", "B"), ("al", "AL*")]


def test_each_task_lists_its_formats():
    names = {t: [f for f, _ in readers.formats(t)] for t in ("transits", "transients", "technosignatures", "galaxies")}
    assert names == {"transits": ["kaggle-csv", "parquet", "fits"],
                     "transients": ["kaggle", "unblinded", "parquet"],
                     "technosignatures": ["npy-folder", "npy", "labels-csv", "filterbank"],
                     "galaxies": ["npz", "galaxy10-h5", "catalogue", "image-folder", "image"]}
    assert all(desc for t in names for _, desc in readers.formats(t))


def test_task_formats_are_identified_by_content(tmp_path):
    from skysift.galaxies.io import load as galaxies_load
    from skysift.transits.io import write_parquet_catalogue

    flux = np.random.default_rng(0).normal(1, 0.01, (6, 50)).astype(np.float32)
    folder = write_parquet_catalogue(tmp_path / "cat", flux, np.array([0, 1, 0, 1, 0, 0]), n_partitions=2)
    renamed = tmp_path / "part.dat"  # a Parquet file without its extension: found by its magic bytes
    (folder / "part-00000.parquet").rename(renamed)
    assert readers.identify("transits", renamed) == ["parquet"]
    assert readers.identify("transits", folder) == ["parquet"]
    d = readers.read("transits", renamed)
    assert d.meta["layout"] == "kaggle-parquet" and d.x.shape == (3, 50)

    images = np.zeros((3, 8, 8, 3), np.uint8)
    np.savez(tmp_path / "g.npz", images=images, labels=np.eye(4)[[0, 1, 2]])
    (tmp_path / "g.npz").rename(tmp_path / "g.bin")
    assert readers.identify("galaxies", tmp_path / "g.bin") == ["npz"]
    assert galaxies_load(tmp_path / "g.bin", image_size=8).x.shape == (3, 8, 8, 3)

    np.save(tmp_path / "s.npy", np.zeros((6, 4, 8), np.float16))
    assert readers.identify("technosignatures", tmp_path / "s.npy") == ["npy"]
    assert readers.identify("technosignatures", [tmp_path / "a.fil"] * 6) == ["filterbank"]


def test_transients_layouts(tmp_path):
    from skysift.transients.simulate import simulate

    out = simulate(tmp_path / "sim", n=30, seed=0)
    assert readers.identify("transients", out) == ["kaggle"]
    d = readers.read("transients", out, format="kaggle")
    assert d.meta["layout"] == "kaggle" and len(d) == 30


def test_a_known_name_decides_over_magic_bytes(tmp_path):
    # a .fits name holding Parquet bytes is still offered to the FITS reader (as before the
    # registry), so the user hears what is wrong with it instead of an ambiguity
    p = tmp_path / "odd.fits"
    p.write_bytes(b"PAR1" + b"\0" * 16)
    assert readers.identify("transits", p) == ["fits"]
    q = tmp_path / "odd.npy"
    q.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 16)
    assert readers.identify("technosignatures", q) == ["npy"]
    with pytest.raises(DataError, match=r"odd\.npy: not a readable \.npy file"):
        readers.read("technosignatures", q)
