"""TLS through the real CLI: createtls, HTTPS by default, mutual TLS with -ca, refusal to start."""

from __future__ import annotations

import shutil
import socket
import ssl
import stat
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.live import LiveServer, live_server, run_cli


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding what `createtls server` and `createtls client` write."""
    directory = tmp_path_factory.mktemp("certs")
    for role in ("server", "client"):
        result = run_cli("createtls", role, cwd=directory)
        assert result.returncode == 0, result.stderr
        assert f"{role}.key" in result.stdout
    return directory


@pytest.fixture(scope="module")
def https_server(certs: Path) -> Iterator[LiveServer]:
    with live_server(cwd=certs, scheme="https") as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(certs: Path) -> Iterator[LiveServer]:
    with live_server("-ca", "server.pem", cwd=certs, scheme="https") as server:
        yield server


def verifying_context(certs: Path, *, client_cert: bool = False) -> ssl.SSLContext:
    """What a careful client builds: trust only server.pem, strict X.509 checks."""
    context = ssl.create_default_context(cafile=certs / "server.pem")
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if client_cert:
        context.load_cert_chain(certs / "client.pem", certs / "client.key")
    return context


def handshake(port: int, context: ssl.SSLContext) -> str:
    """Complete a TLS handshake and one request; the negotiated protocol version."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        reply = tls.recv(4096)
        # With TLS 1.3 a server that rejects the client's certificate does so after the
        # client's side of the handshake has completed: the client sees the connection close.
        if not reply:
            raise ConnectionError("the server closed the connection")
        assert reply.startswith(b"HTTP/1.1 200")
        version = tls.version()
        assert version is not None
        return version


def test_createtls_writes_private_keys_and_a_client_cert_signed_by_the_server(
    certs: Path,
) -> None:
    for name in ("server.key", "client.key"):
        assert stat.S_IMODE((certs / name).stat().st_mode) == 0o600
    server = x509.load_pem_x509_certificate((certs / "server.pem").read_bytes())
    client = x509.load_pem_x509_certificate((certs / "client.pem").read_bytes())
    client.verify_directly_issued_by(server)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_createtls_client_without_server_files_fails_cleanly(tmp_path: Path) -> None:
    result = run_cli("createtls", "client", cwd=tmp_path)
    assert result.returncode == 2
    assert "createtls server" in result.stderr
    assert "Traceback" not in result.stderr


def test_https_by_default_verifies_with_the_generated_ca(
    https_server: LiveServer, certs: Path
) -> None:
    response = requests.get(f"{https_server.url}/health", verify=certs / "server.pem", timeout=10)
    assert (response.status_code, response.json()["status"]) == (200, "ok")
    assert handshake(https_server.port, verifying_context(certs)) in {"TLSv1.2", "TLSv1.3"}
    # The system trust store does not know the self-signed certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{https_server.url}/health", timeout=10)


async def test_aiohttp_client_with_the_generated_ca(https_server: LiveServer, certs: Path) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{https_server.url}/list/sources", ssl=verifying_context(certs)) as response,
    ):
        assert response.status == 200
        assert "memory" in await response.json()


def test_tls_below_1_2_is_refused(https_server: LiveServer, certs: Path) -> None:
    context = verifying_context(certs)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(https_server.port, context) == "TLSv1.2"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    # Let this client offer TLS 1.1 at all (OpenSSL's default security level forbids it).
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are deprecated: the point
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(https_server.port, old)


