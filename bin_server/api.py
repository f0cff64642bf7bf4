"""The bin's JSON API (see ../shared/design.md, "Bin (capture side)")."""

from flask import Blueprint

bp = Blueprint("bin_api", __name__)
