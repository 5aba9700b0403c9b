"""The CLI's auth options: what is a usage error, the environment, the no-auth warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from service.auth.options import warn_if_open
from service.commandline.parser import settings_from_args
from service.settings import Settings


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        settings_from_args(list(argv))
    assert exit_.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-auth", "basic"], "-auth must be none or token"),
        (["-auth", "token", "-token-ttl", "25h"], "tokens must expire within 24h"),
        (["-auth", "token", "-token-ttl", "86401"], "tokens must expire within 24h"),
        (["-registration", "open"], "-registration open needs -auth token"),
        (["-auth", "token", "-registration", "maybe"], "-registration must be open or closed"),
        (["-auth", "token", "-jwks", "keys.json"], "-jwks needs -auth token and -jwks-issuer"),
        (["-rule", "model/(oops"], "is not a regular expression"),
        (["-rules", "no-such-file"], "cannot read -rules no-such-file"),
        (["-token-ttl", "soon"], "invalid Duration value"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert message in usage_error(capsys, *argv)


def test_rules_come_from_options_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "rules"
    rules.write_text("# a comment\nmodel/a/predict\n")
    monkeypatch.setenv("DFFML_SERVICE_HTTP_RULES", "source/b/.*; health/-/-")
    settings = settings_from_args(["-rule", "x/y/z", "-rules", str(rules)])
    assert settings.rule == ("x/y/z", "model/a/predict", "source/b/.*", "health/-/-")


def test_secret_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DFFML_SERVICE_HTTP_SECRET_KEY", "k" * 32)
    settings = settings_from_args(["-auth", "token", "-token-ttl", "8h"])
    assert settings.secret_key == b"k" * 32
    assert settings.token_ttl == 8 * 3600
    assert "kkkk" not in repr(settings)
    monkeypatch.setenv("DFFML_SERVICE_HTTP_SECRET_KEY", "k" * 31)
    assert "at least 32" in usage_error(capsys, "-auth", "token")


@pytest.mark.parametrize(
    ("addr", "auth", "warned"),
    [
        ("0.0.0.0", "none", True),
        ("192.0.2.7", "none", True),
        ("example.org", "none", True),
        ("127.0.0.1", "none", False),
        ("::1", "none", False),
        ("localhost", "none", False),
        ("0.0.0.0", "token", False),
    ],
)
def test_loud_warning_without_auth_off_loopback(
    caplog: pytest.LogCaptureFixture, addr: str, auth: str, warned: bool
) -> None:
    with caplog.at_level(logging.WARNING, logger="service"):
        warn_if_open(Settings(addr=addr, auth=auth))
    assert ("NO AUTHENTICATION" in caplog.text) is warned
