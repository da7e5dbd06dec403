"""The shared core: data containers, splits, imbalance tools, training, metrics, bundles."""
