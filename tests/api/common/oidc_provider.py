"""A real OpenID Connect provider (oidc-provider-mock) for the integration tests.

Usage: python3 oidc_provider.py PORT. Serves the provider on 127.0.0.1:PORT (issuer
http://127.0.0.1:PORT) with nonces and PKCE (S256) required; any client id and secret
are accepted.
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
from authlib.integrations.flask_oauth2 import AuthorizationServer  # noqa: E402
from authlib.oauth2.rfc7636 import CodeChallenge  # noqa: E402
from oidc_provider_mock import _app  # noqa: E402

# oidc-provider-mock (0.3.4) ignores `code_challenge`, so a client that got PKCE wrong
# would pass. Authlib's own CodeChallenge extension does the RFC 7636 check once each
# code remembers the challenge of the authorization request that issued it.
_challenges = {}
_save_code = _app.AuthorizationCodeGrant.save_authorization_code


def _save_code_and_challenge(self, code, request):
    _save_code(self, code, request)
    data = request.payload.data
    _challenges[code] = (data.get("code_challenge"), data.get("code_challenge_method"))


class _Pkce(CodeChallenge):
    def get_authorization_code_challenge(self, authorization_code):
        return _challenges.get(authorization_code.code, (None, None))[0]

    def get_authorization_code_challenge_method(self, authorization_code):
        return _challenges.get(authorization_code.code, (None, None))[1]


_register_grant = AuthorizationServer.register_grant


def _register_with_pkce(self, grant_cls, extensions=None):
    if grant_cls is _app.AuthorizationCodeGrant:
        extensions = [*(extensions or []), _Pkce(required=True)]
    _register_grant(self, grant_cls, extensions)


_app.AuthorizationCodeGrant.save_authorization_code = _save_code_and_challenge
AuthorizationServer.register_grant = _register_with_pkce


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
