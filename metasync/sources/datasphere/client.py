"""HTTP access to a SAP Datasphere tenant: the only module of metasync that speaks HTTP.

It covers the OAuth2 client-credentials token (fetched once, cached until shortly before it expires, refreshed
once on a 401), retries of HTTP 429 and 5xx answers and of timeouts with exponential backoff that honours
`Retry-After`, paging (OData `@odata.nextLink`, or `$top`/`$skip` for endpoints that answer bare arrays),
the catalog's space list, the design-time object lists and the design-time CSN reads.

The client secret is held as a `SecretStr` and only revealed to build the token request; no message, log
record or exception raised here contains it.
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote, urljoin, urlsplit

import httpx

from metasync.config import DatasphereSourceConfig
from metasync.errors import ConfigError, ConnectorAuthError, SourceError

log = logging.getLogger(__name__)

CATALOG_SPACES_PATH = "/api/v1/datasphere/consumption/catalog/spaces"
DESIGN_TIME_PATH = "/dwaas-core/api/v1/spaces/{space}/{object_type}"
CSN_ACCEPT = "application/vnd.sap.datasphere.object.content+json"
LIST_PAGE_SIZE = 200
TOKEN_REFRESH_MARGIN = 0.1  # refresh once 90 % of a token's lifetime has passed
DEFAULT_TOKEN_LIFETIME = 3600.0

_TENANT_HOST = re.compile(r"^(?P<tenant>[^.]+)\.(?P<region>[^.]+)\.hcs\.cloud\.sap$")


class SpaceAccessDenied(SourceError):
    """The technical user may not read a space (HTTP 403): the space is skipped, the run is partial."""

    def __init__(self, space: str, endpoint: str) -> None:
        super().__init__(
            f"the technical user is not a member of space {space}",
            hint=f"Add the OAuth client's technical user to space {space} in Space Management "
            f"(answer HTTP 403 from {endpoint}), or leave {space} out of source.spaces.",
        )
        self.space = space
        self.endpoint = endpoint


class ObjectNotFound(SourceError):
    """An endpoint answered HTTP 404 (an object deleted while reading, an object type the tenant lacks)."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"{endpoint} answered HTTP 404 (not found)")
        self.endpoint = endpoint


@dataclass(frozen=True)
class ListedObject:
    """One design-time object as the tenant lists it; `changed_at` is set when the listing carries it."""

    space: str
    object_type: str
    technical_name: str
    changed_at: str | None = None


