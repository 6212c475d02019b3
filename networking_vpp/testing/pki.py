"""A throwaway certificate authority for TLS tests: CA, server and client certificates.

The client certificate has no Common Name on purpose: with auth enabled, etcd's gateway
rejects any client certificate that has one (identity must come from a user and password).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass(frozen=True)
class Pki:
    """Paths of the PEM files written by :func:`make_pki`."""

    ca_cert: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: str, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _write_cert(path: str, cert: x509.Certificate) -> None:
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    usages: list[x509.ObjectIdentifier],
    hosts: list[str],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: str, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Pki:
    """Write a fresh CA and a server and a client certificate (with keys) into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "networking-vpp test CA")])
    ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True, usages=[], hosts=[])
    # etcd's own gateway dials etcd with the server certificate: it needs clientAuth too. It
    # has no CN either, for the reason in the module docstring.
    no_cn = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "networking-vpp test")])
    server_key = _key()
    server = _issue(
        no_cn,
        server_key,
        ca_name,
        ca_key,
        ca=False,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        hosts=list(hosts),
    )
    client_key = _key()
    client = _issue(
        no_cn,
        client_key,
        ca_name,
        ca_key,
        ca=False,
        usages=[ExtendedKeyUsageOID.CLIENT_AUTH],
        hosts=[],
    )
    pki = Pki(
        ca_cert=os.path.join(directory, "ca.pem"),
        server_cert=os.path.join(directory, "server.pem"),
        server_key=os.path.join(directory, "server-key.pem"),
        client_cert=os.path.join(directory, "client.pem"),
        client_key=os.path.join(directory, "client-key.pem"),
    )
    _write_cert(pki.ca_cert, ca)
    _write_cert(pki.server_cert, server)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.client_cert, client)
    _write_key(pki.client_key, client_key)
    return pki
