"""A fake SAP Datasphere tenant served over HTTP on 127.0.0.1, for tests of the REST source.

It imitates the surfaces metasync uses: the OAuth2 token endpoint (client credentials, HTTP Basic or form
fields), the catalog's space list (OData, paged with `@odata.nextLink`), the design-time lists (bare JSON
arrays paged with `$top`/`$skip`, default page 25) and the design-time CSN reads (which demand the
`application/vnd.sap.datasphere.object.content+json` Accept header). Tokens can be expired on demand, spaces can
refuse the technical user (HTTP 403), and scripted faults (429 with Retry-After, 500, slow answers) can be
queued for any path. Lists can page wrongly: ignore `$skip`, cap pages, overlap, or change order every time.
An object's stored document is served as it is, so a test can store a body that is not CSN.

`split_file` turns a CSN export into per-object design-time documents, the way the tenant stores objects.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

CSN_ACCEPT = "application/vnd.sap.datasphere.object.content+json"
CATALOG = "/api/v1/datasphere/consumption/catalog/spaces"
DESIGN_TIME = re.compile(r"^/dwaas-core/api/v1/spaces/(?P<space>[^/]+)/(?P<type>[^/]+)(?:/(?P<name>[^/]+))?$")


@dataclass
class Fault:
    """A scripted answer for the next `times` requests whose path matches `pattern`."""

    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    times: int
    delay: float = 0.0
    method: str = "GET"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0


@dataclass
class FakeTenant:
    client_id: str = "metasync-technical-user"
    client_secret: str = "tOp-SeCrEt-9f3a1c77e2"
    catalog_page_size: int = 2
    catalog_as_array: bool = False  # answer the space list as one bare JSON array, as some tenants do
    broken_paging: bool = (
        False  # lists ignore $skip and the catalog's next link points back to its first page
    )
    list_ignores_paging: bool = False  # lists answer every object at once, whatever $top and $skip say
    list_unstable_order: bool = False  # every list answer orders the objects differently
    list_overlap: int = 0  # list pages start this many objects before $skip (a server off by some)
    list_default_top: int = 25
    list_max_top: int = 200
    token_lifetime: int = 3600
    token_max_uses: int | None = None  # a token expires after this many API requests
    spaces: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    changed_on: dict[tuple[str, str, str], str] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    hidden_from_catalog: set[str] = field(default_factory=set)
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    valid_tokens: dict[str, int] = field(default_factory=dict)  # token → API requests made with it
    issued_tokens: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # ----------------------------------------------------------------- content
    def add_object(
        self, space: str, object_type: str, name: str, payload: dict[str, Any], changed_on: str | None = None
    ) -> None:
        self.spaces.setdefault(space, {}).setdefault(object_type, {})[name] = payload
        self.changed_on[(space, object_type, name)] = changed_on or "2024-01-01T00:00:00.000Z"

    def add_space(self, space: str) -> None:
        self.spaces.setdefault(space, {})

    def fail(
        self,
        pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        method: str = "GET",
    ) -> None:
        """Answer the next `times` matching requests with `status` (after `delay` seconds)."""
        self.faults.append(Fault(re.compile(pattern), status, headers or {}, times, delay, method))

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (HTTP 401)."""
        with self._lock:
            self.valid_tokens.clear()

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # ----------------------------------------------------------------- server
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def start(self) -> FakeTenant:
        handler = type("Handler", (_Handler,), {"tenant": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def source_config(self, **overrides: Any) -> dict[str, Any]:
        """A `source:` mapping pointing at this tenant (fast retries for tests)."""
        config: dict[str, Any] = {
            "kind": "datasphere",
            "url": self.url,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "retry_backoff": 0.01,
            "max_backoff": 2.0,
            "timeout": 5.0,
        }
        config.update(overrides)
        return config

    # ----------------------------------------------------------------- request handling
    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.pattern.search(path):
                    fault.times -= 1
                    return fault
        return None

    def _issue_token(self, headers: dict[str, str], form: dict[str, list[str]]) -> tuple[int, Any]:
        client_id = form.get("client_id", [None])[0]
        secret = form.get("client_secret", [None])[0]
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if form.get("grant_type", [None])[0] != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if client_id != self.client_id or secret != self.client_secret:
            return 401, {"error": "unauthorized", "error_description": "Bad credentials"}
        with self._lock:
            self.issued_tokens += 1
            token = f"token-{self.issued_tokens}"
            self.valid_tokens[token] = 0
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime}

    def _answer_get(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, Any]:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            authorised = token in self.valid_tokens
            if authorised:
                self.valid_tokens[token] += 1
                if self.token_max_uses is not None and self.valid_tokens[token] > self.token_max_uses:
                    del self.valid_tokens[token]
                    authorised = False
        if not authorised:
            return 401, {"error": "invalid_token"}
        if path == CATALOG:
            if self.catalog_as_array:
                names = sorted(self.spaces.keys() | self.forbidden)
                return 200, [{"name": n, "label": n.title()} for n in names]
            return 200, self._catalog_page(query)
        match = DESIGN_TIME.match(path)
        if not match:
            return 404, {"error": {"message": f"no route {path}"}}
        space, object_type = unquote(match["space"]), unquote(match["type"])
        if space in self.forbidden:
            return 403, {"error": {"message": "You are not a member of this space"}}
        if space not in self.spaces:
            return 404, {"error": {"message": f"space {space} does not exist"}}
        objects = self.spaces[space].get(object_type, {})
        if match["name"] is None:
            top = min(int(query.get("$top", [self.list_default_top])[0]), self.list_max_top)
            skip = 0 if self.broken_paging else int(query.get("$skip", ["0"])[0])
            skip = max(0, skip - self.list_overlap)
            if self.list_ignores_paging:
                top, skip = len(objects), 0
            names = sorted(objects)
            if self.list_unstable_order:
                random.Random(len(self.requests)).shuffle(names)
            names = names[skip : skip + top]
            return 200, [
                {"technicalName": n, "changedOn": self.changed_on[(space, object_type, n)]} for n in names
            ]
        if headers.get("accept") != CSN_ACCEPT:
            return 406, {"error": {"message": "use Accept: " + CSN_ACCEPT}}
        name = unquote(match["name"])
        if name not in objects:
            return 404, {"error": {"message": f"object {name} not found"}}
        return 200, objects[name]

    def _catalog_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        names = sorted(s for s in self.spaces.keys() | self.forbidden if s not in self.hidden_from_catalog)
        start = 0 if self.broken_paging else int(query.get("$skiptoken", ["0"])[0])
        page = names[start : start + self.catalog_page_size]
        body: dict[str, Any] = {
            "@odata.context": "$metadata#spaces",
            "value": [{"name": n, "label": n.title()} for n in page],
        }
        if start + self.catalog_page_size < len(names):
            body["@odata.nextLink"] = f"spaces?$skiptoken={start + self.catalog_page_size}"
        return body


class _Handler(BaseHTTPRequestHandler):
    tenant: FakeTenant
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _handle(self, method: str) -> None:
        raw_path, _, raw_query = self.path.partition("?")
        query = parse_qs(raw_query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        record = Recorded(method, raw_path, query, headers)
        tenant = self.tenant
        with tenant._lock:
            tenant.requests.append(record)
            tenant.in_flight += 1
            tenant.max_in_flight = max(tenant.max_in_flight, tenant.in_flight)
        try:
            self._answer(method, raw_path, query, headers, body, record)
        finally:
            with tenant._lock:
                tenant.in_flight -= 1

    def _answer(
        self,
        method: str,
        raw_path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        record: Recorded,
    ) -> None:
        fault = self.tenant._fault_for(method, raw_path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            status, payload, extra = fault.status, {"error": {"code": str(fault.status)}}, fault.headers
        elif method == "POST" and raw_path == "/oauth/token":
            status, payload = self.tenant._issue_token(headers, parse_qs(body.decode()))
            extra = {}
        elif method == "GET":
            status, payload = self.tenant._answer_get(raw_path, query, headers)
            extra = {}
        else:
            status, payload, extra = 405, {"error": "method not allowed"}, {}
        record.status = status
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


# --------------------------------------------------------------------- corpus → design-time objects
def object_type_of(name: str, definition: dict[str, Any], analytic: set[str]) -> str:
    """The design-time object type a definition of kind `entity` is stored under."""
    pattern = definition.get("@ObjectModel.modelingPattern")
    if isinstance(pattern, dict):
        pattern = pattern.get("#")
    if name in analytic or pattern == "ANALYTICAL_CUBE":
        return "analyticmodels"
    if any(key in definition for key in ("query", "projection", "SET")):
        return "views"
    if "@DataWarehouse.remote.connection" in definition:
        return "remotetables"
    return "localtables"


def split_file(path: Path, space: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """A CSN export as per-object design-time documents: `(space, object_type, technical_name, csn)`.

    Each document holds its entity plus every non-entity definition of the file (types, contexts, services),
    and for an analytic model its `businessLayerDefinitions` entry. An entity inside a context annotated with
    `@DataWarehouse.space.name` is stored in that other space, under the rest of its name; its document keeps
    that context, so that its references resolve in its own space.
    """
    csn = json.loads(path.read_text(encoding="utf-8"))
    definitions: dict[str, Any] = csn.get("definitions", {})
    header = {
        k: v for k, v in csn.items() if k not in ("definitions", "businessLayerDefinitions", "editorSettings")
    }
    shared = {k: v for k, v in definitions.items() if isinstance(v, dict) and v.get("kind") != "entity"}
    foreign = {
        k: v["@DataWarehouse.space.name"]
        for k, v in shared.items()
        if v.get("kind") == "context" and "@DataWarehouse.space.name" in v
    }
    layers = csn.get("businessLayerDefinitions") or {}
    documents = []
    for name, definition in definitions.items():
        if not isinstance(definition, dict) or definition.get("kind") != "entity":
            continue
        owner, technical_name, context = space, name, shared
        for prefix, other in foreign.items():
            if name.startswith(prefix + "."):
                owner, technical_name, context = other, name[len(prefix) + 1 :], {prefix: shared[prefix]}
        document = dict(header)
        document["definitions"] = {**context, name: definition}
        if name in layers:
            document["businessLayerDefinitions"] = {name: layers[name]}
        kind = object_type_of(technical_name, definition, set(layers))
        documents.append((owner, kind, technical_name, document))
    return documents


NOT_OBJECTS = ("i18n.json", "1_create_first_space.json")  # an i18n bundle and a space definition


def corpus_spaces(corpus: Path) -> dict[str, Path]:
    """One space per CSN file of the corpus, named after the file (upper case, `_`, at most 20 characters)."""
    spaces: dict[str, Path] = {}
    for path in sorted(corpus.glob("*.json")):
        if path.name in NOT_OBJECTS:
            continue
        space = re.sub(r"[^A-Z0-9]+", "_", path.stem.upper()).strip("_")[:20]
        assert space not in spaces, f"two corpus files map to space {space}"
        spaces[space] = path
    return spaces


def load_corpus(tenant: FakeTenant, corpus: Path, folder: Path) -> dict[str, Path]:
    """Store the corpus in the tenant, and link the same files as `folder/<SPACE>/<file>` for the CSN source."""
    spaces = corpus_spaces(corpus)
    for space, path in spaces.items():
        (folder / space).mkdir(parents=True, exist_ok=True)
        (folder / space / path.name).symlink_to(path)
        for owner, object_type, name, document in split_file(path, space):
            tenant.add_object(owner, object_type, name, document)
    return spaces