def test_plain_http_to_the_https_port_fails(https_server: LiveServer) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{https_server.port}/health", timeout=10)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_cacert(https_server: LiveServer, certs: Path) -> None:
    ok = subprocess.run(
        ["curl", "-sS", "--cacert", "server.pem", f"{https_server.url}/health"],
        cwd=certs,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert '"status":"ok"' in ok.stdout
    untrusted = subprocess.run(
        ["curl", "-sS", f"{https_server.url}/health"],
        cwd=certs,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert untrusted.returncode != 0


def test_mutual_tls_requires_a_client_certificate(mtls_server: LiveServer, certs: Path) -> None:
    assert handshake(mtls_server.port, verifying_context(certs, client_cert=True))
    response = requests.get(
        f"{mtls_server.url}/health",
        verify=certs / "server.pem",
        cert=(str(certs / "client.pem"), str(certs / "client.key")),
        timeout=10,
    )
    assert response.status_code == 200
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(mtls_server.port, verifying_context(certs))
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(f"{mtls_server.url}/health", verify=certs / "server.pem", timeout=10)


def test_mutual_tls_refuses_a_certificate_from_another_ca(
    mtls_server: LiveServer, certs: Path, tmp_path: Path
) -> None:
    for role in ("server", "client"):
        assert run_cli("createtls", role, cwd=tmp_path).returncode == 0
    stranger = verifying_context(certs)
    stranger.load_cert_chain(tmp_path / "client.pem", tmp_path / "client.key")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(mtls_server.port, stranger)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_mutual_tls(mtls_server: LiveServer, certs: Path) -> None:
    base = ["curl", "-sS", "--cacert", "server.pem"]
    with_cert = [*base, "--cert", "client.pem", "--key", "client.key"]
    ok = subprocess.run(
        [*with_cert, f"{mtls_server.url}/health"],
        cwd=certs,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert '"status":"ok"' in ok.stdout
    refused = subprocess.run(
        [*base, f"{mtls_server.url}/health"],
        cwd=certs,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode != 0


def test_without_certificates_the_server_refuses_to_start(tmp_path: Path) -> None:
    result = run_cli("server", "-port", "0", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "-insecure" in lines[0]
    assert "createtls" in lines[0]


def test_unreadable_certificate_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "server.pem").write_text("not a certificate")
    (tmp_path / "server.key").write_text("not a key")
    result = run_cli("server", "-port", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dffml-service-http: error: cannot load TLS certificate server.pem with key server.key: "
        "not a PEM certificate and matching key"
    ]


def test_tls_file_problems_are_one_clean_line(certs: Path, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key((certs / "server.key").read_bytes(), password=None)
    (tmp_path / "encrypted.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    (tmp_path / "junk.pem").write_text("junk")
    server_pem, client_key = str(certs / "server.pem"), str(certs / "client.key")
    for args, message in (
        # No passphrase prompt that would block a headless start: a clear refusal instead.
        (["-cert", server_pem, "-key", "encrypted.key"], "TLS key encrypted.key is encrypted"),
        (["-cert", server_pem, "-key", client_key], "key values mismatch"),
        (
            ["-cert", server_pem, "-key", str(certs / "server.key"), "-ca", "junk.pem"],
            "-ca junk.pem",
        ),
    ):
        result = run_cli("server", "-port", "0", *args, cwd=tmp_path)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert message in lines[0]


def test_createtls_keeps_existing_files_unless_forced(tmp_path: Path) -> None:
    assert run_cli("createtls", "server", cwd=tmp_path).returncode == 0
    first = (tmp_path / "server.key").read_bytes()
    again = run_cli("createtls", "server", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "dffml-service-http: error: server.key and server.pem already exist: pass -force to replace"
    )
    assert (tmp_path / "server.key").read_bytes() == first
    (tmp_path / "server.key").chmod(0o644)
    assert run_cli("createtls", "server", "-force", cwd=tmp_path).returncode == 0
    assert (tmp_path / "server.key").read_bytes() != first
    assert stat.S_IMODE((tmp_path / "server.key").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.key", "server.pem"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-bits", "512"], "-bits 512: RSA keys must have at least 2048 bits"),
        (["-days", "0"], "-days 0: must be at least 1"),
        (["-cn", ""], "-cn '': "),
        (["-cert", "nodir/x.pem"], "cannot write nodir/x.pem: nodir is not a directory"),
        (["-bits", "many"], "invalid int value: 'many'"),
    ],
)
def test_createtls_bad_options_are_one_clean_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli("createtls", "server", *args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_createtls_server_cn_becomes_a_verifiable_host_name(tmp_path: Path) -> None:
    assert run_cli("createtls", "server", "-cn", "service.test", cwd=tmp_path).returncode == 0
    with live_server(cwd=tmp_path, scheme="https") as server:
        context = verifying_context(tmp_path)
        for host in ("service.test", "localhost", "127.0.0.1"):
            with (
                socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname=host) as tls,
            ):
                assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        with (
            pytest.raises(ssl.SSLCertVerificationError),
            socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="other.test"),
        ):
            pass
