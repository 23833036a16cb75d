"""Secure defaults for a server that runs user-designed training on a GPU box.

- a random token, exchanged for an HttpOnly SameSite=Strict cookie, required on every route
  (and on the Socket.IO connect, see sockets.py), compared in constant time;
- a Host allow-list against DNS rebinding;
- an Origin check on state-changing requests (`Origin: null` included);
- security headers and a CSP for the served frontend.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode

from flask import Flask, current_app, redirect, request

from .config import ServerConfig
from .errors import ApiError

COOKIE = "torchloom_token"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def config() -> ServerConfig:
    return current_app.config["TORCHLOOM"]


def token_matches(given: object, expected: str) -> bool:
    """`given` comes from the client as any JSON value (a Socket.IO auth token can be 42)."""
    if not expected:
        return True  # --no-token (loopback only)
    if not isinstance(given, str) or not given:
        return False
    # surrogatepass: a lone surrogate from JSON compares unequal instead of raising
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def host_allowed(host_header: str | None, cfg: ServerConfig) -> bool:
    if not host_header:
        return False
    host = host_header.lower()
    if host.startswith("["):  # [::1]:5000
        name = host.split("]")[0] + "]"
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in cfg.host_names()


def origin_allowed(origin: str | None, cfg: ServerConfig) -> bool:
    if origin is None:
        return True  # not a browser cross-site request (CLI clients send the token)
    return origin in cfg.origins()


def request_token() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return request.headers.get("X-Torchloom-Token") or request.cookies.get(COOKIE)


def install(app: Flask) -> None:
    @app.before_request
    def _guard():
        cfg = config()
        if not host_allowed(request.host, cfg):
            raise ApiError(400, "host_not_allowed", f"Host {request.host!r} is not served here")
        if request.method in UNSAFE_METHODS and not origin_allowed(
            request.headers.get("Origin"), cfg
        ):
            raise ApiError(
                403,
                "origin_not_allowed",
                f"requests from origin {request.headers.get('Origin')!r} are refused",
            )
        url_token = request.args.get("token")
        if url_token is not None and request.method == "GET":
            if not token_matches(url_token, cfg.token):
                raise ApiError(401, "bad_token", "the token in the URL is not valid")
            # the start URL: trade the token for a cookie and drop it from the address bar
            args = {k: v for k, v in request.args.items() if k != "token"}
            target = request.path + (f"?{urlencode(args)}" if args else "")
            response = redirect(target, code=302)
            response.set_cookie(
                COOKIE,
                url_token,
                httponly=True,
                samesite="Strict",
                secure=request.is_secure,
                path="/",
            )
            return response
        if not token_matches(request_token(), cfg.token):
            raise ApiError(
                401, "unauthorized", "a valid token is required: open the URL printed at start"
            )
        return None

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response
