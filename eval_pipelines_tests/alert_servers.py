"""Real receivers on 127.0.0.1 for the alert tests: an HTTP server that records every request, and an SMTP server.

The HTTP server is ``http.server`` in a thread (what a Slack, Teams or webhook endpoint sees: method, path,
headers, body); the SMTP server is ``aiosmtpd``'s ``Controller`` (a real SMTP dialogue, optionally STARTTLS with a
throw-away self-signed certificate for 127.0.0.1, and AUTH).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingServer:
    """Answers every POST with ``status`` (settable: 500 makes it a failing receiver) and records it."""

    status: int = 200
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def posted(self, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if path is None or r.path == path]


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    state = RecordingServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                state.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = state.status
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert, key) PEM files of a certificate for IP 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class SmtpServer:
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


@contextmanager
def smtp_server(tls_files: tuple[Path, Path] | None = None, credentials: tuple[str, str] | None = None
                ) -> Iterator[SmtpServer]:
    """aiosmtpd on 127.0.0.1; with ``tls_files`` it offers (and requires) STARTTLS, with ``credentials`` AUTH."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    state = SmtpServer(port=free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            state.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                   "subject": str(parsed["Subject"]), "body": parsed.get_content(),
                                   "tls": session.ssl is not None})
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and credentials is not None and \
            (auth_data.login.decode(), auth_data.password.decode()) == credentials
        if ok:
            state.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)

    kwargs: dict[str, Any] = {}
    if tls_files is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
        kwargs.update(tls_context=context, require_starttls=True)
    if credentials is not None:
        kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls_files is not None)
    controller = Controller(Handler(), hostname="127.0.0.1", port=state.port, ready_timeout=10, **kwargs)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()
