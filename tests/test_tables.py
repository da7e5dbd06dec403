"""The shared table reader and validators: every bad value is reported with its file, row and column."""
from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skysift.core import tables, validate
from skysift.errors import DataError

TYPES = {"a": pa.float64(), "b": pa.float64(), "n": pa.int64()}
GOOD = "id,a,b,n\nx,1.5,2,3\ny,nan,4e3,5\nz,0.5,-1,7\n"


def _csv(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(p, "wt") as fh:
            fh.write(text)
    else:
        p.write_text(text)
    return p


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_csv_reads_typed_columns(tmp_path, name):
    t = tables.read_csv(_csv(tmp_path, GOOD, name), TYPES)
    assert t.column_names == ["id", "a", "b", "n"]
    assert t.column("b").to_pylist() == [2.0, 4000.0, -1.0] and t.column("n").type == pa.int64()
    assert t.column("a").null_count == 1


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_csv_bad_value_names_row_and_column(tmp_path, name):
    path = _csv(tmp_path, GOOD.replace("4e3", "abc"), name)
    with pytest.raises(DataError) as e:
        tables.read_csv(path, TYPES)
    assert str(e.value) == f"{path}, row 2: non-numeric value 'abc' in column b"
    assert e.value.where == "row 2" and e.value.path == str(path)


def test_csv_non_integer_and_ragged_rows(tmp_path):
    with pytest.raises(DataError, match=r"t\.csv, row 3: non-integer value '7\.5' in column n"):
        tables.read_csv(_csv(tmp_path, GOOD.replace(",7\n", ",7.5\n")), TYPES)
    with pytest.raises(DataError, match=r"t\.csv, row 2: ragged row: 3 fields where the header has 4"):
        tables.read_csv(_csv(tmp_path, GOOD.replace("y,nan,4e3,5", "y,nan,4e3")), TYPES)


def test_readme_example_through_the_transits_loader(tmp_path):
    from skysift.transits import io

    header = "LABEL," + ",".join(f"FLUX.{i}" for i in range(1, 161))
    rows = ["2," + ",".join(["1.0"] * 160) for _ in range(20)]
    values = rows[16].split(",")
    values[151] = "abc"  # column FLUX.151 (LABEL is field 0)
    rows[16] = ",".join(values)
    path = tmp_path / "exoTrain.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as e:
        io.load(path)
    assert str(e.value) == f"{path}, row 17: non-numeric value 'abc' in column FLUX.151"


def test_parquet_bad_value_names_row_and_column(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": ["1", "2", "x3", "4"]}), path)
    table = tables.read_parquet(path)
    with pytest.raises(DataError, match=r"t\.parquet, row 3: non-numeric value 'x3' in column a"):
        tables.cast_column(path, table, "a", pa.float64())
    assert tables.cast_column(path, pa.table({"a": ["1", "2"]}), "a", pa.float64()).to_pylist() == [1.0, 2.0]
    assert tables.header(path) == ["a"]


def test_not_parquet_missing_directory_and_empty(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable Parquet file"):
        tables.read_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"nope\.csv: no such file or directory"):
        tables.read_csv(tmp_path / "nope.csv", TYPES)
    with pytest.raises(DataError, match=r": is a directory, expected a file"):
        tables.read_csv(tmp_path, TYPES)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: empty file"):
        tables.read_csv(tmp_path / "empty.csv", TYPES)
    with pytest.raises(DataError, match=r"no such file or directory"):
        validate.existing(tmp_path / "nope")


def test_read_strings_keeps_text(tmp_path):
    t = tables.read_strings(_csv(tmp_path, "id , target\n007,1\n,0\n"))
    assert t.column_names == ["id", "target"]
    assert t.column("id").to_pylist() == ["007", ""]


def test_duplicate_ids_name_the_id_and_rows():
    with pytest.raises(DataError) as e:
        validate.unique_ids(np.array(["a", "b", "c", "b", "b"]), "f.csv")
    assert str(e.value) == "f.csv, row 4: duplicate id 'b' in rows 2, 4, 5"
    with pytest.raises(DataError, match=r"f\.csv, object 7: duplicate object_id 7 in rows 11, 13"):
        validate.unique_ids(np.array([7, 9, 7]), "f.csv", what="object_id", rows=[11, 12, 13],
                            where="object {id}")
    validate.unique_ids(np.array(["a", "b"]), "f.csv")


def test_labels_and_finite_values():
    mapping = {1: 0, 2: 1}
    assert validate.class_indices([2.0, 1.0, 2.0], mapping, "f.csv", column="LABEL").tolist() == [1, 0, 1]
    with pytest.raises(DataError, match=r"f\.csv, row 2: unknown LABEL 3: expected 1 or 2"):
        validate.class_indices([2.0, 3.0], mapping, "f.csv", column="LABEL", expected="1 or 2")
    with pytest.raises(DataError, match=r"f\.csv, row 1: missing LABEL"):
        validate.class_indices([np.nan], mapping, "f.csv", column="LABEL")
    with pytest.raises(DataError, match=r"f\.csv, row 3: missing or non-finite flux"):
        validate.finite(np.array([[1.0, 2.0], [0.0, 1.0], [np.inf, 0.0]]), "f.csv", what="flux")
