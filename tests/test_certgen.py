"""`worker certs`: a private CA and a server certificate, and the shipped demo ones."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from worker.certgen import generate
from worker.errors import ConfigError

REPO_CERTS = Path(__file__).resolve().parent.parent / "certs"
TEN_YEARS = datetime.timedelta(days=10 * 365 + 3)
HOSTS = ["localhost", "127.0.0.1", "::1"]


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def public_der(key: object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def handshake(ca: Path, cert: Path, key: Path, server_hostname: str) -> None:
    """A full in-memory TLS handshake: a client trusting only ``ca`` checks the server."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(ca))
    assert client_context.check_hostname
    client_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if all(done.values()):
            return
    raise AssertionError("TLS handshake did not finish")


def check_pair(ca_path: Path, server_path: Path, min_left: datetime.timedelta) -> None:
    """What both a generated and the shipped pair must satisfy."""
    ca = load_cert(ca_path)
    server = load_cert(server_path)
    now = datetime.datetime.now(datetime.UTC)

    # The CA is a CA, self-signed; the server certificate is not a CA.
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    ca.verify_directly_issued_by(ca)
    constraints = server.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False

    # Signed by the CA (raises InvalidSignature / ValueError otherwise).
    server.verify_directly_issued_by(ca)

    # Usable for a TLS server on every local name.
    usages = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    addresses = san.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("127.0.0.1") in addresses
    assert ipaddress.ip_address("::1") in addresses

    # Valid now and for a long time to come.
    for cert in (ca, server):
        assert cert.not_valid_before_utc <= now
        assert cert.not_valid_after_utc - now >= min_left


# --- generate ---------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs") / "new" / "nested"
    written = generate(directory)
    assert sorted(p.name for p in written) == ["ca.pem", "server-key.pem", "server.pem"]
    assert all(p.parent == directory for p in written)
    return directory


def test_generate_writes_exactly_three_files(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]


def test_generate_file_modes(generated: Path) -> None:
    assert stat.S_IMODE((generated / "server-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((generated / "server.pem").stat().st_mode) == 0o644
    assert stat.S_IMODE((generated / "ca.pem").stat().st_mode) == 0o644


def test_generated_pair_is_valid(generated: Path) -> None:
    # At least 10 years from now (the tool promises 20).
    check_pair(generated / "ca.pem", generated / "server.pem", TEN_YEARS)


def test_generated_key_matches_certificate_and_is_not_the_ca(generated: Path) -> None:
    key = serialization.load_pem_private_key(
        (generated / "server-key.pem").read_bytes(), password=None
    )
    server = load_cert(generated / "server.pem")
    ca = load_cert(generated / "ca.pem")
    assert public_der(key.public_key()) == public_der(server.public_key())
    assert public_der(key.public_key()) != public_der(ca.public_key())


@pytest.mark.parametrize("host", HOSTS)
def test_generated_certificate_passes_tls_handshake(generated: Path, host: str) -> None:
    handshake(generated / "ca.pem", generated / "server.pem", generated / "server-key.pem", host)


def test_generated_certificate_refused_for_other_names(generated: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(
            generated / "ca.pem", generated / "server.pem", generated / "server-key.pem", "x.test"
        )


def test_each_generation_makes_a_new_ca(generated: Path, tmp_path: Path) -> None:
    generate(tmp_path)
    assert (tmp_path / "ca.pem").read_bytes() != (generated / "ca.pem").read_bytes()
    # A server certificate from one run is not trusted by another run's CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(
            tmp_path / "ca.pem", generated / "server.pem", generated / "server-key.pem", "localhost"
        )


def test_generate_overwrites_and_tightens_existing_key(tmp_path: Path) -> None:
    key = tmp_path / "server-key.pem"
    key.write_text("old")
    key.chmod(0o666)
    generate(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes()


def test_generate_into_a_file_is_config_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(ConfigError):
        generate(target)


# --- the shipped demo certificates ------------------------------------------


def test_shipped_pair_is_valid() -> None:
    check_pair(REPO_CERTS / "ca.pem", REPO_CERTS / "server.pem", TEN_YEARS)


@pytest.mark.parametrize("host", HOSTS)
def test_shipped_certificate_passes_tls_handshake(host: str) -> None:
    handshake(REPO_CERTS / "ca.pem", REPO_CERTS / "server.pem", REPO_CERTS / "server-key.pem", host)


def test_no_ca_private_key_is_shipped() -> None:
    ca = load_cert(REPO_CERTS / "ca.pem")
    server = load_cert(REPO_CERTS / "server.pem")
    private = [p for p in REPO_CERTS.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    assert [p.name for p in private] == ["server-key.pem"]
    for path in private:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert public_der(key.public_key()) == public_der(server.public_key())
        assert public_der(key.public_key()) != public_der(ca.public_key())
