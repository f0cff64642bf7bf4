"""The websocket live stream of a bin, fed from the store.

The stream reads the store, not an in-memory queue: it works whichever process captured the
request. Captures in this process wake it at once (the Notifier); otherwise it re-reads the
store every POLL_S seconds.

All the subscribers of one bin share a `BinFeed`: the new rows are read and turned into frames
once, so ten open inspector tabs cost one query and one JSON encoding per capture, not ten.

A subscriber that has every frame its feed has is handed to the process's `Pusher`: one thread
that wakes on each capture, reads the new rows and writes their frames to every such socket
without waiting (`try_send`), where each subscriber's thread used to wake, take the feed's lock
and write its own copy (a third of the server's time with ten subscribers, and the tail of the
frames' latency). The subscriber's thread sleeps meanwhile. It takes its stream back when the
pusher cannot write a frame whole (a slow reader: the rest waits on its socket, and that one
reader, not the others, waits for it), when it falls further behind than the feed keeps, when
the bin is cleared or deleted, when the server stops, or when the client leaves.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque

from flask import Blueprint, Flask, current_app, request

from hooklab.bin_server.bins import get_bin_row, looks_like_bin_id
from hooklab.bin_server.captured import SUMMARY_COLUMNS, summary
from hooklab.bin_server.holds import busy_message, thread_holds
from hooklab.shared.context import get_notifier, get_settings, get_stopping, get_store
from hooklab.shared.store import MAX_ROW_ID, Store, rows
from hooklab.shared.websocket import Sent, sock, text_frame, whole_frames

log = logging.getLogger(__name__)
bp = Blueprint("bin_live", __name__)
POLL_S = 1.0
BATCH = 200
CLOSE_WAIT_S = 2.0

NEWER = (
    f"SELECT {SUMMARY_COLUMNS} FROM captured_requests "  # noqa: S608 - constant column list
    "WHERE bin_id = ? AND id > ? ORDER BY id LIMIT ?"
)


def requests_after(store: Store, bin_id: str, after: int, limit: int = BATCH) -> list[dict]:
    """Stored rows of a bin's captured requests with id > after, oldest first."""
    return rows(store.conn, NEWER, (bin_id, after, limit))


def newest_id(store: Store, bin_id: str) -> int:
    """The id of the newest captured request of a bin (0 when it has none)."""
    found = store.conn.execute(
        "SELECT max(id) FROM captured_requests WHERE bin_id = ?", (bin_id,)
    ).fetchone()
    return found[0] or 0


class Subscriber:
    """One open live stream: its socket, and the id of the newest request sent to it."""

    def __init__(self, ws, after: int, cleared_at) -> None:
        self.ws = ws
        self.after = after
        self.cleared_at = cleared_at  # the bin's, as this stream last told its client
        self.pushed = False  # the pusher writes its frames; its own thread sleeps
        self.wake = threading.Event()  # set when the pusher hands the stream back


