#!/usr/bin/env python3
"""The salary example with requests: upload a CSV, page through it, train, score, predict.

    dffml-service-http server -insecure -upload-dir ./data &
    python examples/python/salaries.py --url http://127.0.0.1:8080

Against an HTTPS server (the default without -insecure), either trust its certificate or,
for a throwaway test setup only, skip verification:

    dffml-service-http createtls server && dffml-service-http server -upload-dir ./data &
    python examples/python/salaries.py --url https://127.0.0.1:8080 --cacert server.pem
    python examples/python/salaries.py --url https://127.0.0.1:8080 --insecure

Against a server run with -auth token, give a token (dffml-service-http createtoken) or log in
(the password from $DFFML_PASSWORD, else a prompt):

    python examples/python/salaries.py --token "$(dffml-service-http createtoken -username bob)"
    DFFML_PASSWORD=... python examples/python/salaries.py --username bob

Needs only requests (pip install requests).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

DEFAULT_CSV = Path(__file__).resolve().parents[1] / "data" / "salaries.csv"
FEATURE, TARGET = "Years", "Salary"


class ServiceError(Exception):
    """An error answer from the server: its ``error`` string and the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Client:
    def __init__(self, url: str, verify: bool | str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        # Given with each request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
        self.verify = verify

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(
            method, self.url + path, verify=self.verify, timeout=60, **kwargs
        )
        if response.status_code >= 400:
            try:
                message = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code} {response.reason}"
            raise ServiceError(message, response.status_code)
        return response.json()

    def login(self, username: str, password: str) -> None:
        """Log in; every later request carries the access token."""
        body = self.request(
            "POST", "/auth/login", json={"username": username, "password": password}
        )
        self.use_token(body["access_token"])

    def use_token(self, token: str) -> None:
        self.session.headers["Authorization"] = f"Bearer {token}"

    def upload(self, name: str, path: Path) -> None:
        with path.open("rb") as file:
            self.request("POST", f"/service/upload/{name}", files={"file": (name, file)})

    def configure(self, kind: str, plugin: str, label: str, config: dict[str, Any]) -> None:
        self.request("POST", f"/configure/{kind}/{plugin}/{label}", json=config)
        self.request("GET", f"/context/{kind}/{label}/{label}")

    def train_async(self, model: str, sources: list[str]) -> str:
        """Start a training as a task (docs/tasks.md): its id, at once."""
        accepted = self.request("POST", f"/model/{model}/train?async=1", json=sources)
        task_id: str = accepted["task_id"]
        return task_id

    def task(self, task_id: str) -> dict[str, Any]:
        task: dict[str, Any] = self.request("GET", f"/task/{task_id}")
        return task

    def wait_task(
        self,
        task_id: str,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        poll: float = 0.5,
    ) -> dict[str, Any]:
        """The task once it has finished (check its "status"), following its Server-Sent
        Events; polling every ``poll`` seconds if the stream breaks."""
        try:
            with self.session.get(
                f"{self.url}/task/{task_id}/events", verify=self.verify, stream=True, timeout=60
            ) as response:
                if response.status_code >= 400:
                    self.request("GET", f"/task/{task_id}")  # raises with the server's error
                event = None
                for line in response.iter_lines(decode_unicode=True):
                    if line.startswith("event: "):
                        event = line[len("event: ") :]
                    elif line.startswith("data: ") and event == "progress" and on_progress:
                        on_progress(json.loads(line[len("data: ") :]))
        except requests.exceptions.RequestException:
            pass  # a proxy or network blip: poll instead
        while True:
            task = self.task(task_id)
            if task["status"] in ("SUCCESS", "FAILURE", "CANCELLED"):
                return task
            time.sleep(poll)

    def records(self, source: str, chunk_size: int) -> tuple[list[dict[str, Any]], int]:
        """Every record of ``source``, following iterkeys; and how many pages that took."""
        page = self.request("GET", f"/source/{source}/records/{chunk_size}")
        records, pages = list(page["records"].values()), 1
        while page["iterkey"] is not None:
            iterkey = quote(page["iterkey"], safe="")
            page = self.request("GET", f"/source/{source}/records/{iterkey}/{chunk_size}")
            records.extend(page["records"].values())
            pages += 1
        return records, pages


