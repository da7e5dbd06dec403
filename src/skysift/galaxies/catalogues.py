"""Galaxy catalogues: folders of JPEG/PNG cutouts matched to catalogue rows by file stem.

A folder (or a catalogue ``.csv`` inside one) holds JPEG/PNG cutouts anywhere below the folder,
matched to catalogue rows by file stem. Catalogue layouts:

* a class column (``class``/``label``/``CLASS``...) next to an id column; integer classes of
  the Galaxy Zoo 1 leaf table (``OBJID,CLASS``, 0–5) are named by ``scheme`` (below);
* Galaxy Zoo 1 vote fractions ``P_EL, P_CW, P_ACW, P_EDGE, P_DK, P_MG``: the six fractions (which
  must sum to one) become soft targets, summed into the classes of ``scheme``; the hard class is
  their arg-max. Or the GZ1 flags ``SPIRAL, ELLIPTICAL, UNCERTAIN`` (exactly one set per row):
  elliptical / spiral / other (three-way scheme);
* the Galaxy Zoo challenge's 37 ``ClassN.M`` columns: soft targets are the first question's
  answers (``Class1.1-1.3``: smooth / featured-or-disc / star-or-artifact), the only answer
  group of the decision tree that sums to one; all 37 must lie in [0, 1];
* Galaxy Zoo 2 (``gz2_hart16.csv`` + ``gz2_filename_mapping.csv``) and Galaxy Zoo DECaLS
  (``smooth-or-featured_*_fraction``): the same first question's vote fractions.

Several catalogues of one layout in a folder (e.g. DECaLS's per-release files) are
concatenated; an id in two of them is an error. Images in a folder none of whose images is
catalogued (e.g. the challenge's unlabelled test images) are ignored; an image with no row in a
folder that holds catalogued images is an error, as is a row whose image is missing.

GZ1 schemes (``scheme=``): ``six`` (elliptical, clockwise spiral, anticlockwise spiral, edge-on
disc, don't know, merger), ``three`` (elliptical / spiral = the three spiral classes / other =
don't know + merger; the seed's three-way scheme) and ``four`` (elliptical / spiral / uncertain /
merger, the MANIFEST's reading of the seed's spiral/elliptical/uncertain flags).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import validate
from ..core.data import TaskData
from ..errors import DataError
from .images import GZ1_SCHEMES, IMAGE_SUFFIXES, SUM_TOLERANCE, LoadOptions, _finish_labels, read_images

GZ1_FRACTIONS = ["P_EL", "P_CW", "P_ACW", "P_EDGE", "P_DK", "P_MG"]
GZ1_FLAGS = ["ELLIPTICAL", "SPIRAL", "UNCERTAIN"]
FIRST_QUESTION = ["smooth", "featured_or_disc", "star_or_artifact"]
CHALLENGE_COLUMNS = [f"Class{q}.{a}" for q, n in
                     [(1, 3), (2, 2), (3, 2), (4, 2), (5, 4), (6, 2), (7, 3), (8, 7), (9, 3), (10, 3), (11, 6)]
                     for a in range(1, n + 1)]
GZ2_FRACTIONS = ["t01_smooth_or_features_a01_smooth_fraction",
                 "t01_smooth_or_features_a02_features_or_disk_fraction",
                 "t01_smooth_or_features_a03_star_or_artifact_fraction"]
DECALS_FRACTIONS = ["smooth-or-featured_smooth_fraction", "smooth-or-featured_featured-or-disk_fraction",
                    "smooth-or-featured_artifact_fraction"]
ID_COLUMNS = ("id", "ID", "objid", "OBJID", "GalaxyID", "iauname", "dr7objid", "asset_id")
CLASS_COLUMNS = ("class", "label", "CLASS", "LABEL", "Class", "Label", "morphology")
FILE_COLUMNS = ("filename", "file", "image", "path", "png_loc")


# ---- folders of cutouts ------------------------------------------------------------------------
def _read_csv(path: Path):
    import pandas as pd

    try:
        # ids as text: SDSS objids have 18 digits and would lose precision as floats
        head = pd.read_csv(path, nrows=0)
        dtypes = {c: str for c in head.columns if c in ID_COLUMNS + FILE_COLUMNS + CLASS_COLUMNS}
        return pd.read_csv(path, dtype=dtypes, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise DataError(path, f"unreadable catalogue CSV ({str(e).splitlines()[0]})") from None


def _layout(df) -> str | None:
    cols = set(df.columns)
    if set(CHALLENGE_COLUMNS[:3]) <= cols and "GalaxyID" in cols:
        return "gz-challenge"
    if set(GZ2_FRACTIONS) <= cols and "dr7objid" in cols:
        return "gz2"
    if set(DECALS_FRACTIONS) <= cols and "iauname" in cols:
        return "gz-decals"
    if set(GZ1_FRACTIONS) <= cols or set(GZ1_FLAGS) <= cols:
        return "gz1-votes"
    if any(c in cols for c in CLASS_COLUMNS):
        return "class-column"
    if {"objid", "asset_id"} <= cols:
        return "gz2-mapping"  # auxiliary: links GZ2 objids to image file names
    return None


def _fractions(df, columns: list[str], path: Path, first_row: int = 0) -> np.ndarray:
    """(N, len(columns)) float vote fractions, validated: finite, in [0, 1], rows sum to one."""
    import pandas as pd

    vals = df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(vals).all(axis=1)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataError(path, f"vote fractions {columns} hold a missing or non-numeric value",
                        where=validate.row(first_row + r))
    out_of_range = ((vals < 0) | (vals > 1 + 1e-6)).any(axis=1)
    if out_of_range.any():
        r = int(np.argmax(out_of_range))
        raise DataError(path, "vote fraction outside [0, 1]", where=validate.row(first_row + r))
    sums = vals.sum(axis=1)
    bad = np.abs(sums - 1) > SUM_TOLERANCE
    if bad.any():
        r = int(np.argmax(bad))
        raise DataError(path, f"vote fractions {', '.join(columns)} sum to {sums[r]:.4g}, not one",
                        where=validate.row(first_row + r))
    return vals / sums[:, None]


def _catalogue_labels(df, layout: str, path: Path, opts: LoadOptions):
    """(ids, image keys, y, class names) of one catalogue; rows are data rows (header not counted)."""
    import pandas as pd

    if layout == "gz-challenge":
        ids = df["GalaxyID"].astype(str).to_numpy()
        vals = df[[c for c in CHALLENGE_COLUMNS if c in df.columns]].apply(pd.to_numeric, errors="coerce")
        arr = vals.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(arr).all(axis=1) | (arr < 0).any(axis=1) | (arr > 1 + 1e-6).any(axis=1)
        if bad.any():
            r = int(np.argmax(bad))
            raise DataError(path, "a ClassN.M vote fraction is missing or outside [0, 1]", where=validate.row(r))
        y = _fractions(df, CHALLENGE_COLUMNS[:3], path)
        return ids, ids, y, FIRST_QUESTION
    if layout == "gz2":
        ids = df["dr7objid"].astype(str).to_numpy()
        return ids, ids, _fractions(df, GZ2_FRACTIONS, path), FIRST_QUESTION
    if layout == "gz-decals":
        ids = df["iauname"].astype(str).to_numpy()
        return ids, ids, _fractions(df, DECALS_FRACTIONS, path), FIRST_QUESTION
    id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
    file_col = next((c for c in FILE_COLUMNS if c in df.columns), None)
    if id_col is None and file_col is None:
        raise DataError(path, f"no id column (one of {', '.join(ID_COLUMNS)}) or file column "
                              f"({', '.join(FILE_COLUMNS)})")
    if id_col is not None:
        ids = df[id_col].astype(str).str.strip().to_numpy()
    else:
        ids = np.array([Path(str(f)).stem for f in df[file_col]])
    keys = ids if file_col is None else np.array([Path(str(f)).stem for f in df[file_col]])
    missing = (df[id_col].isna() if id_col else df[file_col].isna()).to_numpy()
    if missing.any():
        raise DataError(path, "empty id", where=validate.row(int(np.argmax(missing))))
    names6, leaf_map = GZ1_SCHEMES[opts.scheme]
    if layout == "gz1-votes":
        if set(GZ1_FRACTIONS) <= set(df.columns):
            leaves = _fractions(df, GZ1_FRACTIONS, path)
            k = len(names6)
            y = np.zeros((len(df), k))
            for leaf, c in enumerate(leaf_map):
                y[:, c] += leaves[:, leaf]
            return ids, keys, (y if opts.soft else y.argmax(axis=1)), names6
        flags = df[GZ1_FLAGS].apply(pd.to_numeric, errors="coerce").to_numpy()
        bad = ~np.isin(flags, (0, 1)).all(axis=1) | (np.nansum(flags, axis=1) != 1)
        if bad.any():
            raise DataError(path, f"exactly one of {', '.join(GZ1_FLAGS)} must be 1",
                            where=validate.row(int(np.argmax(bad))))
        return ids, keys, flags.argmax(axis=1).astype(np.int64), ["elliptical", "spiral", "other"]
    # a class column
    cls_col = next(c for c in CLASS_COLUMNS if c in df.columns)
    raw = df[cls_col]
    if raw.isna().any():
        raise DataError(path, f"empty '{cls_col}'", where=validate.row(int(np.argmax(raw.isna().to_numpy()))))
    raw = raw.astype(str).str.strip()
    if raw.str.fullmatch(r"-?\d+").all():
        codes = raw.astype(int).to_numpy()
        gz1 = cls_col == "CLASS" and (id_col == "OBJID")
        if gz1:
            bad = (codes < 0) | (codes > 5)
            if bad.any():
                raise DataError(path, f"Galaxy Zoo 1 CLASS must be 0-5, got {codes[np.argmax(bad)]}",
                                where=validate.row(int(np.argmax(bad))))
            return ids, keys, np.asarray(leaf_map)[codes].astype(np.int64), names6
        if (codes < 0).any():
            raise DataError(path, "negative class index", where=validate.row(int(np.argmax(codes < 0))))
        names = [str(i) for i in range(int(codes.max()) + 1)]
        return ids, keys, codes.astype(np.int64), names
    names = sorted(raw.unique())
    lookup = {c: i for i, c in enumerate(names)}
    return ids, keys, raw.map(lookup).to_numpy().astype(np.int64), names


def _index_images(root: Path) -> dict[str, Path]:
    """Every cutout below ``root`` by file stem; two files with one stem is an error."""
    index: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."):
            if not p.is_file():  # named like a cutout, but a folder, a dangling link or a link loop
                raise DataError(p, "not a readable image file (a directory, or a broken symbolic link)")
            if p.stem in index:
                raise DataError(root, f"two images share the name {p.stem!r}: {index[p.stem]} and {p}")
            index[p.stem] = p
    return index


def load_folder(path: Path, opts: LoadOptions, labelled: bool | None) -> TaskData:
    """A folder of cutouts (+ catalogues), or one catalogue CSV whose folder holds the cutouts."""
    root = path.parent if path.is_file() else path
    csvs = [path] if path.is_file() else sorted(root.glob("*.csv"))
    frames, layouts, mapping = [], set(), None
    for c in csvs:
        df = _read_csv(c)
        lay = _layout(df)
        if lay == "gz2-mapping":
            mapping = (c, df)
        elif lay is not None:
            frames.append((c, df, lay))
            layouts.add(lay)
        elif path.is_file():
            raise DataError(c, f"not a catalogue: no class, vote-fraction or id columns (found "
                               f"{', '.join(map(str, df.columns[:12]))})")
    if "gz2" in layouts and mapping is None and path.is_file():
        m = root / "gz2_filename_mapping.csv"
        if m.exists():
            mapping = (m, _read_csv(m))
    if len(layouts) > 1:
        raise DataError(root, f"catalogues of different layouts ({', '.join(sorted(layouts))}); "
                              "pass one CSV file instead of the folder")
    index = _index_images(root)
    if not index:
        raise DataError(root, "no JPEG or PNG images found")
    want_labels = labelled is not False and frames
    if not frames:
        if labelled:
            raise DataError(root, "no catalogue CSV with classes or vote fractions; training needs labels")
        ids = np.array(sorted(index))
        x = read_images([index[i] for i in ids], opts.settle_crop("images"), root)
        return TaskData(ids=ids, x=x, y=None, class_names=list(GZ1_SCHEMES[opts.scheme][0]), source=str(root),
                        meta={"layout": "images", "card": {"layout": "images", **opts.card()}})

    all_ids, all_keys, ys, names, where = [], [], [], None, []
    for c, df, lay in frames:
        if len(df) == 0:
            raise DataError(c, "catalogue has a header but no rows")
        ids, keys, y, nm = _catalogue_labels(df, lay, c, opts)
        validate.unique_ids(ids, c)
        if names is not None and nm != names:
            raise DataError(c, f"classes {nm} differ from {names} of another catalogue in {root}")
        names = nm
        if lay == "gz2":
            if mapping is None:
                raise DataError(c, "Galaxy Zoo 2 images are named by asset id: gz2_filename_mapping.csv is missing")
            mc, mdf = mapping
            link = dict(zip(mdf["objid"].astype(str), mdf["asset_id"].astype(str)))
            keys = np.array([link.get(i, f"<no asset id for {i}>") for i in ids])
        all_ids.append(ids)
        all_keys.append(keys)
        ys.append(y)
        where += [(c, r) for r in range(len(ids))]
    ids = np.concatenate(all_ids)
    keys = np.concatenate(all_keys)
    y = np.concatenate(ys)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][0]
        hits = [where[k] for k in np.where(ids == dup)[0][:2]]
        raise DataError(hits[1][0], f"duplicate id {dup!r} (also in {hits[0][0].name}, row "
                                    f"{hits[0][1] + 1})", where=validate.row(hits[1][1]))
    missing = np.array([k not in index for k in keys])
    if missing.any():
        r = int(np.argmax(missing))
        cat, row = where[r]
        raise DataError(cat, f"id {ids[r]!r} has no image ({missing.sum()} of {len(ids)} rows lack one; "
                             f"looked for {keys[r]}.jpg/.jpeg/.png below {root})", where=validate.row(row))
    used = {index[k] for k in keys}
    used_dirs = {p.parent for p in used}
    orphans = sorted(p for k, p in index.items() if p.parent in used_dirs and p not in used)
    if orphans and not path.is_file():
        raise DataError(orphans[0], f"image has no catalogue row ({len(orphans)} such image(s) in folders "
                                    f"that hold catalogued images)")
    layout = frames[0][2]
    gz1 = layout == "gz1-votes" or all({"OBJID", "CLASS"} <= set(df.columns) for _, df, _ in frames)
    x = read_images([index[k] for k in keys], opts.settle_crop("gz1" if gz1 else layout), root)
    y = _finish_labels(y if want_labels else None, names, root, labelled)
    return TaskData(ids=ids, x=x, y=y, class_names=list(names), source=str(path),
                    meta={"layout": layout, "card": {"layout": layout, **opts.card()},
                          "n_images_without_row": len(orphans)})
