"""The ``galaxies`` task: Galaxy Zoo morphology from colour cutouts (see ``task.py``)."""