class BinFeed:
    """The newest frames of one bin, read from the store once for all of its subscribers.

    Every captured request with `floor < id <= high` is in `frames`, oldest first; a subscriber
    whose cursor is below `floor` (a replay from further back) reads the store on its own.
    """

    KEEP = 2 * BATCH

    def __init__(self, bin_id: str, base_url: str, trust_host: bool) -> None:
        self.bin_id = bin_id
        self.base_url = base_url
        self.trust_host = trust_host
        self.lock = threading.Lock()
        self.frames: deque[tuple[int, str]] = deque(maxlen=self.KEEP)
        self.floor = self.high = 0
        self.bin_row: dict | None = None
        self.read_version = -1  # the notifier's version when the store was last read in full
        self.read_at = 0.0
        self.subscribers = 0
        self.pushed: set[Subscriber] = set()  # guarded by `lock`

    def frame(self, row: dict) -> str:
        """One captured request as a text frame."""
        request_json = summary(row, self.base_url, self.trust_host)
        return json.dumps({"type": "request", "request": request_json})

    def poll(self, store: Store, after: int, seen: int) -> tuple[dict | None, list]:
        """The bin's row (None once deleted) and the frames of requests with id > after."""
        with self.lock:
            self._refresh(store, seen)
            bin_row, frames = self.bin_row, self._frames_after(after)
            if bin_row is None or frames is not None:
                return bin_row, (frames or [])[:BATCH]
        # Further back than the shared frames reach: this subscriber replays on its own.
        replay = requests_after(store, self.bin_id, after)
        return bin_row, [(row["id"], self.frame(row)) for row in replay]

    def hand_to_pusher(self, sub: Subscriber) -> bool:
        """Let the pusher write `sub`'s next frames, if it has every frame the feed has."""
        with self.lock:
            if (
                not sub.ws.sock.can_try
                or self.bin_row is None
                or self.bin_row["cleared_at"] != sub.cleared_at
                or sub.after != self.high
            ):
                return False
            sub.wake.clear()
            sub.pushed = True
            self.pushed.add(sub)
            return True

    def take_back(self, sub: Subscriber) -> None:
        """`sub`'s own thread writes its frames again (and is woken to)."""
        with self.lock:
            self._hand_back(sub)

    def _hand_back(self, sub: Subscriber) -> None:
        self.pushed.discard(sub)
        sub.pushed = False
        sub.wake.set()

    def push(self, store: Store, seen: int, stopping: bool) -> None:
        """Write the new frames to every pushed subscriber without waiting.

        Hands back those the pusher cannot serve: a socket that took a frame only in part, or
        none of it (a slow reader, a write under way, a closed socket); the bin cleared or gone;
        a subscriber further behind than the feed keeps; the server stopping. All under the
        feed's lock, so a subscriber's thread taking its stream back (`take_back`) finds its
        cursor past every frame written for it: no frame twice, none lost.
        """
        with self.lock:
            if not self.pushed:
                return
            self._refresh(store, seen)
            bin_row = self.bin_row
            encoded: dict[int, bytes] = {}  # every subscriber is sent the same bytes
            for sub in list(self.pushed):
                frames = self._frames_after(sub.after)
                if (
                    stopping
                    or bin_row is None
                    or bin_row["cleared_at"] != sub.cleared_at
                    or frames is None
                ):
                    self._hand_back(sub)
                    continue
                if not frames:
                    continue
                data = b"".join(
                    encoded.get(request_id) or encoded.setdefault(request_id, text_frame(frame))
                    for request_id, frame in frames
                )
                sent = sub.ws.sock.try_send(data)
                if sent is not Sent.NOTHING:
                    sub.after = frames[-1][0]
                if sent is not Sent.WHOLE:
                    self._hand_back(sub)

    def _frames_after(self, after: int) -> list | None:
        """The frames with id > after, oldest first; None when some are no longer kept."""
        found = []
        for frame in reversed(self.frames):
            if frame[0] <= after:
                break
            found.append(frame)
        else:
            if after < self.floor:
                return None
        found.reverse()
        return found

    def _refresh(self, store: Store, seen: int) -> None:
        """Read the store unless the feed has what the notifier's version `seen` announced and
        is younger than POLL_S (captures of other processes ring no bell here)."""
        if self.read_version < seen or time.monotonic() - self.read_at >= POLL_S:
            self._read(store, seen)

    def _read(self, store: Store, seen: int) -> None:
        bin_row = get_bin_row(store, self.bin_id)
        before = self.bin_row
        if before is None or bin_row is None or bin_row["cleared_at"] != before["cleared_at"]:
            # First read, or the bin was cleared or deleted: start from the newest id stored.
            # Never from a subscriber's cursor: it is theirs, and may lie past every id.
            self.frames.clear()
            self.floor = self.high = max(self.high, newest_id(store, self.bin_id))
        self.bin_row = bin_row
        self.read_at = time.monotonic()
        if bin_row is None:
            return
        new = requests_after(store, self.bin_id, self.high)
        for row in new:
            if len(self.frames) == self.KEEP:
                self.floor = self.frames[0][0]
            self.frames.append((row["id"], self.frame(row)))
            self.high = row["id"]
        if len(new) < BATCH:  # else there is more: the next poll reads on
            self.read_version = seen


class Feeds:
    """The feeds of the bins that have subscribers in this process, and their pusher."""

    def __init__(self, store: Store, notifier, stopping: threading.Event) -> None:
        self._lock = threading.Lock()
        self._feeds: dict[tuple[str, str, bool], BinFeed] = {}
        self.pusher = Pusher(self, store, notifier, stopping)

    def pushing(self) -> list[BinFeed]:
        """The feeds with subscribers handed to the pusher."""
        with self._lock:
            return [feed for feed in self._feeds.values() if feed.pushed]

    def join(self, bin_id: str, base_url: str, trust_host: bool) -> BinFeed:
        """The shared feed of a bin, for one more subscriber."""
        key = (bin_id, base_url, trust_host)
        with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                feed = self._feeds[key] = BinFeed(bin_id, base_url, trust_host)
            feed.subscribers += 1
            return feed

    def leave(self, feed: BinFeed) -> None:
        """One subscriber less; the last one to leave drops the feed."""
        with self._lock:
            feed.subscribers -= 1
            if feed.subscribers == 0:
                self._feeds.pop((feed.bin_id, feed.base_url, feed.trust_host), None)


