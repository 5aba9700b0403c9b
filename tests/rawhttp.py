"""Requests with bytes a client library refuses to send: raw HTTP/1.1 over a socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any


async def raw_request(
    port: int, method: str, path: bytes, headers: list[bytes], body: bytes = b""
) -> tuple[int, Any]:
    """(status, the JSON body or None) of one request sent as these bytes to 127.0.0.1."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [
            method.encode() + b" " + path + b" HTTP/1.1",
            b"Host: 127.0.0.1",
            b"Connection: close",
            b"Content-Length: " + str(len(body)).encode(),
            *headers,
        ]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    status = int(status_line.split()[1])
    payload = rest.partition(b"\r\n\r\n")[2]
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, None
