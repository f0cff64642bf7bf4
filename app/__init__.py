"""The composition root: the app factory, the common routes, and the one way to run a server."""
