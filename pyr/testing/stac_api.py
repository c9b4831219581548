"""A small STAC API on loopback: the item search of Earth Search, for tests and ``pyr demo --stac``.

:class:`StacApi` serves a fixed list of item dicts from a stdlib
``ThreadingHTTPServer`` on ``127.0.0.1`` (an ephemeral port), in a daemon
thread, with what ``pystac_client.Client.open(url).search(...)`` uses:

- ``GET /``: the landing page (a Catalog with ``conformsTo`` the core,
  item-search and collections classes, and ``search`` links for GET and POST);
- ``GET /conformance``, ``GET /collections``, ``GET /collections/{id}``;
- ``GET /search`` (query parameters) and ``POST /search`` (a JSON body) with
  ``collections``, ``ids``, ``bbox`` (intersecting the item's bbox),
  ``datetime`` (an instant or an ``a/b`` interval, ``..`` open) and
  ``limit`` (items per page, default 10): each page is a FeatureCollection
  whose ``next`` link carries a ``next`` token (in the query string for GET,
  in the body of a POST link, as Earth Search does).

It counts the requests it answers (:attr:`StacApi.requests`) and the search
pages among them (:attr:`StacApi.searches`). Only the
catalogue is served: the items' asset hrefs point wherever their files are.

Examples
--------
>>> import json, urllib.request
>>> items = [{"type": "Feature", "id": f"i{k}", "bbox": [0, 0, 1, 1], "geometry": None,
...           "properties": {"datetime": f"2024-06-0{k + 1}T10:00:00Z"}, "assets": {}, "links": []} for k in range(3)]
>>> with StacApi(items) as api:
...     page = json.load(urllib.request.urlopen(api.url + "/search?limit=2"))
...     [f["id"] for f in page["features"]], [link["rel"] for link in page["links"]]
(['i0', 'i1'], ['root', 'next'])
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

from pyr.testing._loopback import LoopbackServer

__all__ = ["CONFORMANCE", "StacApi"]

CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
_GEOJSON = "application/geo+json"


def _time_of(item: Mapping[str, Any]) -> tuple[np.datetime64, np.datetime64]:
    props = item.get("properties") or {}
    start = props.get("datetime") or props.get("start_datetime")
    end = props.get("datetime") or props.get("end_datetime") or start
    return _instant(start), _instant(end)


def _instant(text: Any) -> np.datetime64:
    return np.datetime64(str(text).replace("Z", "").split("+")[0], "us")


def _matches(item: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    collections = query.get("collections")
    if collections and item.get("collection") not in collections:
        return False
    ids = query.get("ids")
    if ids and item.get("id") not in ids:
        return False
    bbox = query.get("bbox")
    box = item.get("bbox")
    if bbox and box:
        w, s, e, n = (float(v) for v in bbox)
        iw, is_, ie, in_ = (float(v) for v in (box[0], box[1], box[-2], box[-1]))
        if iw > e or ie < w or is_ > n or in_ < s:
            return False
    when = query.get("datetime")
    if when:
        lo_text, _, hi_text = str(when).partition("/")
        hi_text = hi_text if "/" in str(when) else lo_text
        start, end = _time_of(item)
        if lo_text not in ("", "..") and end < _instant(lo_text):
            return False
        if hi_text not in ("", "..") and start > _instant(hi_text):
            return False
    return True


def _list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return [str(v) for v in value]


class StacApi(LoopbackServer):
    """A STAC API serving ``items`` on 127.0.0.1 (see the module docstring); a context manager."""

    thread_name = "stac-api"

    def __init__(self, items: Sequence[Mapping[str, Any]], *, title: str = "pyr loopback STAC API") -> None:
        super().__init__()
        self.items = [dict(i) for i in items]
        self.title = title
        self.requests = 0
        self.searches = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port`` (the landing page is ``url + "/"``)."""
        return self.base_url

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler answering from this API's items."""
        return _handler_for(self)

    # -- documents -------------------------------------------------------------
    def collections(self) -> list[dict[str, Any]]:
        """One collection per distinct ``collection`` of the items."""
        names = sorted({str(i["collection"]) for i in self.items if i.get("collection")})
        out = []
        for name in names:
            mine = [i for i in self.items if i.get("collection") == name]
            times = sorted(str((i.get("properties") or {}).get("datetime")) for i in mine)
            boxes = np.array([i["bbox"][:2] + i["bbox"][-2:] for i in mine if i.get("bbox")] or [[-180, -90, 180, 90]])
            bbox = [*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist()]
            out.append(
                {
                    "type": "Collection",
                    "stac_version": "1.0.0",
                    "id": name,
                    "description": f"{len(mine)} items",
                    "license": "proprietary",
                    "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [[times[0], times[-1]]]}},
                    "links": [{"rel": "self", "href": f"{self.url}/collections/{name}"}],
                }
            )
        return out

    def landing(self) -> dict[str, Any]:
        """The landing page."""
        base = self.url
        return {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": "pyr-loopback",
            "title": self.title,
            "description": self.title,
            "conformsTo": list(CONFORMANCE),
            "links": [
                {"rel": "self", "href": f"{base}/", "type": "application/json"},
                {"rel": "root", "href": f"{base}/", "type": "application/json"},
                {"rel": "conformance", "href": f"{base}/conformance", "type": "application/json"},
                {"rel": "data", "href": f"{base}/collections", "type": "application/json"},
                {"rel": "search", "href": f"{base}/search", "type": _GEOJSON, "method": "GET"},
                {"rel": "search", "href": f"{base}/search", "type": _GEOJSON, "method": "POST"},
            ],
        }

    def search(self, query: Mapping[str, Any], method: str) -> dict[str, Any]:
        """One page of the search ``query`` (already parsed) with its ``next`` link."""
        with self._lock:
            self.searches += 1
        limit = max(1, min(int(query.get("limit") or 10), 10_000))
        start = int(query.get("next") or 0)
        hits = [i for i in self.items if _matches(i, query)]
        page = hits[start : start + limit]
        links: list[dict[str, Any]] = [{"rel": "root", "href": f"{self.url}/", "type": "application/json"}]
        if start + limit < len(hits):
            token = str(start + limit)
            if method == "POST":
                body = {**{k: v for k, v in query.items() if v is not None}, "next": token}
                links.append({"rel": "next", "href": f"{self.url}/search", "method": "POST", "body": body})
            else:
                params = {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in query.items() if v}
                params["next"] = token
                links.append({"rel": "next", "href": f"{self.url}/search?{urlencode(params)}", "method": "GET"})
        return {
            "type": "FeatureCollection",
            "features": page,
            "numberMatched": len(hits),
            "numberReturned": len(page),
            "links": links,
        }


