"""The websocket extension, shared by both halves (`sock.init_app(app)` in the factory)."""

from flask_sock import Sock

sock = Sock()
