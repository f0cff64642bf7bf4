"""A webhook receiver for the delivery benchmark: answers every POST after a fixed delay.

One asyncio loop in a process of its own, so it costs little CPU, keeps connections alive and
answers many senders at once without borrowing their GIL. For each POST it records the time of
arrival (CLOCK_MONOTONIC, one clock for the whole machine), the webhook headers and the body;
`GET /records` returns them as JSON and `DELETE /records` forgets them.

Usage: python bench/receiver.py PORT DELAY_MS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

RECORDED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "x-hooklab-attempt")
MAX_BODY = 1024 * 1024


def _answer(status: str, body: bytes, content_type: str = "text/plain") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Receiver:
    """The records of one run."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.records: list[dict] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.clock_gettime(time.CLOCK_MONOTONIC)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = min(int(headers.get("content-length", "0") or 0), MAX_BODY)
                body = await reader.readexactly(length) if length else b""
                if method == "POST":
                    self.records.append(
                        {
                            "at": arrived,
                            "headers": {k: headers.get(k) for k in RECORDED_HEADERS},
                            "body": body.decode("utf-8", "replace"),
                        }
                    )
                    await asyncio.sleep(self.delay_s)
                    writer.write(_answer("200 OK", b"ok"))
                elif method == "GET" and target == "/records":
                    data = json.dumps(self.records).encode()
                    writer.write(_answer("200 OK", data, "application/json"))
                elif method == "DELETE" and target == "/records":
                    self.records = []
                    writer.write(_answer("200 OK", b"cleared"))
                else:
                    writer.write(_answer("200 OK", b"receiver"))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


async def serve(port: int, delay_ms: float) -> None:
    """Serve on 127.0.0.1:`port` until killed."""
    receiver = Receiver(delay_ms / 1000)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2])))