def _parse_query(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "collections": _list(raw.get("collections")),
        "ids": _list(raw.get("ids")),
        "bbox": _list(raw.get("bbox")),
        "datetime": raw.get("datetime"),
        "limit": raw.get("limit"),
        "next": raw.get("next"),
    }


def _handler_for(api: StacApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.rstrip("/")
            if path == "":
                self._json(api.landing())
            elif path == "/conformance":
                self._json({"conformsTo": list(CONFORMANCE)})
            elif path == "/collections":
                self._json({"collections": api.collections(), "links": []})
            elif path.startswith("/collections/"):
                found = [c for c in api.collections() if c["id"] == path.split("/")[2]]
                self._json(found[0]) if found else self._json({"code": "NotFound"}, 404)
            elif path == "/search":
                raw = {k: v[0] for k, v in parse_qs(parts.query).items()}
                self._json(api.search(_parse_query(raw), "GET"), content_type=_GEOJSON)
            else:
                self._json({"code": "NotFound", "description": path}, 404)

        def do_POST(self) -> None:
            if urlsplit(self.path).path.rstrip("/") != "/search":
                self._json({"code": "NotFound"}, 404)
                return
            size = int(self.headers.get("Content-Length") or 0)
            try:
                raw = json.loads(self.rfile.read(size) or b"{}")
            except ValueError:
                self._json({"code": "BadRequest", "description": "body is not JSON"}, 400)
                return
            self._json(api.search(_parse_query(raw), "POST"), content_type=_GEOJSON)

        def _json(self, doc: Any, status: int = 200, content_type: str = "application/json") -> None:
            with api._lock:
                api.requests += 1
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
