"""A real SMTP server for the notification tests: aiosmtpd on loopback.

Usage: smtp_server.py PORT DIR USER — the password is read from $SMTP_TEST_PASSWORD.
AUTH (PLAIN, LOGIN) is offered without TLS and checked against USER and the password; a
successful login writes DIR/auth-ok (the mechanism). Each message is saved, as received, to
DIR/<n>.eml. Prints "ready" once it listens; runs until killed.
"""
import os
import pathlib
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, out, user = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
password = os.environ["SMTP_TEST_PASSWORD"]
out.mkdir(parents=True, exist_ok=True)


class Saver:
    async def handle_DATA(self, server, session, envelope):
        name = out / f"{time.time_ns()}.eml"
        tmp = out / f".{name.name}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(name)
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    if ok:
        (out / "auth-ok").write_text(mechanism)
    return AuthResult(success=ok)


controller = Controller(
    Saver(),
    hostname="127.0.0.1",
    port=port,
    authenticator=authenticate,
    auth_require_tls=False,
)
controller.start()
print("ready", flush=True)
threading.Event().wait()
