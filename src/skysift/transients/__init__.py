"""``transients``: PLAsTiCC / LSST multi-band light curves — 14 classes, or something new (class 99)."""
