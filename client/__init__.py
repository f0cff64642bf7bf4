"""Talk to a Hooklab server over HTTP: the Python client and the pytest plugin."""

from hooklab.client.http import Client, HooklabError

__all__ = ["Client", "HooklabError"]
