"""TLS for the brokers we run: a private CA and a server certificate per exercise.

`generate_tls(workdir)` makes a fresh certificate authority (an ECDSA P-256
key that never leaves the work directory, valid for a day) and a server
certificate it signs for the loopback names (`127.0.0.1`, `::1`,
`localhost`). The broker listens with TLS only; every client checks the
server's certificate against that CA and the host name (`ssl` with
CERT_REQUIRED), so a client refuses a broker whose certificate is expired,
not yet valid, issued by another CA or for another name.

Keys are written 0600. The CA file is what a client needs (`ca_file` in an
`mqtts://` URL, a seat file, a control file); nothing here is secret but the
two keys.
"""

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulator.brokers.base import write_private

__all__ = [
    "LOOPBACK_NAMES",
    "TlsFiles",
    "generate_tls",
    "issue_certificate",
    "new_authority",
    "server_context",
]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
_VALIDITY = dt.timedelta(days=1)
# Clock skew between the machine that makes the certificate and the one that checks it.
_BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of one broker's TLS: the CA certificate clients trust, the server's pair."""

    ca_file: Path
    certfile: Path
    keyfile: Path


@dataclass(frozen=True, slots=True)
class Authority:
    """A certificate authority's key and self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def new_authority(name: str, *, now: dt.datetime, valid_for: dt.timedelta = _VALIDITY) -> Authority:
    """A fresh self-signed CA valid from `now` (minus a little skew) for `valid_for`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def issue_certificate(
    authority: Authority,
    names: tuple[str, ...] = LOOPBACK_NAMES,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server key and certificate for `names` (IP addresses or DNS names), signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    return key, certificate


def write_tls(
    workdir: Path,
    authority: Authority,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    *,
    prefix: str = "broker",
) -> TlsFiles:
    """Write the CA certificate and the server pair (key 0600) into `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_file=workdir / f"{prefix}-ca.crt",
        certfile=workdir / f"{prefix}.crt",
        keyfile=workdir / f"{prefix}.key",
    )
    files.ca_file.write_bytes(authority.certificate.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(files.keyfile, pem.decode("ascii"))
    return files


def generate_tls(workdir: Path, *, now: dt.datetime, exercise: str = "exercise") -> TlsFiles:
    """A fresh CA and a loopback server certificate valid for a day from `now`, in `workdir`.

    `now` is the wall clock, passed in (certificates are checked against the
    real time, whatever the exercise's clock says).
    """
    authority = new_authority(f"coop-simulator CA for {exercise}", now=now)
    key, certificate = issue_certificate(
        authority, not_before=now - _BACKDATE, not_after=now + _VALIDITY
    )
    return write_tls(workdir, authority, key, certificate)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The server side of TLS for the embedded broker: TLS 1.2 at least, our certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.certfile, files.keyfile)
    return context
