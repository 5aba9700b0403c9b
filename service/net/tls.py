"""TLS: the server's SSL context, and ``createtls`` to make keys and certificates.

``createtls server`` writes a self-signed certificate for 127.0.0.1/localhost that can also sign
client certificates; ``createtls client`` writes a client certificate signed by the server key,
so a server started with ``-ca server.pem`` accepts it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class TLSSetupError(Exception):
    """The server cannot set up TLS; the message says what to do instead."""


def server_context(cert: Path, key: Path, ca: Path | None) -> ssl.SSLContext:
    missing = [str(p) for p in (cert, key) if not p.is_file()]
    if missing:
        raise TLSSetupError(
            f"TLS certificate or key not found ({', '.join(missing)}): create them with "
            "`dffml-service-http createtls server`, or pass -insecure to serve plain HTTP"
        )
    # A server-side context authenticates clients (Purpose.CLIENT_AUTH); the original used
    # SERVER_AUTH, which fails on Python >= 3.10.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key, password=_refuse_passphrase)
    except _EncryptedKey:
        raise TLSSetupError(
            f"TLS key {key} is encrypted and the server does not prompt for passphrases: "
            "give it an unencrypted key (as `dffml-service-http createtls server` writes)"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise TLSSetupError(
            f"cannot load TLS certificate {cert} with key {key}: "
            + _reason(exc, "not a PEM certificate and matching key")
        ) from None
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError) as exc:
            raise TLSSetupError(
                f"cannot load -ca {ca}: {_reason(exc, 'not a PEM certificate')}"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _EncryptedKey(Exception):
    pass


def _refuse_passphrase() -> str:
    # Without a callback OpenSSL would prompt on the terminal and block a headless start.
    raise _EncryptedKey


def _reason(exc: ssl.SSLError | OSError, unexplained: str) -> str:
    """What went wrong, without OpenSSL's source locations (``unexplained`` if it has none)."""
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or unexplained
        return reason.replace("_", " ").lower() if reason.isupper() else reason
    return exc.strerror or str(exc)


def _new_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _write_pair(
    cert_path: Path,
    key_path: Path,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    *,
    force: bool,
    csr: tuple[Path, x509.CertificateSigningRequest] | None = None,
) -> None:
    """Write key (mode 0600 from the first byte), certificate and CSR, each atomically.

    Existing files are kept unless ``force``: a second ``createtls server`` would otherwise
    silently replace a key that clients already trust.
    """
    public_files = [(cert_path, cert.public_bytes(serialization.Encoding.PEM))]
    if csr is not None:
        public_files.append((csr[0], csr[1].public_bytes(serialization.Encoding.PEM)))
    paths = [key_path, *(path for path, _ in public_files)]
    if not force:
        existing = [str(p) for p in paths if p.exists()]
        if existing:
            verb = "exists" if len(existing) == 1 else "exist"
            raise TLSSetupError(f"{' and '.join(existing)} already {verb}: pass -force to replace")
    for path in paths:
        if not path.parent.is_dir():
            raise TLSSetupError(f"cannot write {path}: {path.parent} is not a directory")
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for path, data, mode in (
        (key_path, key_bytes, 0o600),
        *((path, data, 0o644) for path, data in public_files),
    ):
        try:
            _write_atomically(path, data, mode=mode)
        except OSError as exc:
            raise TLSSetupError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _subject(common_name: str) -> x509.Name:
    try:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    except ValueError as exc:
        raise TLSSetupError(f"-cn {common_name!r}: {exc}") from None


# A DNS name (a wildcard allowed) fit for subjectAltName; other common names stay out of it.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


def _check_sizes(bits: int, days: int) -> None:
    if bits < 2048:
        raise TLSSetupError(f"-bits {bits}: RSA keys must have at least 2048 bits")
    if days < 1:
        raise TLSSetupError(f"-days {days}: must be at least 1")


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)


def create_server(
    cert: Path, key: Path, *, common_name: str, bits: int, days: int, force: bool = False
) -> None:
    _check_sizes(bits, days)
    private = _new_key(bits)
    name = _subject(common_name)
    alt_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    try:
        ip = ipaddress.ip_address(common_name)
        if str(ip) != "127.0.0.1":
            alt_names.append(x509.IPAddress(ip))
    except ValueError:
        if common_name != "localhost" and _HOSTNAME.match(common_name):
            alt_names.append(x509.DNSName(common_name))
    not_before, not_after = _validity(days)
    public = private.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            # The certificate also issues client certificates (-ca server.pem); OpenSSL checks
            # a CA's extended key usage against the chain's purpose, so it must allow both.
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(private, hashes.SHA256())
    )
    _write_pair(cert, key, private, certificate, force=force)


def create_client(
    cert: Path,
    key: Path,
    *,
    server_cert: Path,
    server_key: Path,
    common_name: str,
    bits: int,
    days: int,
    force: bool = False,
    csr: Path | None = None,
) -> None:
    """A client key and certificate signed by the server key; with ``csr`` also the
    certificate signing request for that key (as the original wrote), for a CA of one's own."""
    _check_sizes(bits, days)
    try:
        issuer_cert = x509.load_pem_x509_certificate(server_cert.read_bytes())
        loaded = serialization.load_pem_private_key(server_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise TLSSetupError(
            f"cannot read the server certificate and key (run `createtls server` first): {exc}"
        ) from None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TLSSetupError("the server key is not an RSA key")
    private = _new_key(bits)
    public = private.public_key()
    not_before, not_after = _validity(days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_subject(common_name))
        .issuer_name(issuer_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(loaded.public_key()),
            critical=False,
        )
        .sign(loaded, hashes.SHA256())
    )
    request = None
    if csr is not None:
        signing_request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(_subject(common_name))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(private, hashes.SHA256())
        )
        request = (csr, signing_request)
    _write_pair(cert, key, private, certificate, force=force, csr=request)
