"""Loaders of the galaxies task: every layout, every validation error, and the real fixtures."""
from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
from PIL import Image

from skysift.errors import ConfigError, DataError
from skysift.galaxies import io
from skysift.galaxies.io import load


def _img(path, size=(40, 40), mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode).save(path)
    return path


def _folder(tmp_path, n=4, csv=None, ext=".jpg", **kw):
    (tmp_path / "img").mkdir(exist_ok=True)
    for i in range(n):
        _img(tmp_path / "img" / f"g{i}{ext}", seed=i, **kw)
    if csv is None:
        csv = "id,class\n" + "".join(f"g{i},{'spiral' if i % 2 else 'elliptical'}\n" for i in range(n))
    (tmp_path / "cat.csv").write_text(csv)
    return tmp_path


def _npz(path, images=None, labels=None, **extra):
    images = np.zeros((6, 32, 32, 3), np.uint8) if images is None else images
    labels = np.eye(4, dtype=np.uint8)[np.arange(len(images)) % 4] if labels is None else labels
    np.savez(path, images=images, labels=labels, **extra)
    return path


# ---- .npz ----------------------------------------------------------------------------------------
def test_npz_seed_layout_resized_and_named(tmp_path):
    d = load(_npz(tmp_path / "a.npz"), image_size=16)
    assert d.x.shape == (6, 16, 16, 3) and d.x.dtype == np.uint8
    assert d.class_names == ["normal", "ringed", "merger", "other"]
    assert d.y.tolist() == [0, 1, 2, 3, 0, 1]


def test_npz_soft_labels_kept(tmp_path):
    soft = np.tile([[0.5, 0.25, 0.25, 0.0]], (6, 1))
    d = load(_npz(tmp_path / "a.npz", labels=soft))
    assert d.y.shape == (6, 4) and np.allclose(d.y.sum(axis=1), 1) and d.hard_labels.tolist() == [0] * 6


@pytest.mark.parametrize("labels, message", [
    (np.tile([[1, 1, 0, 0]], (6, 1)), "does not sum to one"),
    (np.tile([[0.5, 0.2, 0, 0]], (6, 1)), "does not sum to one"),
    (np.eye(4)[[0, 1, 2]], "has 3 rows but 'images' has 6"),
    (np.tile([[np.nan, 1, 0, 0]], (6, 1)), "NaN"),
])
def test_npz_bad_labels(tmp_path, labels, message):
    with pytest.raises(DataError, match=message) as e:
        load(_npz(tmp_path / "a.npz", labels=labels))
    assert "a.npz" in str(e.value)


def test_npz_bad_row_is_named(tmp_path):
    labels = np.eye(4)[[0, 1, 2, 3, 0, 1]]
    labels[4] = [0.3, 0.3, 0, 0]
    with pytest.raises(DataError, match="row 5"):  # the fifth object: rows count from 1
        load(_npz(tmp_path / "a.npz", labels=labels))


@pytest.mark.parametrize("images, message", [
    (np.zeros((6, 32, 32, 3), np.float32), "must be uint8"),
    (np.zeros((6, 32, 32, 4), np.uint8), "3 colour channels"),
    (np.zeros((6, 32), np.uint8), "shape"),
])
def test_npz_bad_images(tmp_path, images, message):
    with pytest.raises(DataError, match=message):
        load(_npz(tmp_path / "a.npz", images=images))


def test_npz_missing_key_and_truncated(tmp_path):
    np.savez(tmp_path / "k.npz", pictures=np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="expected key 'images'"):
        load(tmp_path / "k.npz")
    good = _npz(tmp_path / "t.npz", images=np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8))
    raw = good.read_bytes()
    good.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="unreadable or truncated"):
        load(good)


def test_npz_grayscale_replicated_or_refused(tmp_path):
    p = _npz(tmp_path / "g.npz", images=np.full((6, 32, 32), 7, np.uint8))
    with pytest.warns(UserWarning, match="grayscale"):
        d = load(p)
    assert d.x.shape == (6, 64, 64, 3) and (d.x == 7).all()
    with pytest.raises(DataError, match="grayscale"):
        load(p, grayscale="error")


