"""Read and validate PLAsTiCC light curves + metadata: the names callers import, gathered.

The layouts and how a path is resolved to files are in :mod:`skysift.transients.layouts`; table
reading, metadata and targets in :mod:`skysift.transients.metadata`.
"""
from __future__ import annotations

from pathlib import Path

from ..core import readers
from ..core.data import TaskData
from .layouts import (
    _catalogue_schema,
    _fmt,
    _is_catalogue,
    _is_parquet,
    _is_table_file,
    _layout,
    _strip_suffixes,
    is_shard,
    is_streamable,
    labels_for_model,
    load_catalogue,
    metadata_candidates,
    resolve,
)
from .metadata import (
    ALIASES,
    OBS_COLUMNS,
    SENTINEL,
    TEST_ONLY_TARGETS,
    Metadata,
    _arrow_type,
    _column_map,
    _where,
    assemble,
    encode_targets,
    find_bad_value,
    observation_arrays,
    read_header,
    read_metadata,
    read_table,
    sort_observations,
)

#: the names callers import from here
__all__ = ["_catalogue_schema", "_fmt", "_is_catalogue", "_is_parquet", "_is_table_file",
           "_layout", "_strip_suffixes", "is_shard", "is_streamable", "labels_for_model",
           "load_catalogue", "metadata_candidates", "resolve", "ALIASES", "OBS_COLUMNS",
           "SENTINEL", "TEST_ONLY_TARGETS", "Metadata", "_arrow_type", "_column_map", "_where",
           "assemble", "encode_targets", "find_bad_value", "observation_arrays", "read_header",
           "read_metadata", "read_table", "sort_observations", "load"]


def load(path: str | Path, *, labelled: bool | None = None, format: str | None = None, **options) -> TaskData:
    """Read + validate PLAsTiCC light curves and metadata (see :mod:`skysift.transients.layouts`);
    ``metadata=`` names the metadata file, ``allow_unknown=True`` admits the test-only class 99."""
    return readers.read("transients", path, format=format, labelled=labelled, **options)
