"""A small OpenID Connect provider on a loopback port, for the team-mode sign-in tests.

It does what a real provider does for the authorization-code flow and nothing more: discovery,
an authorize page where the tester types a user name, a token endpoint that checks the code,
the client's secret, the redirect address and (when sent) the PKCE verifier, and an RS256-signed
ID token whose key is published at the JWKS address. No outside service is reached.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey


class OIDCStub:
    def __init__(self, client_id: str = "dealmodel-test", client_secret: str | None = None):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.key = RSAKey.generate_key(2048, parameters={"kid": "stub-1", "use": "sig", "alg": "RS256"})
        self.codes: dict[str, dict] = {}
        self.tokens_issued = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def __enter__(self) -> OIDCStub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def metadata(self) -> dict:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "end_session_endpoint": f"{self.issuer}/logout",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "email", "profile"]}

    def id_token(self, user: str, nonce: str | None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": f"user-{user}", "aud": self.client_id, "iat": now, "exp": now + 600,
                  "email": f"{user}@example.com", "name": user.title(), "email_verified": True}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "stub-1"}, claims, self.key)

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: str | bytes, ctype: str = "application/json", headers=()) -> None:
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._send(200, json.dumps(stub.metadata()))
                elif url.path == "/jwks":
                    self._send(200, json.dumps({"keys": [stub.key.as_dict(private=False)]}))
                elif url.path == "/authorize":
                    if q.get("client_id") != stub.client_id or q.get("response_type") != "code":
                        self._send(400, json.dumps({"error": "invalid_request"}))
                        return
                    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                                     for k, v in q.items())
                    page = (f"<html><body><h1>Stub sign-in</h1><form method='get' action='/approve'>{hidden}"
                            "<label>User <input name='user' id='user'></label>"
                            "<button type='submit' id='approve'>Sign in</button></form></body></html>")
                    self._send(200, page, "text/html")
                elif url.path == "/approve":
                    code = secrets.token_urlsafe(16)
                    stub.codes[code] = q
                    target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
                    self._send(302, "", "text/plain", [("Location", target)])
                elif url.path == "/logout":
                    target = q.get("post_logout_redirect_uri") or "/"
                    self._send(302, "", "text/plain", [("Location", target)])
                else:
                    self._send(404, json.dumps({"error": "not_found"}))

            def do_POST(self) -> None:
                if urlparse(self.path).path != "/token":
                    self._send(404, json.dumps({"error": "not_found"}))
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                client_id, secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                grant = stub.codes.pop(form.get("code", ""), None)
                ok = (grant is not None and client_id == stub.client_id and secret == stub.client_secret
                      and form.get("grant_type") == "authorization_code"
                      and form.get("redirect_uri") == grant.get("redirect_uri"))
                if ok and grant.get("code_challenge"):
                    digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                    ok = base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == grant["code_challenge"]
                if not ok:
                    self._send(400, json.dumps({"error": "invalid_grant"}))
                    return
                stub.tokens_issued += 1
                self._send(200, json.dumps({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                            "expires_in": 600, "scope": grant.get("scope", "openid"),
                                            "id_token": stub.id_token(grant["user"], grant.get("nonce"))}))

        return Handler