def run(client: Client, csv: Path, chunk_size: int = 5) -> dict[str, Any]:
    print(f"- upload {csv.name}", file=sys.stderr)
    client.upload("salaries.csv", csv)

    print("- configure the csv source 'salaries'", file=sys.stderr)
    client.configure("source", "csv", "salaries", {"filename": "salaries.csv"})
    records, pages = client.records("salaries", chunk_size)

    print("- configure the model 'salary_model' (slr) and train it", file=sys.stderr)
    client.configure(
        "model",
        "slr",
        "salary_model",
        {
            "features": [f"{FEATURE}:int:1"],
            "predict": f"{TARGET}:int:1",
            "location": "salary_model",
        },
    )
    # Trained as a task: the request answers at once and progress arrives as it happens.
    task_id = client.train_async("salary_model", ["salaries"])
    trained = client.wait_task(
        task_id, on_progress=lambda p: print(f"  {p['message']}", file=sys.stderr)
    )
    if trained["status"] != "SUCCESS":
        raise ServiceError(f"training {trained['status']}: {trained['error']}", 500)

    print("- score with mean squared error", file=sys.stderr)
    client.configure("scorer", "mse", "mse", {})
    mse = client.request("POST", "/scorer/mse/salary_model/score", json=["salaries"])["accuracy"]

    print("- predict every record from its Years", file=sys.stderr)
    inputs = {r["key"]: {"features": {FEATURE: r["features"][FEATURE]}} for r in records}
    predicted = client.request("POST", "/model/salary_model/predict/0", json=inputs)["records"]
    predictions = [
        {
            "key": r["key"],
            "years": r["features"][FEATURE],
            "actual": r["features"][TARGET],
            "predicted": predicted[r["key"]]["prediction"][TARGET]["value"],
            "confidence": predicted[r["key"]]["prediction"][TARGET]["confidence"],
        }
        for r in records
    ]
    return {
        "records": len(records),
        "pages": pages,
        "trained": trained["status"],
        "mse": mse,
        "predictions": predictions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the server")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="a Years,Salary CSV")
    parser.add_argument("--chunk-size", type=int, default=5, help="records per page")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--cacert", type=Path, help="trust the server certificate in this PEM file")
    tls.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", help="an access token (server run with -auth token)")
    auth.add_argument(
        "--username", help="log in as this user (password: $DFFML_PASSWORD, else a prompt)"
    )
    args = parser.parse_args(argv)

    verify: bool | str = True
    if args.cacert is not None:
        verify = str(args.cacert)
    elif args.insecure:
        verify = False
        print("warning: not verifying the server certificate (--insecure)", file=sys.stderr)
        # Said once above; requests would otherwise repeat it for every request.
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")

    try:
        client = Client(args.url, verify)
        if args.token is not None:
            client.use_token(args.token)
        elif args.username is not None:
            password = os.environ.get("DFFML_PASSWORD") or getpass.getpass("Password: ")
            client.login(args.username, password)
        result = run(client, args.csv, args.chunk_size)
    except ServiceError as exc:
        print(f"error: {exc} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except requests.exceptions.SSLError as exc:
        print(f"error: TLS: {exc} (use --cacert server.pem or --insecure)", file=sys.stderr)
        return 1
    except requests.exceptions.ConnectionError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['records']} records in {result['pages']} pages")
    print(f"mean squared error: {result['mse']:.3f}")
    print("Years  Salary  predicted")
    for p in result["predictions"]:
        print(f"{p['years']:>5}  {p['actual']:>6}  {p['predicted']:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
