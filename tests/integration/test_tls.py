"""The server's TLS policy and the CLI's trust checks, against the real `worker serve`."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.conftest import CA, Server, start_server, stop_server
from worker.resources import DEMO_CERT, DEMO_KEY, demo_file

DEMO_CERT_FILE = demo_file(DEMO_CERT)
DEMO_KEY_FILE = demo_file(DEMO_KEY)
PERMISSIVE = "ALL:@SECLEVEL=0"
# The controls deliberately use the deprecated old protocol versions.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


@dataclass
class Handshake:
    version: str | None
    cipher: str
    compression: str | None


def handshake(port: int, context: ssl.SSLContext, hostname: str = "127.0.0.1") -> Handshake:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        cipher = tls.cipher()
        return Handshake(tls.version(), cipher[0] if cipher else "", tls.compression())


def trusting(ca_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca_file))
    return context


def offering(version: ssl.TLSVersion, ciphers: str = PERMISSIVE) -> ssl.SSLContext:
    """A client that offers exactly one protocol version and the given suites."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_ciphers(ciphers)
    return context


def control_or_skip(client: ssl.SSLContext, cert: Path, key: Path) -> Handshake:
    """Handshake ``client`` with a permissive in-process server (TLS 1.0 up, any suite).

    Proves that this client can succeed at all, so a refusal by the worker is the
    worker's doing. Skips if even this fails (an OpenSSL built without the old parts).
    """
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1
    server.set_ciphers(PERMISSIVE)
    server.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def accept_one() -> None:
            with contextlib.suppress(OSError):  # ssl.SSLError included
                conn, _ = listener.accept()
                conn.settimeout(10)
                server.wrap_socket(conn, server_side=True).close()

        thread = threading.Thread(target=accept_one, daemon=True)
        thread.start()
        try:
            return handshake(listener.getsockname()[1], client)
        except ssl.SSLError as exc:
            pytest.skip(f"control failed: this Python/OpenSSL cannot negotiate it at all: {exc}")
        finally:
            thread.join(15)


def write_leaf(leaf: trustme.LeafCert, stem: Path) -> tuple[Path, Path]:
    cert, key = stem.with_suffix(".pem"), stem.with_suffix(".key")
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)  # a root server refuses a key other users could read
    return cert, key


@contextlib.contextmanager
def serving(tmp_path: Path, cert: Path, key: Path) -> Iterator[Server]:
    server = start_server(tmp_path, "--rate-limit-ms", "0", "--cert", str(cert), "--key", str(key))
    try:
        yield server
    finally:
        stop_server(server.process)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("tls"), "--rate-limit-ms", "0")
    yield server
    stop_server(server.process)


@pytest.fixture(scope="module")
def rsa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, Path]]:
    """The worker serving an RSA certificate, so RSA key exchange suites are possible."""
    tmp = tmp_path_factory.mktemp("tls-rsa")
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert(
        "127.0.0.1", key_type=trustme.KeyType.RSA
    )
    cert, key = write_leaf(leaf, tmp / "rsa")
    with serving(tmp, cert, key) as server:
        yield server, cert, key


def is_ecdhe_aead(cipher: str) -> bool:
    return cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)


def test_a_tls11_only_client_is_refused(demo_server: Server) -> None:
    client = offering(ssl.TLSVersion.TLSv1_1)
    assert control_or_skip(client, DEMO_CERT_FILE, DEMO_KEY_FILE).version == "TLSv1.1"
    with pytest.raises(ssl.SSLError):
        handshake(demo_server.port, client)
    # The refusal is the policy, not a broken server.
    assert handshake(demo_server.port, trusting(CA)).version == "TLSv1.3"


@pytest.mark.parametrize(
    ("version", "expected"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (None, "TLSv1.3")],
)
def test_tls12_and_tls13_clients_succeed(
    demo_server: Server, version: ssl.TLSVersion | None, expected: str
) -> None:
    context = trusting(CA)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    result = handshake(demo_server.port, context)
    assert result.version == expected
    assert result.compression is None
    if expected == "TLSv1.2":
        assert is_ecdhe_aead(result.cipher), result.cipher


