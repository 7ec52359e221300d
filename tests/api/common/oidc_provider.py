"""A real OpenID Connect provider (oidc-provider-mock) for the integration tests.

Usage: python3 oidc_provider.py PORT. Serves the provider on 127.0.0.1:PORT (issuer
http://127.0.0.1:PORT) with nonces required; any client id and secret are accepted.
Tests set a user's claims with PUT /users/{sub} and sign in by POSTing the
authorization form (sub=…) as the user's browser would. Prints "ready" once listening;
exits when its standard input closes (the test process that started it ended).
"""

import os
import sys
import threading
import warnings

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
warnings.filterwarnings("ignore")

import oidc_provider_mock  # noqa: E402
import werkzeug.serving  # noqa: E402


def main():
    port = int(sys.argv[1])
    app = oidc_provider_mock.app(require_nonce=True)
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
