"""The package version (one place; the core reads it without importing the package's API)."""
__version__ = "0.1.0"
