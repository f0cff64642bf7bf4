"""Code both halves of Hooklab use: settings, store, signing, app factory, CLI."""

__version__ = "0.1.0"
