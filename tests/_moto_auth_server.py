"""moto's S3 (and IAM, STS) server in its own process, checking signatures once told to, and logging requests.

Run as ``python tests/_moto_auth_server.py``; it prints ``PORT <n>`` once
listening on 127.0.0.1. moto checks signatures (and IAM permissions) only
when its ``INITIAL_NO_AUTH_ACTION_COUNT`` is finite: the tests set up users,
keys and buckets with auth off, then ``POST /moto-api/reset-auth`` with body
``0`` switches every later request to checked (moto recomputes each
signature with botocore from the headers it received and the secret it holds
for the key; a wrong key, secret or session token is a 403). That setting is
global to a moto process, hence a process of its own: the other S3 tests'
moto server is untouched.

A WSGI layer in front of moto adds what moto lacks, as S3 does it, and a log:

- ``POST /_pyr/requester-pays/<bucket>``: object reads (GET, HEAD) of
  ``bucket`` without ``x-amz-request-payer: requester`` get S3's 403
  ``AccessDenied`` (moto does not implement requester pays; writes, the
  owner's in these tests, need no header).
- ``POST /_pyr/region/<bucket>/<region>``: requests to ``bucket`` signed for
  another region get S3's 400 ``AuthorizationHeaderMalformed`` naming
  ``region`` (body and ``x-amz-bucket-region`` header).
- ``GET /_pyr/log``: JSON list of the requests so far (method, path, user
  agent, Range, ``x-amz-request-payer``, whether ``x-amz-security-token``
  came, the signed header names, the status); ``POST /_pyr/reset`` empties it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

_SIGNED = re.compile(r"SignedHeaders=([^,\s]+)")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


def _error(code: str, message: str, more: str = "") -> str:
    """An S3 error body."""
    return (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{code}</Code><Message>{message}</Message>{more}</Error>"
    )


class Layer:
    """The WSGI layer in front of moto: S3's requester pays and region answers, and the request log."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.log: list[dict[str, Any]] = []
        self.payer_buckets: set[str] = set()
        self.regions: dict[str, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_pyr/"):
            return self._control(environ, path, start_response)
        method = environ["REQUEST_METHOD"]
        auth = environ.get("HTTP_AUTHORIZATION", "")
        signed = _SIGNED.search(auth)
        scope = _SCOPE.search(auth)
        entry = {
            "method": method,
            "path": path,
            "agent": environ.get("HTTP_USER_AGENT", ""),
            "range": environ.get("HTTP_RANGE"),
            "payer": environ.get("HTTP_X_AMZ_REQUEST_PAYER"),
            "token": "HTTP_X_AMZ_SECURITY_TOKEN" in environ,
            "signed": signed.group(1).split(";") if signed else [],
            "status": None,
        }
        with self.lock:
            self.log.append(entry)
        bucket, _, key = path.lstrip("/").partition("/")
        region = self.regions.get(bucket)
        if region is not None and scope is not None and scope.group(1) != region:
            wrong = f"the region '{scope.group(1)}' is wrong; expecting '{region}'"
            body = _error("AuthorizationHeaderMalformed", wrong, f"<Region>{region}</Region>")
            return self._answer(entry, start_response, 400, body, [("x-amz-bucket-region", region)])
        paid = environ.get("HTTP_X_AMZ_REQUEST_PAYER") == "requester"
        if bucket in self.payer_buckets and key and method in ("GET", "HEAD") and not paid:
            return self._answer(entry, start_response, 403, _error("AccessDenied", "Access Denied"))

        def recording(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            entry["status"] = int(status.split()[0])
            return start_response(status, headers, *rest)

        return self.app(environ, recording)

    def _answer(
        self,
        entry: dict[str, Any],
        start_response: Callable[..., Any],
        status: int,
        body: str,
        extra: list[tuple[str, str]] | None = None,
    ) -> Iterable[bytes]:
        entry["status"] = status
        data = b"" if entry["method"] == "HEAD" else body.encode()
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(data))), *(extra or [])]
        start_response(f"{status} {'Bad Request' if status == 400 else 'Forbidden'}", headers)
        return [data]

    def _control(self, environ: dict[str, Any], path: str, start_response: Callable[..., Any]) -> Iterable[bytes]:
        parts = path.strip("/").split("/")[1:]
        with self.lock:
            if parts == ["log"]:
                payload: Any = list(self.log)
            elif parts == ["reset"]:
                self.log.clear()
                payload = "ok"
            elif len(parts) == 2 and parts[0] == "requester-pays":
                self.payer_buckets.add(parts[1])
                payload = "ok"
            elif len(parts) == 3 and parts[0] == "region":
                self.regions[parts[1]] = parts[2]
                payload = "ok"
            else:
                start_response("404 Not Found", [("Content-Length", "0")])
                return [b""]
        data = json.dumps(payload).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def main() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = Layer(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
