"""The pytest plugin: a `hooklab` fixture (being written)."""
