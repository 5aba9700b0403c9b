"""The real command line: options, preloads, usage errors and signals."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from service import cli
from service.commandline.parser import settings_from_args
from service.settings import Preload, Redirect, Settings
from tests.docs_pages import reference
from tests.live import live_server, run_cli


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def has_both_spellings(help_text: str, flag: str) -> bool:
    """argparse lists an option as ``-flag METAVAR, --flag METAVAR``."""
    return re.search(rf" {flag}( [^ ,]+)*, -{flag}\b", help_text) is not None


def test_help_lists_every_option_with_its_default(tmp_path: Path) -> None:
    result = run_cli("server", "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = collapse(result.stdout)
    for f in dataclasses.fields(Settings):
        if "help" not in f.metadata:
            continue
        flag = "-" + f.name.replace("_", "-")
        assert has_both_spellings(text, flag), flag
        assert collapse(f.metadata["help"]) + " (default: " in text, flag
    for flag in ("-sources", "-models", "-scorers", "-config", "-redirect"):
        assert has_both_spellings(text, flag), flag
    helped = [f for f in dataclasses.fields(Settings) if "help" in f.metadata]
    assert text.count("(default: ") >= len(helped) + 5
    assert "(default: 8080)" in text
    assert "(default: 127.0.0.1)" in text
    assert "(default: server.pem)" in text
    assert "-source-LABEL-FIELD" in text


def test_createtls_help_shows_defaults(tmp_path: Path) -> None:
    result = run_cli("createtls", "client", "--help", cwd=tmp_path)
    assert result.returncode == 0
    text = collapse(result.stdout)
    for default in ("2048", "365", "client.key", "client.pem", "server.key", "server.pem"):
        assert f"(default: {default})" in text


def test_single_and_double_dash_spellings_agree() -> None:
    single = settings_from_args(
        ["-port", "0", "-insecure", "-cors-domains", "http://a", "-sources", "s=memory"]
    )
    double = settings_from_args(
        ["--port", "0", "--insecure", "--cors-domains", "http://a", "--sources", "s=memory"]
    )
    assert single == double
    assert single.port == 0
    assert single.insecure
    assert single.cors_domains == ("http://a",)


def test_repeated_options_accumulate() -> None:
    settings = settings_from_args(
        [
            *("-sources", "a=memory", "b=memory", "-sources", "c=memory"),
            *("-redirect", "GET", "/a", "/b", "post", "/c", "/d", "-redirect", "GET", "/e", "/f"),
            *("-cors-domains", "http://x", "-cors-domains", "http://y"),
        ]
    )
    assert [p.label for p in settings.preloads] == ["a", "b", "c"]
    assert settings.redirects == (
        Redirect("GET", "/a", "/b"),
        Redirect("POST", "/c", "/d"),
        Redirect("GET", "/e", "/f"),
    )
    assert settings.cors_domains == ("http://x", "http://y")


def test_per_label_options_go_to_their_label() -> None:
    settings = settings_from_args(
        [
            *("-sources", "a=memory", "a-b=memory"),
            *("-source-a-records", "{}", "-source-a-b-records", '{"k": {}}'),
            *("--source-a-b-mode", "-1", "2"),
        ]
    )
    assert settings.preloads == (
        Preload("source", "a", "memory", {"records": ["{}"]}, from_cli=True),
        Preload(
            "source",
            "a-b",
            "memory",
            {"records": ['{"k": {}}'], "mode": ["-1", "2"]},
            from_cli=True,
        ),
    )


def test_multiple_sources_and_per_label_options_load(tmp_path: Path) -> None:
    records = json.dumps({"ann": {"features": {"Years": 3}}})
    with live_server(
        *("-insecure", "-sources", "a=memory", "b=memory", "-source-a-records", records),
        cwd=tmp_path,
    ) as server:
        for label in ("a", "b"):
            # Each preload got a context of its own label: releasing it works once.
            response = requests.delete(f"{server.url}/context/source/{label}", timeout=10)
            assert (response.status_code, response.json()) == (200, {"error": None}), label
            response = requests.get(f"{server.url}/context/source/{label}/again", timeout=10)
            assert response.status_code == 200, label
        response = requests.get(f"{server.url}/context/source/c/x", timeout=10)
        assert (response.status_code, response.json()) == (404, {"error": "c source not found"})


def test_portfile_names_the_port_once_listening(tmp_path: Path) -> None:
    with live_server("--insecure", cwd=tmp_path) as server:
        assert server.port > 0
        assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


def journals(ext_plugin_path: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(ext_plugin_path)}


def test_config_file_preloads_and_the_command_line_wins(
    ext_plugin_path: Path, tmp_path: Path
) -> None:
    (tmp_path / "preload.yaml").write_text(
        "sources:\n"
        "  a: {plugin: journal, config: {journal: a-yaml.log, greeting: from-yaml}}\n"
        "  b: {plugin: journal, config: {journal: b.log, greeting: yaml-only}}\n"
        "  c: memory\n"
    )
    with live_server(
        *("-insecure", "-config", "preload.yaml", "-sources", "a=journal"),
        *("-source-a-journal", "a-cli.log", "-source-a-greeting", "from-cli"),
        cwd=tmp_path,
        env=journals(ext_plugin_path),
    ) as server:
        assert (
            tmp_path / "a-cli.log"
        ).read_text() == "open source from-cli\nopen context from-cli\n"
        assert not (tmp_path / "a-yaml.log").exists()
        assert (tmp_path / "b.log").read_text() == "open source yaml-only\nopen context yaml-only\n"
        response = requests.delete(f"{server.url}/context/source/c", timeout=10)
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["-redirect", "GET", "/a"], {}, "-redirect takes METHOD SRC DST triples"),
        (["-redirect", "GET", "/health", "/x"], {}, "already answered"),
        (["-redirect", "GET", "nowhere", "/x"], {}, "SRC must start with /"),
        (["-js", "-redirect", "GET", "/api.js", "/x"], {}, "already answered"),
        (["-redirect", "GET", "/r", "/x", "-redirect", "get", "/r", "/y"], {}, "already answered"),
        (["-redirect", "GET", "/a/{x:[}", "/x"], {}, "-redirect GET /a/{x:[}: Bad pattern"),
        (["-sources", "nolabel"], {}, "-sources takes LABEL=PLUGIN, got 'nolabel'"),
        (["-models", "=slr"], {}, "-models takes LABEL=PLUGIN"),
        (["-sources", "a=memory", "a=memory"], {}, "label 'a' given twice"),
        (["-source-x-records", "{}"], {}, "-source-x-records: no -sources LABEL=PLUGIN"),
        (
            ["-sources", "a=memory", "-source-a-records", "{}", "--source-a-records", "{}"],
            {},
            "-source-a-records given twice",
        ),
        (["-sources", "a=memory", "-model-a-x", "1"], {}, "-model-a-x: no -models"),
        (["-config", "bad.yaml"], {"bad.yaml": "sources: [1\n"}, "is not valid YAML"),
        (["-config", "none.yaml"], {}, "cannot read -config none.yaml"),
        (["-config", "list.yaml"], {"list.yaml": "- 1\n"}, "mapping at the top level"),
        (["-config", "w.yaml"], {"w.yaml": "widgets: {}\n"}, "unknown section 'widgets'"),
        (["-config", "p.yaml"], {"p.yaml": "sources: {a: {config: {}}}\n"}, "'plugin: NAME'"),
        (["-config", "b.yaml"], {"b.yaml": b"\xff\xfe"}, "not UTF-8"),
        (["-sources", "a=nope"], {}, "preload failed: source nope not found"),
        (
            ["-config", "u.yaml"],
            {"u.yaml": "models: {m: {plugin: nope}}\n"},
            "preload failed: model nope not found",
        ),
        (
            ["-sources", "a=memory", "-source-a-records", "[1]"],
            {},
            "MemorySource 'records' of source.a must be object",
        ),
        (
            ["-sources", "a=memory", "-source-a-bogus", "1"],
            {},
            "MemorySource has no config field 'bogus' in source.a",
        ),
        (["-ca", "server.pem"], {}, "-ca requires HTTPS"),
        (["-port", "70000"], {}, "-port must be between 0 and 65535"),
        (["-iterkey-ttl", "0"], {}, "-iterkey-ttl must be a positive number of seconds"),
        (["-iterkey-ttl", "nan"], {}, "-iterkey-ttl must be a positive number of seconds"),
        (["-iterkey-max", "0"], {}, "-iterkey-max must be at least 1"),
        (
            ["-sources", "s=csv", "-source-s-filename", "people.csv", "-source-s-key", "id"],
            {"people.csv": "name,years\nann,3\n"},
            "CSVSource key column 'id' is not in people.csv (columns: name, years)",
        ),
        (["-port", "x"], {}, "invalid int value: 'x'"),
        (["-max-body-size", "0"], {}, "-max-body-size must be at least 1 byte"),
        (["-max-batch-time", "-1"], {}, "-max-batch-time must be 0 or a positive number"),
        (["-max-batch-size", "-1"], {}, "-max-batch-size must be 0 or more"),
        (["-keep-versions", "-1"], {}, "-keep-versions must be 0 or more"),
        (["-max-batch-size", "64", "-max-batch-queue", "8"], {}, "at least -max-batch-size"),
        (["-addr", "192.0.2.1"], {}, "cannot listen on 192.0.2.1:0"),  # not a local address
        (["-log", "LOUD"], {}, "-log: unknown level 'LOUD'"),
        (["-static", "missing"], {}, "-static missing: not a directory"),
        (["-portfile", "no/port"], {}, "-portfile no/port: no is not a directory"),
        (["-nonsense"], {}, "unrecognized arguments: -nonsense"),
    ],
)
def test_bad_usage_exits_2_with_one_clear_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    args: list[str],
    files: dict[str, str | bytes],
    message: str,
) -> None:
    """In-process through cli.main (a process each adds nothing but seconds); the black-box
    cases below show the same through the real command."""
    write_files(tmp_path, files)
    status, _, stderr = main_in_process(
        ["server", "-insecure", "-port", "0", *args], tmp_path, monkeypatch, capfd
    )
    assert status == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert message in lines[0]


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (["-nonsense"], {}, "unrecognized arguments: -nonsense"),
        (["-config", "b.yaml"], {"b.yaml": b"\xff\xfe"}, "not UTF-8"),
        (["-sources", "a=nope"], {}, "preload failed: source nope not found"),
    ],
)
def test_bad_usage_of_the_real_command_exits_2_with_one_clear_line(
    tmp_path: Path, args: list[str], files: dict[str, str | bytes], message: str
) -> None:
    write_files(tmp_path, files)
    result = run_cli("server", "-insecure", "-port", "0", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def write_files(where: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = where / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def main_in_process(
    argv: list[str],
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> tuple[int, str, str]:
    """``dffml-service-http ARGV`` through :func:`service.cli.main` in this process, in
    ``cwd``: its exit status, stdout and stderr. The logging it configures is undone after."""
    monkeypatch.chdir(cwd)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code if isinstance(exc.code, int) else 2
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                handler.flush()
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
    out, err = capfd.readouterr()
    return status, out, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_close_every_plugin_and_context_and_exit_0(
    ext_plugin_path: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    upload_dir = tmp_path / "data"
    with live_server(
        *("-insecure", "-upload-dir", str(upload_dir)),
        *("-sources", "pre=journal", "-source-pre-journal", "pre.log"),
        cwd=tmp_path,
        env=journals(ext_plugin_path),
    ) as server:
        for label in ("one", "two"):
            response = requests.post(
                f"{server.url}/configure/source/journal/{label}",
                json={"journal": f"{label}.log", "greeting": label},
                timeout=10,
            )
            assert response.status_code == 200
        for ctx in ("c1", "c2"):
            assert requests.get(f"{server.url}/context/source/one/{ctx}", timeout=10).ok
        assert server.stop(signum) == 0
    assert (tmp_path / "pre.log").read_text() == (
        "open source hello\nopen context hello\nclose context hello\nclose source hello\n"
    )
    assert (upload_dir / "one.log").read_text() == (
        "open source one\nopen context one\nopen context one\n"
        "close context one\nclose context one\nclose source one\n"
    )
    assert (upload_dir / "two.log").read_text() == "open source two\nclose source two\n"
    assert "failed" not in server.stderr().replace("failed to load", "")


def test_unusable_upload_dir_is_one_clean_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = run_cli("server", "-insecure", "-port", "0", "-upload-dir", "a-file/sub", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dffml-service-http: error: cannot create -upload-dir a-file/sub: ")


def test_port_in_use_is_a_clean_error(tmp_path: Path) -> None:
    with live_server("-insecure", cwd=tmp_path) as server:
        result = run_cli("server", "-insecure", "-port", str(server.port), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{server.port}" in lines[0]


def test_a_plugin_bug_at_preload_exits_1_with_the_traceback_logged(
    ext_plugin_path: Path, tmp_path: Path
) -> None:
    result = run_cli(
        *("server", "-insecure", "-port", "0", "-sources", "c=crashing"),
        *("-source-c-journal", "c.log"),
        cwd=tmp_path,
        env=journals(ext_plugin_path),
    )
    assert result.returncode == 1
    assert "RuntimeError: journal plugin bug" in result.stderr  # the traceback, in the log
    last = result.stderr.strip().splitlines()[-1]
    assert last == "dffml-service-http: error: preload failed: RuntimeError: journal plugin bug"


def test_every_option_is_documented_on_the_cli_page() -> None:
    # docs/cli.md, or the page of the capability that adds the option (docs/cli.md links it).
    readme = reference("cli.md")
    for f in dataclasses.fields(Settings):
        if "help" in f.metadata:
            assert f"`-{f.name.replace('_', '-')}" in readme, f.name
    for flag in ("-sources", "-models", "-scorers", "-config", "-redirect", "-source-L-FIELD"):
        assert f"`{flag}" in readme, flag
    for flag in ("-force", "-cn", "-bits", "-days", "-server-key", "-server-cert", "-csr"):
        assert f"`{flag}" in readme, flag


def test_a_signal_while_preloading_still_closes_everything(
    ext_plugin_path: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "slow.log"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "service", "server", "-insecure", "-port", "0"),
            *("-sources", "slow=journal", "-source-slow-journal", str(journal)),
            *("-source-slow-open-seconds", "2"),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **journals(ext_plugin_path)},
    )
    try:
        deadline = time.monotonic() + 30
        while not (journal.exists() and journal.read_text()):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)  # while the source is still opening
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert journal.read_text() == (
        "open source hello\nopen context hello\nclose context hello\nclose source hello\n"
    )