class Pusher:
    """One thread that writes new frames to every subscriber handed to it (see the module).

    It runs while some subscriber is handed to it and ends when none is, so an app whose live
    pages are all closed keeps no thread for them.
    """

    def __init__(self, feeds: Feeds, store: Store, notifier, stopping: threading.Event) -> None:
        self.feeds = feeds
        self.store = store
        self.notifier = notifier
        self.stopping = stopping
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        """Start the thread unless it runs (call after handing a subscriber to a feed)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hooklab-live-pusher", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                seen = self.notifier.version
                feeds = self.feeds.pushing()
                if not feeds:
                    with self._lock:  # a subscriber handed over now starts a new thread
                        if not self.feeds.pushing():
                            self._thread = None
                            return
                behind = [self._push(feed, seen) for feed in feeds]
                if not any(behind):
                    self.notifier.wait(seen, POLL_S)
        except Exception:
            log.exception("the live pusher failed: each live stream writes its own frames again")
            with self._lock:
                self._thread = None
            for feed in self.feeds.pushing():
                for sub in list(feed.pushed):
                    feed.take_back(sub)

    def _push(self, feed: BinFeed, seen: int) -> bool:
        """Write the feed's new frames to its pushed subscribers; True if it has more to read."""
        feed.push(self.store, seen, self.stopping.is_set())
        return feed.read_version < seen  # more than one batch of new rows: read on at once


def _after_param() -> int | None:
    """The `after` cursor, or None unless it is a whole number a row id can be (0 to 2^63-1)."""
    raw = request.args.get("after", "0").strip() or "0"
    if len(raw) > 20 or not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= MAX_ROW_ID else None


def _error(ws, code: str, message: str, close_code: int = 1008) -> None:
    ws.send(json.dumps({"type": "error", "error": {"code": code, "message": message}}))
    _close(ws, reason=close_code, message=message[:100])


def _close(ws, **reason) -> None:
    ws.close(**reason)
    # Wait for the client's answer to the close before the server drops the socket: closing
    # with its bytes unread makes the kernel reset the connection, and a reset can discard the
    # last frames before the client has read them.
    ws.thread.join(CLOSE_WAIT_S)


@sock.route("/ws/bins/<bin_id>", bp=bp)
def stream_bin(ws, bin_id: str) -> None:
    """Send every request with id > after, then new ones as they arrive, until either side stops."""
    from simple_websocket import ConnectionClosed  # imported with the socket's first use

    app = current_app._get_current_object()
    store, settings = get_store(app), get_settings(app)
    # Our frames and simple-websocket's pings, never interleaved; a reader that takes nothing
    # for as long as a client may take to send a request is cut off.
    whole_frames(ws, settings.client_timeout_s)
    notifier = get_notifier(app)
    stopping = get_stopping(app)
    feeds = store.attached("live_feeds", lambda: Feeds(store, notifier, stopping))
    base_url = settings.public_url or request.host_url
    trust_host = not settings.public_url

    after = _after_param()
    if after is None:
        _error(
            ws,
            "bad_request",
            f"after must be a whole number from 0 to {MAX_ROW_ID} (a captured request id).",
        )
        return
    bin_row = get_bin_row(store, bin_id) if looks_like_bin_id(bin_id) else None
    if bin_row is None:
        _error(ws, "bin_not_found", f"No bin with id {bin_id!r}.")
        return
    holds = thread_holds(store, settings)
    if not holds.enter():  # this socket would hold a thread the captures it shows need
        # 1013: try again later.
        _error(ws, "too_many_waiting", busy_message(holds, "this live connection"), 1013)
        return
    feed = feeds.join(bin_id, base_url, trust_host)
    sub = Subscriber(ws, after, bin_row["cleared_at"])
    try:
        while ws.connected:
            if sub.pushed:
                sub.wake.wait(POLL_S)
                if sub.pushed and ws.connected and not stopping.is_set():
                    continue  # the pusher still writes its frames
                feed.take_back(sub)
            ws.sock.flush()  # what the pusher could not write goes out first
            seen = notifier.version
            bin_row, frames = feed.poll(store, sub.after, seen)
            if bin_row is None:
                ws.send(json.dumps({"type": "bin_deleted"}))
                _close(ws)
                return
            if bin_row["cleared_at"] != sub.cleared_at:
                sub.cleared_at = bin_row["cleared_at"]
                ws.send(json.dumps({"type": "cleared"}))
            for request_id, frame in frames:
                ws.send(frame)
                sub.after = request_id
            if len(frames) == BATCH:
                continue  # more to replay: no waiting
            if stopping.is_set():  # the server is stopping: 1001, going away (the page retries)
                _close(ws, reason=1001, message="the server is stopping")
                return
            if feed.hand_to_pusher(sub):
                feeds.pusher.ensure_running()
                continue
            notifier.wait(seen, POLL_S)
    except (ConnectionClosed, OSError):  # gone, or cut off for taking nothing (whole_frames)
        return
    finally:
        feed.take_back(sub)
        feeds.leave(feed)
        holds.leave()


def init_app(app: Flask) -> None:
    """Register the live stream route."""
    app.register_blueprint(bp)
