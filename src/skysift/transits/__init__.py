"""The ``transits`` task: does this star host a transiting planet? (Kepler/TESS flux series)."""
