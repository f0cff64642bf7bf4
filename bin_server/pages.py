"""The bin's pages: home (create a bin, the list of bins) and the inspector of one bin.

The pages render what is cheap to render on the server (the list of bins, a bin's settings);
captured requests reach the inspector through the JSON API and the websocket, in
static/inspector.js, which puts them into the page as text only.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from hooklab.bin_server import bins as bin_store
from hooklab.bin_server.api import base_url as api_base_url
from hooklab.bin_server.bins import bin_stats, bin_to_json, get_bin_row, looks_like_bin_id
from hooklab.shared.context import get_store
from hooklab.shared.params import shown

bp = Blueprint("bin_pages", __name__)

# The home page lists this many bins a page, newest first (`?page=2` for the next ones).
HOME_PAGE_SIZE = 100
MAX_PAGE_DIGITS = 9


def base_url() -> str:
    """The base of capture URLs, as the API shows them (public_url, else this request's host)."""
    return api_base_url().rstrip("/")


@bp.app_context_processor
def _layout_values() -> dict:
    # Every page (the webhooks pages too) shows the server's address in the top bar.
    return {"server_address": base_url()}


def page_number() -> int:
    """The `page` of the home page's list (1 when absent), or a 400 page naming it."""
    text = request.args.get("page", "").strip()
    if not text:
        return 1
    if text.isascii() and text.isdigit() and len(text) <= MAX_PAGE_DIGITS and int(text) >= 1:
        return int(text)
    abort(400, description="page must be a whole number from 1 (the newest bins are page 1).")


@bp.get("/")
def home():
    """Create a bin in one click, the list of bins (a page at a time), and a ready curl line."""
    store = get_store()
    page = page_number()
    total = bin_store.count_bins(store)
    pages = max(1, -(-total // HOME_PAGE_SIZE))
    first = (page - 1) * HOME_PAGE_SIZE
    bins = bin_store.list_bins(store, base_url(), HOME_PAGE_SIZE, first) if page <= pages else []
    newest = bins[0] if page == 1 and bins else None
    return render_template(
        "home.html",
        bins=bins,
        newest=newest,
        total=total,
        page=page,
        pages=pages,
        first=first + 1,
        last=first + len(bins),
    )


@bp.get("/bins/<bin_id>")
def inspector(bin_id: str):
    """The inspector of one bin: its settings and its captured requests, live."""
    store = get_store()
    row = get_bin_row(store, bin_id) if looks_like_bin_id(bin_id) else None
    if row is None:
        named = f"“{bin_id}”" if looks_like_bin_id(bin_id) else shown(bin_id)
        abort(404, description=f"There is no bin with id {named}. It may have been deleted.")
    count, last = bin_stats(store, [bin_id])[bin_id]
    bin_json = bin_to_json(row, base_url(), (count, last))
    headers_text = "\n".join(f"{name}: {value}" for name, value in bin_json["response"]["headers"])
    return render_template("inspector.html", bin=bin_json, headers_text=headers_text)
