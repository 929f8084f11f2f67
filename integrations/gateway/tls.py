"""mTLS contexts built from PEM text held in the vault, without writing a private key to disk.

ssl.SSLContext.load_cert_chain only reads files, so the certificate and key go into anonymous
memory files (os.memfd_create) and are loaded through their /proc/self/fd paths; the files vanish
when closed. The CA needs no file: load_verify_locations takes `cadata`. File paths in the
configuration are refused on purpose: a tenant must not make the platform read its own disk.
"""

import contextlib
import hashlib
import os
import ssl

from integrations.gateway import GatewayConfigError

PEM_MARK = "-----BEGIN "


def _require_pem(label: str, text: str, service: str) -> str:
    if PEM_MARK not in text:
        raise GatewayConfigError(
            f"tls.{label} of service {service!r} is not PEM text: give the PEM itself or a ${{SECRET}} holding it "
            "(file paths are not read).",
            service=service,
        )
    return text


@contextlib.contextmanager
def memory_file(text: str, name: str):
    """A /proc/self/fd path to an in-memory file holding `text`, closed (and gone) on exit."""
    if not hasattr(os, "memfd_create"):
        raise GatewayConfigError("mTLS needs os.memfd_create (Linux) to load keys without a file on disk.")
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, text.encode())
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def fingerprint(cert: str, key: str, ca: str) -> str:
    """A stable id for a set of TLS material, to reuse one client (and its pool) per set."""
    return hashlib.sha256("\0".join((cert, key, ca)).encode()).hexdigest()


def ssl_context(*, cert: str, key: str, ca: str, service: str = "") -> ssl.SSLContext:
    """A client SSLContext trusting `ca` (or the system CAs) and presenting `cert`/`key` when given."""
    try:
        context = ssl.create_default_context(cadata=_require_pem("ca", ca, service) if ca else None)
        if cert:
            _require_pem("cert", cert, service)
            _require_pem("key", key, service)
            with memory_file(cert, "client-cert") as cert_path, memory_file(key, "client-key") as key_path:
                context.load_cert_chain(certfile=cert_path, keyfile=key_path)
    except (ssl.SSLError, ValueError) as exc:
        raise GatewayConfigError(
            f"TLS material of service {service!r} cannot be loaded: {exc}", service=service
        ) from exc
    return context
