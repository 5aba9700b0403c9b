#!/usr/bin/env python3
"""A pipeline with requests: upload a CSV, chain split → describe, run it, follow its events.

    dffml-service-http server -insecure -upload-dir ./data &
    python examples/python/pipeline.py --url http://127.0.0.1:8080

The run's progress arrives as server-sent events (GET /runs/{id}/events) rather than by
polling; the script prints each job as its status changes and, at the end, where its outputs
are (ordinary upload-dir files, under outputs/run-<id>/job-<n>/). With --json it prints the
finished run as JSON instead. Needs only requests (pip install requests).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

DEFAULT_CSV = Path(__file__).resolve().parents[1] / "data" / "salaries.csv"


class ServiceError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Client:
    def __init__(self, url: str, verify: bool | str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.verify = verify

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(
            method, self.url + path, verify=self.verify, timeout=60, **kwargs
        )
        return _checked(response).json()

    def events(self, run_id: str) -> Iterator[tuple[str, Any]]:
        """(event, data) from the run's event stream until the server closes it."""
        with self.session.get(
            f"{self.url}/runs/{run_id}/events", stream=True, verify=self.verify, timeout=60
        ) as response:
            _checked(response)
            event: str | None = None
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: ") and event is not None:
                    yield event, json.loads(line[len("data: ") :])
                    event = None


def _checked(response: requests.Response) -> requests.Response:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.reason
        raise ServiceError(str(message), response.status_code)
    return response


def run(client: Client, csv: Path, echo: bool) -> dict[str, Any]:
    with csv.open("rb") as file:
        client.request("POST", f"/service/upload/{csv.name}", files={"file": file})
    client.request("POST", "/configure/module/dataset/ds", json={})
    client.request("GET", "/context/module/ds/ds")
    pipeline = client.request(
        "POST",
        "/pipelines",
        json={
            "name": "prepare",
            "tasks": [
                {"module": "ds", "function": "split", "options": {"ratio": 0.8, "seed": 1}},
                {"module": "ds", "function": "describe", "options": {}},
            ],
        },
    )
    started = client.request(
        "POST", "/runs", json={"pipeline": pipeline["id"], "files": [csv.name]}
    )
    final = started
    for event, data in client.events(started["id"]):
        if event == "job" and echo:
            print(f"job {data['task']} {data['function']}: {data['status']}", flush=True)
        elif event == "log" and echo:
            print(f"  {data['line']}", flush=True)
        elif event == "status":
            final = data
    return final  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--cacert", help="CA certificate to trust (the server's server.pem)")
    parser.add_argument("--json", action="store_true", help="print the finished run as JSON")
    args = parser.parse_args(argv)
    client = Client(args.url, args.cacert or True)
    try:
        final = run(client, args.csv, echo=not args.json)
    except ServiceError as exc:
        print(f"error: {exc} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(final, indent=1))
    else:
        print(f"run {final['id']}: {final['status']}")
        for job in final["jobs"]:
            files = ", ".join(f["filename"] for f in job["output_files"]) or job["error"]
            print(f"  job {job['task']} {job['function']} on {job['ran_on']}: {files}")
    return 0 if final["status"] == "FINISHED" else 1


if __name__ == "__main__":
    sys.exit(main())