def test_labelled_required_and_ignored(tmp_path):
    np.savez(tmp_path / "u.npz", images=np.zeros((3, 8, 8, 3), np.uint8))
    assert load(tmp_path / "u.npz").y is None
    with pytest.raises(DataError, match="no labels"):
        load(tmp_path / "u.npz", labelled=True)
    assert load(_npz(tmp_path / "a.npz"), labelled=False).y is None


def test_duplicate_ids_in_npz(tmp_path):
    with pytest.raises(DataError, match="row 4: duplicate id 'a' in rows 1, 4"):
        load(_npz(tmp_path / "a.npz", ids=np.array(["a", "b", "c", "a", "e", "f"])))


# ---- HDF5 (Galaxy10) -----------------------------------------------------------------------------
def test_hdf5_galaxy10(tmp_path):
    with h5py.File(tmp_path / "Galaxy10.h5", "w") as f:
        f["images"] = np.random.default_rng(0).integers(0, 255, (5, 69, 69, 3), dtype=np.uint8)
        f["ans"] = np.array([0, 1, 9, 3, 4], dtype=np.uint8)
    d = load(tmp_path / "Galaxy10.h5", image_size=32)
    assert d.x.shape == (5, 32, 32, 3) and len(d.class_names) == 10
    assert d.class_names[1] == "smooth_round"  # Galaxy10 SDSS (69 px) names
    assert d.y.tolist() == [0, 1, 9, 3, 4]


def test_hdf5_errors(tmp_path):
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["pictures"] = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(DataError, match="no 'images' dataset"):
        load(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "n.h5", "w") as f:
        f["images"] = np.zeros((3, 8, 8, 3), np.uint8)
        f["ans"] = np.array([0, 1])
    with pytest.raises(DataError, match="'ans' has 2 rows"):
        load(tmp_path / "n.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match="unreadable or truncated HDF5"):
        load(tmp_path / "junk.h5")


# ---- folders -------------------------------------------------------------------------------------
def test_folder_class_column(tmp_path):
    d = load(_folder(tmp_path), image_size=24)
    assert d.x.shape == (4, 24, 24, 3)
    assert d.class_names == ["elliptical", "spiral"] and d.y.tolist() == [0, 1, 0, 1]
    assert d.ids.tolist() == ["g0", "g1", "g2", "g3"]


def test_folder_id_without_image(tmp_path):
    csv = "id,class\ng0,a\ng1,b\ng2,a\ng3,b\ng9,a\n"
    with pytest.raises(DataError, match=r"id 'g9' has no image") as e:
        load(_folder(tmp_path, csv=csv))
    assert "row 5" in str(e.value) and "cat.csv" in str(e.value)


def test_folder_image_without_row(tmp_path):
    csv = "id,class\ng0,a\ng1,b\ng2,a\n"
    with pytest.raises(DataError, match="image has no catalogue row") as e:
        load(_folder(tmp_path, csv=csv))
    assert "g3.jpg" in str(e.value)


def test_folder_truncated_and_unreadable_images(tmp_path):
    root = _folder(tmp_path)
    raw = (root / "img" / "g2.jpg").read_bytes()
    (root / "img" / "g2.jpg").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataError, match="unreadable or truncated image") as e:
        load(root)
    assert "g2.jpg" in str(e.value)
    (root / "img" / "g2.jpg").write_text("this is not a picture")
    with pytest.raises(DataError, match="g2.jpg.*unreadable"):
        load(root)


def test_folder_mixed_sizes_resized_or_refused(tmp_path):
    root = _folder(tmp_path)
    _img(root / "img" / "g1.jpg", size=(60, 50))
    d = load(root, image_size=32)
    assert d.x.shape == (4, 32, 32, 3)
    with pytest.raises(DataError, match="mixed sizes"):
        load(root, mixed_sizes="error")


