"""An HTTP proxy in front of moto server that behaves like AWS Glue where moto does not.

It pages `GetTables` (MaxResults ≤ 100, NextToken over a snapshot), checks every request against Glue's
limits (recording violations and answering `InvalidInputException` as AWS would), enforces `VersionId` on
`UpdateTable`, injects throttling at a given rate and failures for chosen tables, and counts the operations
it sees on the wire.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MAX_PAGE = 100


def request_violations(operation: str, body: dict[str, Any]) -> list[str]:
    """What in one Glue request breaks AWS's documented limits."""
    problems: list[str] = []

    def name(value: Any, what: str) -> None:
        if not isinstance(value, str) or not 1 <= len(value.encode()) <= 255:
            problems.append(f"{operation}: {what} {value!r:.60} is not 1-255 bytes")
        elif value != value.lower():
            problems.append(f"{operation}: {what} {value!r} is not lowercase")

    def parameters(values: Any, what: str) -> None:
        for key, value in (values or {}).items():
            if not 1 <= len(key) <= 255 or not isinstance(value, str) or len(value) > 512_000:
                problems.append(f"{operation}: {what} parameter {key!r:.60} breaks the key/value limits")

    if "MaxResults" in body and not 1 <= body["MaxResults"] <= MAX_PAGE:
        problems.append(f"{operation}: MaxResults {body['MaxResults']} outside 1-100")
    if "DatabaseName" in body:
        name(body["DatabaseName"], "database name")
    if operation == "CreateDatabase":
        name(body["DatabaseInput"].get("Name"), "database name")
    if operation == "BatchDeleteTable" and not 1 <= len(body.get("TablesToDelete", [])) <= 100:
        problems.append(f"BatchDeleteTable: {len(body.get('TablesToDelete', []))} names (allowed 1-100)")
    table = body.get("TableInput")
    if table is not None:
        name(table.get("Name"), "table name")
        if len(table.get("Description") or "") > 2048:
            problems.append(f"{operation}: description longer than 2048")
        parameters(table.get("Parameters"), "table")
        descriptor = table.get("StorageDescriptor") or {}
        for column in [*(descriptor.get("Columns") or []), *(table.get("PartitionKeys") or [])]:
            name(column.get("Name"), "column name")
            comment = column.get("Comment") or ""
            if len(comment) > 255 or "\n" in comment or "\r" in comment:
                problems.append(f"{operation}: comment of column {column.get('Name')!r} breaks the limits")
            parameters(column.get("Parameters"), "column")
    return problems


class GlueProxy:
    """A threaded proxy on 127.0.0.1 forwarding Glue JSON requests to `upstream` (moto server)."""

    def __init__(self, upstream: str, *, seed: int = 7) -> None:
        self.upstream = urlsplit(upstream)
        self.throttle_rate = 0.0
        self.fail_tables: dict[str, tuple[int, str]] = {}
        # table name -> how many of its next writes answer 500 (before reaching moto)
        self.flaky_tables: Counter[str] = Counter()
        # table name -> how many of its next writes reach moto but lose the answer (connection dropped)
        self.lost_answers: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.violations: list[str] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.times: list[tuple[float, str]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._snapshots: dict[str, list[Any]] = {}
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                answer = proxy.handle(dict(self.headers.items()), raw)
                if answer is None:
                    self.close_connection = True
                    return
                status, headers, body = answer
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GlueProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.throttled.clear()
            self.requests.clear()
            self.times.clear()

    def window(self, operations: tuple[str, ...]) -> float:
        """Seconds from the first to the last request of the given operations."""
        with self._lock:
            stamps = [t for t, op in self.times if op in operations]
        return max(stamps) - min(stamps) if len(stamps) > 1 else 0.0

    # ------------------------------------------------------------------ request handling
    def handle(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes] | None:
        """The answer to one request, or None to drop the connection without one."""
        operation = headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        body = json.loads(raw or b"{}")
        with self._lock:
            self.counts[operation] += 1
            self.requests.append((operation, body))
            self.times.append((time.monotonic(), operation))
            throttle = self._rng.random() < self.throttle_rate
        if throttle:
            with self._lock:
                self.throttled[operation] += 1
            return _error(400, "ThrottlingException", "Rate exceeded")
        problems = request_violations(operation, body)
        if problems:
            with self._lock:
                self.violations.extend(problems)
            return _error(400, "InvalidInputException", "; ".join(problems))
        table_name = (body.get("TableInput") or {}).get("Name")
        is_write = operation in ("CreateTable", "UpdateTable")
        if table_name in self.fail_tables and is_write:
            status, code = self.fail_tables[table_name]
            return _error(status, code, f"injected failure for {table_name}")
        if is_write and self._take(self.flaky_tables, table_name):
            return _error(500, "InternalServiceException", f"injected transient failure for {table_name}")
        if is_write and self._take(self.lost_answers, table_name):
            self._forward(headers, raw)
            return None
        if operation == "UpdateTable" and "VersionId" in body:
            current = self._current_version(headers, body["DatabaseName"], table_name)
            if current is not None and current != body["VersionId"]:
                return _error(400, "ConcurrentModificationException", "VersionId is stale")
        if operation == "GetTables":
            return self._page(headers, body)
        return self._forward(headers, raw)

    def _take(self, budget: Counter[str], key: str | None) -> bool:
        """Use one unit of `budget[key]` if any is left."""
        with self._lock:
            if key is None or budget[key] <= 0:
                return False
            budget[key] -= 1
            return True

    def _current_version(self, headers: dict[str, str], database: str, table: str) -> str | None:
        status, _, answer = self._forward(
            {**headers, "X-Amz-Target": "AWSGlue.GetTable"},
            json.dumps({"DatabaseName": database, "Name": table}).encode(),
        )
        return json.loads(answer)["Table"].get("VersionId") if status == 200 else None

    def _page(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        size = int(body.get("MaxResults") or MAX_PAGE)
        token = body.get("NextToken")
        if token:
            with self._lock:
                snapshot = self._snapshots.get(token.split(":")[0])
            if snapshot is None:
                return _error(400, "InvalidInputException", "unknown NextToken")
            offset = int(token.split(":")[1])
        else:
            forward = {k: v for k, v in body.items() if k not in ("MaxResults", "NextToken")}
            status, answer_headers, answer = self._forward(headers, json.dumps(forward).encode())
            if status != 200:
                return status, answer_headers, answer
            snapshot, offset = json.loads(answer).get("TableList", []), 0
            key = uuid.uuid4().hex
            with self._lock:
                self._snapshots[key] = snapshot
            token = f"{key}:0"
        page: dict[str, Any] = {"TableList": snapshot[offset : offset + size]}
        if offset + size < len(snapshot):
            page["NextToken"] = f"{token.split(':')[0]}:{offset + size}"
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(page).encode()

    def _forward(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
            self._local.connection = connection
        send = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")}
        try:
            connection.request("POST", "/", body=body, headers=send)
            response = connection.getresponse()
        except (http.client.HTTPException, OSError):
            connection.close()
            connection.request("POST", "/", body=body, headers=send)
            response = connection.getresponse()
        answer = response.read()
        keep = {"Content-Type": response.getheader("Content-Type", "application/x-amz-json-1.1")}
        if response.getheader("x-amzn-ErrorType"):
            keep["x-amzn-ErrorType"] = response.getheader("x-amzn-ErrorType")
        return response.status, keep, answer


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code},
        json.dumps({"__type": code, "message": message}).encode(),
    )