@pytest.mark.parametrize(
    ("key_type", "ciphers"),
    [
        ("rsa", "AES128-SHA:AES256-GCM-SHA384"),  # RSA key exchange: no forward secrecy
        ("rsa", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384"),  # forward secret, but CBC
        ("ec", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"),  # forward secret, but CBC
    ],
)
def test_tls12_without_forward_secret_aead_is_refused(
    demo_server: Server, rsa_server: tuple[Server, Path, Path], key_type: str, ciphers: str
) -> None:
    if key_type == "rsa":
        server, cert, key = rsa_server
    else:
        server, cert, key = demo_server, DEMO_CERT_FILE, DEMO_KEY_FILE
    client = offering(ssl.TLSVersion.TLSv1_2, f"{ciphers}:@SECLEVEL=0")
    control = control_or_skip(client, cert, key)
    assert control.version == "TLSv1.2" and not is_ecdhe_aead(control.cipher)
    with pytest.raises(ssl.SSLError):
        handshake(server.port, client)
    good = handshake(server.port, offering(ssl.TLSVersion.TLSv1_2, "DEFAULT"))
    assert is_ecdhe_aead(good.cipher) and good.compression is None, good


def forge_demo_lookalike(directory: Path) -> tuple[Path, Path, Path]:
    """A new CA and server certificate whose every name and extension copies the demo's.

    Only keys, serials, dates and signatures differ; the key identifiers are copied
    too, so a verifier that matched on text alone would accept it.
    """
    demo_ca = x509.load_pem_x509_certificate(CA.read_bytes())
    demo_leaf = x509.load_pem_x509_certificate(DEMO_CERT_FILE.read_bytes())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)

    def build(template: x509.Certificate, public: ec.EllipticCurvePublicKey) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(template.subject)
            .issuer_name(template.issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
        )
        for extension in template.extensions:
            builder = builder.add_extension(extension.value, extension.critical)
        return builder.sign(ca_key, hashes.SHA256())

    fake_ca = build(demo_ca, ca_key.public_key())
    fake_leaf = build(demo_leaf, leaf_key.public_key())
    assert fake_ca.subject == fake_ca.issuer == demo_ca.subject == demo_ca.issuer
    assert fake_leaf.subject == demo_leaf.subject and fake_leaf.issuer == demo_leaf.issuer
    assert fake_ca.public_key() != demo_ca.public_key()
    pem = serialization.Encoding.PEM
    paths = directory / "fake-ca.pem", directory / "fake.pem", directory / "fake-key.pem"
    paths[0].write_bytes(fake_ca.public_bytes(pem))
    paths[1].write_bytes(fake_leaf.public_bytes(pem))
    paths[2].write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths[2].chmod(0o600)
    return paths


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    return lines[0]


def test_a_lookalike_of_the_demo_ca_is_not_trusted(tmp_path: Path) -> None:
    fake_ca, cert, key = forge_demo_lookalike(tmp_path)
    with serving(tmp_path, cert, key) as server:
        line = one_error_line(server.cli("status", "1"))
        assert "certificate is not trusted" in line, line
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(server.port, trusting(CA))
        # Control: the served certificate is sound for whoever trusts the fake CA.
        assert handshake(server.port, trusting(fake_ca)).version == "TLSv1.3"
        assert server.cli("--ca", str(fake_ca), "run", "true").returncode == 0


@pytest.mark.parametrize("name", ["otherhost.test", "127.0.0.1"])
def test_a_certificate_for_another_host_is_refused(tmp_path: Path, name: str) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "other-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert, key = write_leaf(ca.issue_cert(name), tmp_path / "leaf")
    with serving(tmp_path, cert, key) as server:
        result = server.cli("--ca", str(ca_file), "run", "true")
        if name == "127.0.0.1":  # control: same CA, the name the client dials
            assert result.returncode == 0, result.stderr
            return
        line = one_error_line(result)
        assert "not trusted" in line and "mismatch" in line.lower(), line
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(server.port, trusting(ca_file))