def derive_token_url(url: str) -> str:
    """The OAuth token endpoint of a tenant URL `https://<tenant>.<region>.hcs.cloud.sap`."""
    host = urlsplit(url).hostname or ""
    match = _TENANT_HOST.match(host)
    if not match:
        raise ConfigError(
            f"source.token_url is not set and cannot be derived from source.url '{url}' "
            "(expected https://<tenant>.<region>.hcs.cloud.sap).",
            hint="Set source.token_url to the token URL shown with the OAuth client in App Integration.",
        )
    return f"https://{match['tenant']}.authentication.{match['region']}.hana.ondemand.com/oauth/token"


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """The delay a `Retry-After` header asks for (seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body_excerpt(response: httpx.Response, limit: int = 200) -> str:
    text = " ".join(response.text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


class DatasphereClient:
    """A thread-safe client of one tenant; use it as a context manager to close its connections."""

    def __init__(
        self,
        config: DatasphereSourceConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._base = config.url.rstrip("/")
        self._token_url = config.token_url or derive_token_url(config.url)
        self._sleep = sleep
        self._http = httpx.Client(
            timeout=config.timeout,
            limits=httpx.Limits(
                max_connections=config.max_workers, max_keepalive_connections=config.max_workers
            ),
            follow_redirects=False,
        )
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._count_lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    @property
    def base_url(self) -> str:
        """The tenant URL without a trailing slash."""
        return self._base

    # ------------------------------------------------------------------ public reads
    def list_spaces(self) -> list[str]:
        """The names of every space the technical user can see, from the catalog API."""
        names = []
        for item in self._paged(self._base + CATALOG_SPACES_PATH, operation="ListSpaces"):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                raise SourceError(
                    f"{self._base}{CATALOG_SPACES_PATH} returned a space without a 'name': {str(item)[:200]}"
                )
            names.append(name)
        return sorted(set(names))

    def list_objects(self, space: str, object_type: str) -> list[ListedObject]:
        """The design-time objects of one type in one space (HTTP 403 raises `SpaceAccessDenied`)."""
        url = self.object_type_url(space, object_type)
        objects = []
        for item in self._paged(url, operation="ListObjects", space=space, page_size=LIST_PAGE_SIZE):
            name = item.get("technicalName") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                raise SourceError(f"{url} listed an object without a 'technicalName': {str(item)[:200]}")
            changed = item.get("changedOn")
            objects.append(
                ListedObject(space, object_type, name, changed if isinstance(changed, str) else None)
            )
        return objects

    def read_object(self, space: str, object_type: str, technical_name: str) -> dict[str, Any]:
        """The CSN document of one design-time object."""
        url = self.object_url(space, object_type, technical_name)
        body = self._get_json(url, operation="ReadObject", accept=CSN_ACCEPT, space=space)
        if not isinstance(body, dict):
            raise SourceError(f"{url} did not return a JSON object (got {type(body).__name__}).")
        return body

    def object_type_url(self, space: str, object_type: str) -> str:
        """The design-time list endpoint of one object type in one space."""
        return self._base + DESIGN_TIME_PATH.format(space=quote(space, safe=""), object_type=object_type)

    def object_url(self, space: str, object_type: str, technical_name: str) -> str:
        """The design-time read endpoint of one object."""
        return self.object_type_url(space, object_type) + "/" + quote(technical_name, safe="")

    # ------------------------------------------------------------------ paging
    def _paged(
        self, url: str, *, operation: str, space: str | None = None, page_size: int | None = None
    ) -> Iterator[Any]:
        """Every item of a list endpoint, following `@odata.nextLink` or `$top`/`$skip` paging.

        With `$top`/`$skip`, a page shorter than `$top` does not end the list (a server may cap its pages
        lower): paging ends at an empty page, or when the server ignores `$skip` after sending everything.
        """
        seen_links: set[str] = set()
        next_url: str | None = url
        skip = 0
        previous_first: Any = None
        previous_length = 0
        while next_url is not None:
            params = {"$top": page_size, "$skip": skip} if page_size and next_url == url else None
            body = self._get_json(next_url, operation=operation, space=space, params=params)
            if isinstance(body, list):
                page = body
                link = None
            elif isinstance(body, dict) and isinstance(body.get("value"), list):
                page = body["value"]
                link = body.get("@odata.nextLink")
            else:
                raise SourceError(
                    f"{next_url} returned neither a JSON array nor an OData collection: {str(body)[:200]}"
                )
            if page and skip and page[0] == previous_first:
                if page_size and previous_length != page_size:
                    break  # $top and $skip ignored: the first answer was the whole list
                raise SourceError(f"{url} ignores $skip: the same page came back twice.")
            yield from page
            if link:
                target = urljoin(next_url, str(link))
                if target in seen_links:
                    raise SourceError(f"{url}: @odata.nextLink {target} points to a page already read.")
                seen_links.add(target)
                next_url = target
            elif page_size and next_url == url and page:
                previous_first, previous_length = page[0], len(page)
                skip += len(page)
            else:
                next_url = None

    # ------------------------------------------------------------------ requests
    def _count(self, counter: Counter[str], operation: str) -> None:
        with self._count_lock:
            counter[operation] += 1

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        delay = _retry_after_seconds(response) if response is not None else None
        if delay is None:
            delay = self._config.retry_backoff * (2 ** (attempt - 1))
        return min(delay, self._config.max_backoff)

    def _get_json(
        self,
        url: str,
        *,
        operation: str,
        accept: str = "application/json",
        space: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = self._get(url, operation=operation, accept=accept, space=space, params=params)
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(
                f"{url} did not return JSON (content type '{response.headers.get('content-type', '')}').",
                hint="Check source.url: a proxy or login page may be answering instead of the tenant.",
            ) from exc

    def _get(
        self,
        url: str,
        *,
        operation: str,
        accept: str,
        space: str | None,
        params: dict[str, Any] | None,
    ) -> httpx.Response:
        """GET with the bearer token, one token refresh on 401 and retries of transient failures."""
        refreshed = False
        attempt = 0
        while True:
            token = self._access_token()
            self._count(self.calls, operation)
            try:
                response = self._http.get(
                    url, params=params, headers={"Authorization": f"Bearer {token}", "Accept": accept}
                )
            except httpx.TimeoutException as exc:
                attempt = self._retry_or_raise(
                    attempt, operation, None, f"{url} did not answer within {self._config.timeout:g} s", exc
                )
                continue
            except httpx.TransportError as exc:
                attempt = self._retry_or_raise(
                    attempt, operation, None, f"cannot reach {url} ({type(exc).__name__})", exc
                )
                continue
            status = response.status_code
            if status == 401:
                if refreshed:
                    raise ConnectorAuthError(
                        f"{url} refused a freshly issued token of OAuth client '{self._config.client_id}' "
                        "(HTTP 401).",
                        hint="Check that the OAuth client has the purpose 'Technical User' and the roles "
                        "needed to read the catalog and the design-time objects.",
                    )
                log.info("HTTP 401 from %s: refreshing the OAuth token once", url)
                self._drop_token(token)
                refreshed = True
                continue
            if status == 403 and space is not None:
                raise SpaceAccessDenied(space, url)
            if status == 403:
                raise ConnectorAuthError(
                    f"{url} answered HTTP 403: OAuth client '{self._config.client_id}' may not read it.",
                    hint="Give the technical user a role with catalog read privileges (e.g. DW Viewer).",
                )
            if status == 404:
                raise ObjectNotFound(url)
            if status == 429 or status >= 500:
                attempt = self._retry_or_raise(
                    attempt, operation, response, f"{url} answered HTTP {status} {_body_excerpt(response)}"
                )
                continue
            if status >= 400:
                raise SourceError(f"{url} answered HTTP {status}: {_body_excerpt(response)}")
            return response

    def _retry_or_raise(
        self,
        attempt: int,
        operation: str,
        response: httpx.Response | None,
        problem: str,
        cause: Exception | None = None,
    ) -> int:
        """Sleep before the next attempt, or raise once `max_retries` retries are spent."""
        attempt += 1
        if attempt > self._config.max_retries:
            raise SourceError(
                f"{problem.strip()}; gave up after {attempt} attempts.",
                hint="The tenant is unavailable or throttling; try again later, or raise source.max_retries "
                "or source.timeout.",
            ) from cause
        delay = self._backoff(attempt, response)
        log.warning("%s; retry %d of %d in %.2f s", problem.strip(), attempt, self._config.max_retries, delay)
        self._count(self.retries, operation)
        self._sleep(delay)
        return attempt

    # ------------------------------------------------------------------ OAuth
    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token_expires_at:
                self._token, lifetime = self._fetch_token()
                self._token_expires_at = time.monotonic() + lifetime * (1 - TOKEN_REFRESH_MARGIN)
            return self._token

    def _drop_token(self, stale: str) -> None:
        with self._token_lock:
            if self._token == stale:
                self._token = None

    def _fetch_token(self) -> tuple[str, float]:
        """A new access token and its lifetime in seconds (client-credentials grant)."""
        attempt = 0
        while True:
            self._count(self.calls, "Token")
            try:
                response = self._http.post(
                    self._token_url,
                    data={"grant_type": "client_credentials"},
                    auth=(self._config.client_id, self._config.client_secret.get_secret_value()),
                    headers={"Accept": "application/json"},
                )
            except httpx.TimeoutException as exc:
                attempt = self._retry_or_raise(
                    attempt, "Token", None, f"the token endpoint {self._token_url} timed out", exc
                )
                continue
            except httpx.TransportError as exc:
                attempt = self._retry_or_raise(
                    attempt, "Token", None, f"cannot reach the token endpoint {self._token_url}", exc
                )
                continue
            if response.status_code == 429 or response.status_code >= 500:
                attempt = self._retry_or_raise(
                    attempt,
                    "Token",
                    response,
                    f"the token endpoint {self._token_url} answered HTTP {response.status_code}",
                )
                continue
            if response.status_code in (400, 401, 403):
                raise ConnectorAuthError(
                    f"the token endpoint {self._token_url} refused OAuth client '{self._config.client_id}' "
                    f"(HTTP {response.status_code}).",
                    hint="Check source.client_id and source.client_secret, and that the OAuth client uses "
                    "the client-credentials grant (purpose 'Technical User').",
                )
            if response.status_code >= 300:
                raise SourceError(
                    f"the token endpoint {self._token_url} answered HTTP {response.status_code}.",
                    hint="Check source.token_url.",
                )
            try:
                body = response.json()
                token = body["access_token"]
            except (ValueError, KeyError, TypeError) as exc:
                raise SourceError(
                    f"the token endpoint {self._token_url} did not return an 'access_token'.",
                    hint="Check source.token_url: it must be the tenant's OAuth token URL.",
                ) from exc
            lifetime = body.get("expires_in", DEFAULT_TOKEN_LIFETIME)
            try:
                lifetime = float(lifetime)
            except (TypeError, ValueError):
                lifetime = DEFAULT_TOKEN_LIFETIME
            return str(token), lifetime
