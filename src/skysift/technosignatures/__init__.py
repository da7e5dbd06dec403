"""SETI Breakthrough Listen cadence snippets: narrow-band drifting signals in ON scans only."""
