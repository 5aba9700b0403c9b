"""Two servers on two ports sharing one PostgreSQL state store behave as one service.

Black-box through the real CLI: users made with ``createuser -state postgresql://…`` log in on
either host, a logout on one is refused by the other, a label configured on one is served by
the other after its restart (docs/scaling.md says why a restart), a pipeline made on one is run
on the other and its run is read back on the first. Both hosts use one upload dir, the shared
storage the docs ask for, and one -token-key-file.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from tests import live
from tests.live import LiveServer, live_server, run_cli
from tests.postgres import PASSWORD, PostgresServer, postgres

__all__ = ["postgres"]

PASSWORDS = {"admin": "admin-password-1", "bob": "bob-password-1"}
SPLIT = {"module": "ds", "function": "split", "options": {"ratio": 0.75}}


def create_user(command: str, name: str, state: str, cwd: Path) -> None:
    result = live.create_user(name, PASSWORDS[name], cwd, "-state", state, command=command)
    assert result.returncode == 0, result.stderr
    assert "***" in result.stdout  # it names the store, never its password
    assert "s3cret" not in result.stdout


class As:
    """One user's session on one host."""

    def __init__(self, server: LiveServer, name: str, token: str | None = None) -> None:
        self.url = server.url
        if token is None:
            answer = requests.post(
                f"{self.url}/auth/login",
                json={"username": name, "password": PASSWORDS[name]},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            token = str(answer.json()["access_token"])
        self.token = token

    def on(self, server: LiveServer) -> As:
        """The same token, sent to another host."""
        return As(server, "", self.token)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


def until(check: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@contextlib.contextmanager
def host(state: str, cwd: Path, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    with live_server(
        *("-insecure", "-upload-dir", "data", "-state", state, "-auth", "token"),
        *("-token-key-file", "shared.jwt-key"),
        cwd=cwd,
        env=env,
    ) as server:
        yield server


def test_two_hosts_on_one_postgresql_store_act_as_one(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    state = postgres.new_database()
    (tmp_path / "data").mkdir()
    create_user("createsuperuser", "admin", state, tmp_path)
    create_user("createuser", "bob", state, tmp_path)
    with host(state, tmp_path) as one, host(state, tmp_path) as two:
        # A user made with the CLI logs in on both; a token of one host works on the other.
        bob_one, bob_two = As(one, "bob"), As(two, "bob")
        assert bob_two("GET", "/labels").status_code == 200
        assert bob_one.on(two)("GET", "/labels").status_code == 200
        # Logged out on one: refused by the other, within the refresh interval.
        assert bob_one("POST", "/auth/logout").json() == {"error": None}
        elsewhere = bob_one.on(two)
        refused = until(
            lambda: (answer := elsewhere("GET", "/labels")).status_code == 401 and [answer],
            "the other host still admits a token logged out on the first",
        )[0]
        assert refused.json() == {"error": "Invalid or expired token"}
        assert bob_two("GET", "/labels").status_code == 200  # bob's other session is his own
        # createtoken on the shared store signs with the hosts' shared key.
        made = run_cli(
            *("createtoken", "-username", "bob", "-state", state),
            *("-token-key-file", "shared.jwt-key"),
            cwd=tmp_path,
        )
        assert made.returncode == 0, made.stderr
        assert As(two, "", made.stdout.strip())("GET", "/labels").status_code == 200

        # Labels configured on one host: a file in the shared upload dir, a module.
        admin = As(one, "admin")
        rows = "".join(f"{i},{i % 3}\n" for i in range(20))
        upload = admin(
            "POST", "/service/upload/iris.csv", files={"file": ("iris.csv", "x,y\n" + rows)}
        )
        assert upload.status_code == 200, upload.text
        for path in ("/configure/module/dataset/ds", "/configure/source/csv/iris"):
            body = {} if "module" in path else {"filename": "iris.csv"}
            assert admin("POST", path, json=body).status_code == 200
        assert admin("GET", "/context/module/ds/ds").status_code == 200
        assert admin("GET", "/context/source/iris/iris").status_code == 200
        two.stop()
    # The second host's password as libpq reads it, out of the process list.
    without_password = state.replace(f":{PASSWORD}@", "@")
    with (
        host(state, tmp_path) as one,
        host(without_password, tmp_path, {"PGPASSWORD": PASSWORD}) as two,
    ):
        # Restarted: each host restores what either configured.
        admin_two = As(two, "admin")
        labels = admin_two("GET", "/labels").json()
        assert labels["module"]["ds"]["contexts"] == ["ds"]
        assert labels["source"]["iris"]["config"] == {"filename": "iris.csv"}
        assert admin_two("GET", "/source/iris/record/7").json()["features"] == {"x": 7, "y": 1}

        # A pipeline made on one host is run through the other; the run is read on the first.
        admin_one = As(one, "admin")
        made = admin_one("POST", "/pipelines", json={"name": "prepare", "tasks": [SPLIT]})
        assert made.status_code == 201, made.text
        pipeline = made.json()
        assert admin_two("GET", f"/pipelines/{pipeline['id']}").json() == pipeline
        started = admin_two(
            "POST", "/runs", json={"pipeline": pipeline["id"], "files": ["iris.csv"]}
        )
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        run = until(
            lambda: (
                (got := admin_one("GET", f"/runs/{run_id}").json())["status"]
                in ("FINISHED", "FAILED")
                and got
            ),
            "the run never finished",
            seconds=60,
        )
        assert run["status"] == "FINISHED", run
        assert admin_one("GET", "/pipelines").json()["total"] == 1
        # Deleted on one: gone on the other at once (pipelines are read from the store).
        assert admin_one("DELETE", f"/pipelines/{pipeline['id']}").status_code == 200
        assert admin_two("GET", f"/pipelines/{pipeline['id']}").status_code == 404
        # The bob token logged out before the restart stays refused on both.
        for server in (one, two):
            assert elsewhere.on(server)("GET", "/labels").status_code == 401


def test_a_postgresql_state_the_server_cannot_use_stops_it_at_start(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """Refused at start (exit 2), the password never shown: a wrong password, and -auth token
    with no signing key every host could share."""
    wrong = postgres.url("postgres", password="not-the-password")
    result = run_cli("server", "-insecure", "-port", "0", "-state", wrong, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "-state: cannot connect to postgresql://dffml:***@127.0.0.1" in result.stderr
    assert "not-the-password" not in result.stderr
    state = postgres.new_database()
    result = run_cli(
        *("server", "-insecure", "-port", "0", "-state", state, "-auth", "token"), cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert "give every host the same -token-key-file FILE" in result.stderr
    assert "s3cret" not in result.stderr


def test_while_postgresql_is_unreachable_requests_answer_503_then_recover(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """The database refuses connections and drops the server's: what needs the store answers
    503 (never a 500, nothing hangs); once it is back, the server reconnects by itself."""
    import psycopg

    state = postgres.new_database()
    name = state.rsplit("/", 1)[1]
    (tmp_path / "data").mkdir()
    with (
        live_server(*("-insecure", "-upload-dir", "data", "-state", state), cwd=tmp_path) as server,
        psycopg.connect(postgres.url(), autocommit=True) as admin,
    ):
        url = f"{server.url}/pipelines"
        assert requests.get(url, timeout=30).json()["total"] == 0
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        answer = requests.get(url, timeout=60)
        assert (answer.status_code, answer.json()) == (
            503,
            {"error": "State store unavailable: try again later"},
        )
        assert requests.get(f"{server.url}/health", timeout=30).status_code == 200
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        assert requests.get(url, timeout=30).json()["total"] == 0
        assert "Traceback" not in server.stderr()
