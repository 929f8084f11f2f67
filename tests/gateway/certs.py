"""A throwaway CA with a server and a client certificate, generated with `cryptography` in memory."""

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    cert: str
    key: str


def _key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert(subject: str, key, issuer: x509.Name, signer, *, ca=False, usage=None, san=None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_pki() -> tuple[str, Pair, Pair]:
    """(CA PEM, server pair for 127.0.0.1, client pair with CN 'voice-gateway')."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = _cert("Test CA", ca_key, ca_name, ca_key, ca=True)
    pairs = []
    for subject, usage, san in [
        ("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        ("voice-gateway", ExtendedKeyUsageOID.CLIENT_AUTH, None),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(subject, key, ca_name, ca_key, usage=usage, san=san)
        pairs.append(Pair(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key)))
    return ca.public_bytes(serialization.Encoding.PEM).decode(), pairs[0], pairs[1]