def test_folder_grayscale_png(tmp_path):
    root = _folder(tmp_path, ext=".png")
    _img(root / "img" / "g0.png", mode="L")
    with pytest.warns(UserWarning, match="1 grayscale"):
        d = load(root)
    assert (d.x[0, ..., 0] == d.x[0, ..., 1]).all()
    with pytest.raises(DataError, match="g0.png.*grayscale"):
        load(root, grayscale="error")


def test_folder_duplicate_ids_and_stems(tmp_path):
    csv = "id,class\ng0,a\ng1,b\ng0,a\ng3,b\ng2,a\n"
    with pytest.raises(DataError, match=r"cat\.csv, row 3: duplicate id 'g0' in rows 1, 3"):
        load(_folder(tmp_path, csv=csv))
    _img(tmp_path / "g1.png")
    with pytest.raises(DataError, match="two images share the name 'g1'"):
        load(tmp_path)


def test_folder_without_catalogue(tmp_path):
    root = _folder(tmp_path)
    (root / "cat.csv").unlink()
    assert load(root).y is None and len(load(root)) == 4
    with pytest.raises(DataError, match="training needs labels"):
        load(root, labelled=True)


def test_folder_catalogue_without_usable_columns(tmp_path):
    root = _folder(tmp_path, csv="name,colour\ng0,red\n")
    with pytest.raises(DataError, match="not a catalogue"):
        load(root / "cat.csv")
    with pytest.raises(DataError, match="empty 'class'"):
        load(_folder(tmp_path, csv="id,class\ng0,a\ng1,\ng2,a\ng3,b\n"))


def _gz1(tmp_path, header, rows):
    csv = header + "\n" + "\n".join(f"{i}," + r for i, r in enumerate(rows)) + "\n"
    (tmp_path / "img").mkdir(parents=True, exist_ok=True)
    for i in range(len(rows)):
        _img(tmp_path / "img" / f"{i}.jpeg", seed=i)
    (tmp_path / "labels.csv").write_text(csv)
    return tmp_path


@pytest.mark.parametrize("scheme, names, y", [
    ("six", io.GZ1_LEAVES, [0, 1, 2, 3, 4, 5]),
    ("three", ["elliptical", "spiral", "other"], [0, 1, 1, 1, 2, 2]),
    ("four", ["elliptical", "spiral", "uncertain", "merger"], [0, 1, 1, 1, 2, 3]),
])
def test_gz1_class_schemes(tmp_path, scheme, names, y):
    root = _gz1(tmp_path, "OBJID,CLASS", list("012345"))
    d = load(root, scheme=scheme)
    assert d.class_names == names and d.y.tolist() == y
    assert load(f"{root}#scheme={scheme},size=16").x.shape[1] == 16  # CLI path options


def test_gz1_default_crop(tmp_path):
    # GZ1 cutouts default to their central 30 %, other layouts to the whole image; an explicit
    # crop wins, and the card records what was used
    gz1 = _gz1(tmp_path / "gz1", "OBJID,CLASS", list("012345"))
    assert load(gz1).meta["card"]["crop"] == io.LAYOUT_CROP["gz1"]
    assert load(gz1, crop=0.5).meta["card"]["crop"] == 0.5
    votes = _gz1(tmp_path / "v", "OBJID,ELLIPTICAL,SPIRAL,UNCERTAIN", ["1,0,0", "0,1,0"])
    assert load(votes).meta["card"]["crop"] == io.LAYOUT_CROP["gz1"]
    (tmp_path / "o").mkdir()
    other = _folder(tmp_path / "o", csv="id,class\ng0,a\ng1,b\ng2,a\ng3,b\n")
    assert load(other).meta["card"]["crop"] == 1.0


def test_gz1_class_out_of_range(tmp_path):
    with pytest.raises(DataError, match="CLASS must be 0-5.*") as e:
        load(_gz1(tmp_path, "OBJID,CLASS", ["0", "7"]))
    assert "row 2" in str(e.value)


