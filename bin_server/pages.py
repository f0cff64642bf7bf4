"""The bin's pages: home and inspector."""

from flask import Blueprint

bp = Blueprint("bin_pages", __name__)
