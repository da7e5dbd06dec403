"""The known public datasets: where they live, what they weigh, their licence and checksums.

Every hash below was copied from a public source named next to it (``hash_source``); where no
public hash was found the entry says ``known_hash=None`` and pooch verifies nothing for that file
(it only logs the SHA-256 of what it fetched). Nothing here was guessed.

Each dataset downloads into ``<data dir>/<name>/`` in exactly the layout its task's loader reads,
so ``skysift train TASK --data <data dir>/<name>/...`` works straight after ``download``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

#: environment variable that moves the download cache (default: pooch's OS cache folder)
DATA_DIR_ENV = "SKYSIFT_DATA_DIR"
#: environment variable naming a mirror: ``<mirror>/<dataset>/<file name>`` replaces each URL
MIRROR_ENV = "SKYSIFT_DATASETS_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    ``known_hash`` is ``"md5:..."`` / ``"sha256:..."`` or None (nothing verified);
    ``hash_source`` says where the hash was read.
    """

    name: str
    url: str
    known_hash: str | None = None
    hash_source: str = ""
    size: str = ""
    optional: bool = False  # fetched only with ``download --all`` (e.g. the 18 GB PLAsTiCC test set)


@dataclass(frozen=True)
class PublicDataset:
    name: str
    task: str
    title: str
    size: str
    licence: str
    homepage: str
    files: tuple[RemoteFile, ...] = ()
    #: set for datasets behind an account (Kaggle): what to download and where to put it
    manual: str = ""
    #: the path (relative to the dataset folder) to pass to ``skysift train TASK --data``
    load_path: str = "."
    notes: str = ""
    expected: tuple[str, ...] = field(default=())  # files that show a manual dataset is in place

    @property
    def needs_account(self) -> bool:
        return bool(self.manual)


_ZENODO_PLASTICC = "https://zenodo.org/records/2539456/files/"
# md5s as listed on the Zenodo record, quoted in a public GitHub file that freezes them
# (a PLAsTiCC "candidate" verifier, EXPECTED_TRAIN / EXPECTED_TEST). The copy of the train files
# in ../shared/data comes from the snmachine package and was recompressed: its md5s differ.
_PLASTICC_HASH_SOURCE = "Zenodo record 2539456 file md5s, as quoted in a public GitHub verifier script"
_PLASTICC_TEST_MD5 = {
    "plasticc_test_lightcurves_01.csv.gz": "8f05f93db926e53bd846ec3a5a2352f2",
    "plasticc_test_lightcurves_02.csv.gz": "58f0c553847975c828705e63775ea066",
    "plasticc_test_lightcurves_03.csv.gz": "199b777a3ed921e3cdbf29e692881e03",
    "plasticc_test_lightcurves_04.csv.gz": "794318beea64467992d4125837e7486f",
    "plasticc_test_lightcurves_05.csv.gz": "d3898309a5953aa86bc3f7c2bce7bbad",
    "plasticc_test_lightcurves_06.csv.gz": "a894cfb1af13945dc39498f65ffc9336",
    "plasticc_test_lightcurves_07.csv.gz": "054724d4099d5f1fac1b07d7040cac5a",
    "plasticc_test_lightcurves_08.csv.gz": "88a43509da99b9bab6e4bc5733617024",
    "plasticc_test_lightcurves_09.csv.gz": "b92feaa474cd73a24770543c0b6a8bce",
    "plasticc_test_lightcurves_10.csv.gz": "f8c743ccbfa47f350069dddf3de5b295",
    "plasticc_test_lightcurves_11.csv.gz": "6e19c19702f64567a83b98faeb008b7a",
    "plasticc_test_metadata.csv.gz": "a1fea25a371f04416f9560f9088b745c",
}

DATASETS: dict[str, PublicDataset] = {}


def _register(ds: PublicDataset) -> None:
    DATASETS[ds.name] = ds


_register(PublicDataset(
    name="plasticc",
    task="transients",
    title="PLAsTiCC unblinded release (LSST simulated light curves), Zenodo 10.5281/zenodo.2539456",
    size="train ~22 MB (7,848 objects); with --all the test set adds several GB (3.5 M objects)",
    licence="as stated on the Zenodo record (CC BY 4.0 as far as we know; not checked offline)",
    homepage="https://zenodo.org/records/2539456",
    files=(
        RemoteFile("plasticc_train_lightcurves.csv.gz", _ZENODO_PLASTICC + "plasticc_train_lightcurves.csv.gz",
                   "md5:1aa1605908b5a6398bd46bf9120b6400", _PLASTICC_HASH_SOURCE),
        RemoteFile("plasticc_train_metadata.csv.gz", _ZENODO_PLASTICC + "plasticc_train_metadata.csv.gz",
                   "md5:8c6b00fd503d6cf3d9a42bfb53046e0f", _PLASTICC_HASH_SOURCE),
        *(RemoteFile(n, _ZENODO_PLASTICC + n, "md5:" + h, _PLASTICC_HASH_SOURCE, optional=True)
          for n, h in _PLASTICC_TEST_MD5.items()),
    ),
    load_path=".",
))

