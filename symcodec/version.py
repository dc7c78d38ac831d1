"""The package version (one place; setup.py and the CLI read it)."""
__version__ = "0.3.0"
