"""A real SMTP server (aiosmtpd) for the integration tests.

Usage: python3 smtp_sink.py PORT DIR [CERT KEY USER PASSWORD]. With the last four, the
server offers STARTTLS with that certificate and key, and requires it and then AUTH
(PLAIN or LOGIN) as USER with PASSWORD before accepting mail. Each accepted message is
parsed and written to DIR as JSON ({to, subject, text, html}), one file per recipient, named
<recipient>-<nanoseconds>.json. A recipient whose local part starts with "flaky" is
refused once with a temporary error (451), then accepted, so tests can see retries.
Prints "ready" once listening; exits, removing DIR, when its standard input closes (the
test process that started it ended, however it ended).
"""

import email
import email.policy
import json
import os
import shutil
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.refused = set()

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            if rcpt.startswith("flaky") and rcpt not in self.refused:
                self.refused.add(rcpt)
                return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "from": str(message["From"]),
            "subject": str(message["Subject"]),
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }
        for rcpt in envelope.rcpt_tos:
            record["to"] = rcpt
            name = f"{rcpt}-{time.time_ns()}.json"
            tmp = os.path.join(self.directory, "." + name)
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(self.directory, name))
        return "250 OK"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    secure = {}
    if len(sys.argv) == 7:
        cert, key, user, password = sys.argv[3:7]
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == user.encode() and auth_data.password == password.encode()
            # handled=False: aiosmtpd then answers a failure with 535 itself; with its
            # default (True) it answers nothing and the client waits forever.
            return AuthResult(success=ok, handled=False)

        secure = dict(
            tls_context=context,
            require_starttls=True,
            authenticator=authenticator,
            auth_required=True,
        )
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port, **secure)
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