_register(PublicDataset(
    name="kepler",
    task="transits",
    title="Kepler labelled time series (Kaggle: keplersmith/kepler-labelled-time-series-data)",
    size="two CSVs: exoTrain.csv 5,087 stars, exoTest.csv 570 stars, 3,197 flux points each",
    licence="as stated on the Kaggle dataset page (Kepler data: NASA, public domain)",
    homepage="https://www.kaggle.com/datasets/keplersmith/kepler-labelled-time-series-data",
    manual=("needs a Kaggle account. Either run\n"
            "  kaggle datasets download -d keplersmith/kepler-labelled-time-series-data -p {dest} --unzip\n"
            "or download the zip from {homepage} and unzip it so that these files exist:\n"
            "  {dest}/exoTrain.csv\n  {dest}/exoTest.csv\n"
            "then: skysift train transits --data {dest}/exoTrain.csv --out runs/kepler"),
    expected=("exoTrain.csv", "exoTest.csv"),
    load_path="exoTrain.csv",
))

_register(PublicDataset(
    name="seti",
    task="technosignatures",
    title="SETI Breakthrough Listen - E.T. Signal Search (Kaggle competition, 2021)",
    size="60,000 labelled cadence snippets + a test set (6 x 273 x 256 float16 each), tens of GB",
    licence="Kaggle competition rules (accept them on the competition page first)",
    homepage="https://www.kaggle.com/competitions/seti-breakthrough-listen",
    manual=("needs a Kaggle account and the competition rules accepted. Either run\n"
            "  kaggle competitions download -c seti-breakthrough-listen -p {dest}\n"
            "  unzip {dest}/seti-breakthrough-listen.zip -d {dest}\n"
            "or download it from {homepage}; the folder must then hold\n"
            "  {dest}/train_labels.csv\n  {dest}/train/<first hex digit>/<id>.npy\n"
            "  {dest}/test/<first hex digit>/<id>.npy\n"
            "then: skysift train technosignatures --data {dest} --out runs/seti"),
    expected=("train_labels.csv", "train"),
    load_path=".",
))

_register(PublicDataset(
    name="galaxyzoo1",
    task="galaxies",
    title="Galaxy Zoo 1 data release table 2 (Lintott et al. 2011) + SDSS cutouts",
    size="catalogue 19.4 MB gzipped (667,944 galaxies); cutouts fetched separately",
    licence="Galaxy Zoo data: public (cite Lintott et al. 2008, 2011); SDSS images: credit the SDSS",
    homepage="https://data.galaxyzoo.org/",
    files=(
        RemoteFile("GalaxyZoo1_DR_table2.csv.gz",
                   # the link data.galaxyzoo.org gives for table 2 (not re-checked offline)
                   "https://galaxy-zoo-1.s3.amazonaws.com/GalaxyZoo1_DR_table2.csv.gz",
                   "md5:766cb56d64f936e00d26699a55f0669b",
                   "md5 in a public GitHub data README describing this file (19.4 MB)", size="19.4 MB"),
    ),
    notes=("the catalogue only: fetch the images with\n"
           "  skysift datasets cutouts {dest}/GalaxyZoo1_DR_table2.csv.gz --out {dest}/cutouts --max 5000\n"
           "then: skysift train galaxies --data {dest}/cutouts --out runs/gz1"),
    load_path="cutouts",
))

_register(PublicDataset(
    name="galaxy10_decals",
    task="galaxies",
    title="Galaxy10 DECaLS (Leung & Bovy; 17,736 256x256 RGB images in 10 classes)",
    size="~2.5 GB (one HDF5 file)",
    licence="MIT-licensed astroNN distribution; images from the DESI Legacy Imaging Surveys",
    homepage="https://astronn.readthedocs.io/en/latest/galaxy10.html",
    files=(
        RemoteFile("Galaxy10_DECals.h5", "https://zenodo.org/records/10845026/files/Galaxy10_DECals.h5",
                   "sha256:19aefc477c41bb7f77ff07599a6b82a038dc042f889a111b0d4d98bb755c1571",
                   "astroNN src/astroNN/datasets/galaxy10.py (file_hash, SHA256)", size="~2.5 GB"),
    ),
    load_path="Galaxy10_DECals.h5",
))


def names() -> list[str]:
    return list(DATASETS)


def get(name: str) -> PublicDataset:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def data_dir(dest: str | Path | None = None) -> Path:
    """The root folder datasets go into: ``dest``, else ``$SKYSIFT_DATA_DIR``, else pooch's cache."""
    if dest is not None:
        return Path(dest).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("skysift"))


def file_url(ds: PublicDataset, f: RemoteFile, mirror: str | None = None) -> str:
    """``f.url``, or ``<mirror>/<dataset>/<file>`` when a mirror is given (option or env var)."""
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if mirror:
        return f"{mirror.rstrip('/')}/{ds.name}/{f.name}"
    return f.url


def cache_status(ds: PublicDataset, dest: str | Path | None = None) -> str:
    """``complete`` / ``partial (k of n files)`` / ``absent`` for the dataset's folder.

    Only existence is checked here (hashing 2.5 GB on every ``list`` would be slow); ``download``
    verifies the hashes."""
    folder = data_dir(dest) / ds.name
    if ds.needs_account:
        want = list(ds.expected)
    else:
        want = [f.name for f in ds.files if not f.optional]
    have = [n for n in want if (folder / n).exists()]
    partial = list((folder / ".partial").glob("*.part")) if (folder / ".partial").exists() else []
    if want and len(have) == len(want):
        return "complete"
    if have or partial:
        return f"partial ({len(have)} of {len(want)} files{', interrupted transfer' if partial else ''})"
    return "absent"