def test_gz1_vote_fractions(tmp_path):
    header = "OBJID," + ",".join(io.GZ1_FRACTIONS)
    root = _gz1(tmp_path, header, ["0.8,0.1,0,0,0.1,0", "0.1,0.3,0.3,0.2,0.05,0.05"])
    d = load(root, scheme="three")
    assert np.allclose(d.y, [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]) and d.hard_labels.tolist() == [0, 1]
    assert load(root, scheme="three", soft=False).y.tolist() == [0, 1]


def test_gz1_vote_fractions_must_sum_to_one(tmp_path):
    header = "OBJID," + ",".join(io.GZ1_FRACTIONS)
    root = _gz1(tmp_path, header, ["0.8,0.1,0,0,0.1,0", "0.5,0.3,0.3,0.2,0.05,0.05"])
    with pytest.raises(DataError, match="sum to 1.4, not one") as e:
        load(root)
    assert "row 2" in str(e.value) and "labels.csv" in str(e.value)


def test_gz1_flags(tmp_path):
    root = _gz1(tmp_path, "OBJID,ELLIPTICAL,SPIRAL,UNCERTAIN", ["1,0,0", "0,1,0", "0,0,1"])
    d = load(root)
    assert d.class_names == ["elliptical", "spiral", "other"] and d.y.tolist() == [0, 1, 2]
    root2 = _gz1(tmp_path / "b", "OBJID,ELLIPTICAL,SPIRAL,UNCERTAIN", ["1,0,0", "0,1,1"])
    with pytest.raises(DataError, match="exactly one of"):
        load(root2)


def test_challenge_fraction_out_of_range(tmp_path):
    cols = ",".join(io.CHALLENGE_COLUMNS)
    row_ok = ",".join(["0.5", "0.5", "0"] + ["0"] * 34)
    row_bad = ",".join(["0.5", "0.5", "0"] + ["1.7"] + ["0"] * 33)
    root = _gz1(tmp_path, "GalaxyID," + cols, [row_ok, row_bad])
    with pytest.raises(DataError, match="outside \\[0, 1\\]"):
        load(root)


def test_unknown_format_and_options(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="x.txt: not a recognised galaxies format; known: npz"):
        load(tmp_path / "x.txt")
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "missing.npz")
    with pytest.raises(ConfigError, match="scheme"):
        load(tmp_path, scheme="seven")
    with pytest.raises(ConfigError, match="unknown loader option"):
        load(f"{tmp_path}#colour=red")


# ---- real fixtures -------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_fixture_layouts_load(shared_data):
    fx = shared_data / "galaxyzoo" / "fixtures"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of them should need grayscale replication
        ch = load(fx / "galaxy_zoo_challenge")
        gz2 = load(fx / "galaxy_zoo_2")
        dec = load(fx / "galaxy_zoo_decals")
        dec5 = load(fx / "galaxy_zoo_decals" / "gz_decals_volunteers_5.csv")
    for d, n in ((ch, 3), (gz2, 3), (dec, 18), (dec5, 6)):
        assert len(d) == n and d.x.shape[1:] == (64, 64, 3)
        assert d.class_names == io.FIRST_QUESTION and d.y.shape == (n, 3)
        assert np.allclose(d.y.sum(axis=1), 1, atol=1e-6)
    assert ch.ids.tolist() == ["100008", "100023", "100053"]
    assert np.isclose(ch.y[0, 1], 0.616853, atol=1e-5)
    assert set(gz2.ids) == {"587726016142835881", "587736542560715163", "587737825678131439"}
    # the challenge's unlabelled test images load as a plain image folder
    assert load(fx / "galaxy_zoo_challenge" / "images_test_rev1").y is None


@pytest.mark.realdata
def test_real_gz1_schemes(shared_data):
    d = load(shared_data / "galaxyzoo" / "gz1", scheme="three", image_size=32, crop=0.5)
    assert len(d) == 5665 and d.x.shape[1:] == (32, 32, 3)
    assert d.class_counts() == {"elliptical": 3948, "spiral": 352 + 371 + 848, "other": 48 + 98}
