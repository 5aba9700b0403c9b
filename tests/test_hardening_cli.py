"""Issue 13 hardening through the real CLI: what the log holds when clients misbehave."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import requests

from service.observability.clientlog import BURST
from tests.live import live_server

BAD_REQUESTS = 200


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


def test_client_errors_log_one_line_each_and_are_rate_limited(tmp_path: Path) -> None:
    with live_server("-insecure", cwd=tmp_path) as server:
        before = len(server.stderr())
        for i in range(BAD_REQUESTS):
            answer = send_raw(
                server.port,
                f"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header {i}: y\r\n\r\n".encode(),
            )
            assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n")
        # The server still answers, and logged each refusal as one line, at most BURST of them.
        assert requests.get(f"{server.url}/health", timeout=30).status_code == 200
        log = server.stderr()[before:]
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "Error handling request" in line]
    assert 1 <= len(lines) <= BURST
    assert "Invalid header token" in lines[0]
    assert len(log) < 300 * BURST


def read_until_closed(conn: socket.socket) -> bytes:
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def read_response(conn: socket.socket) -> tuple[bytes, bytes]:
    """One response's head and body (by its Content-Length), without waiting for the close."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "closed in the middle of a response body"
        body += chunk
    return head, body


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_slow_header_is_answered_408_and_closed(tmp_path: Path) -> None:
    with live_server("-insecure", "-header-timeout", "0.5", cwd=tmp_path) as server:
        for partial in (b"", b"GET /health HTTP/1.1\r\nHo"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=60) as conn:
                conn.sendall(partial)
                answer = read_until_closed(conn)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert json.loads(body) == {
                "error": "Request header not received within 0.5 s (-header-timeout)"
            }
        # A connection that sends its header in time is answered as usual, and kept alive.
        with requests.Session() as session:
            for _ in range(3):
                assert session.get(f"{server.url}/health", timeout=30).status_code == 200


def test_a_slow_json_body_is_answered_408(tmp_path: Path) -> None:
    with live_server("-insecure", "-body-timeout", "0.5", cwd=tmp_path) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as conn:
            conn.sendall(
                b"POST /configure/source/memory/m HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            head, body = read_response(conn)
        assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert json.loads(body) == {
            "error": "Request body not received within 0.5 s (-body-timeout)"
        }


def test_connection_cap_keeps_health_answering_under_a_slow_header_flood(
    tmp_path: Path,
) -> None:
    cap, flood = 20, 120
    with live_server("-insecure", "-max-connections", str(cap), cwd=tmp_path) as server:
        baseline = open_fds(server.process.pid)
        conns = []
        try:
            for _ in range(flood):
                conn = socket.create_connection(("127.0.0.1", server.port), timeout=60)
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                conns.append(conn)
            for _ in range(5):
                response = requests.get(f"{server.url}/health", timeout=30)
                assert response.status_code == 200
            # The server holds at most the cap of them, whatever the flood.
            assert open_fds(server.process.pid) <= baseline + cap + 2
            # The oldest half-sent connections were closed by the server to make room.
            closed = 0
            for conn in conns[: flood - cap]:
                conn.settimeout(30)
                try:
                    closed += read_until_closed(conn) == b""
                except ConnectionResetError:  # aborted: the server never answered it
                    closed += 1
            assert closed == flood - cap
        finally:
            for conn in conns:
                conn.close()
