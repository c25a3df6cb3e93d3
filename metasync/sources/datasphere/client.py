"""HTTP access to a SAP Datasphere tenant: the only module of metasync that speaks HTTP.

It covers the OAuth2 client-credentials token (fetched once, cached until shortly before it expires, refreshed
once on a 401), retries of HTTP 429 and 5xx answers and of timeouts with exponential backoff that honours
`Retry-After`, paging (OData `@odata.nextLink`, or `$top`/`$skip` for endpoints that answer bare arrays),
the catalog's space list, the design-time object lists and the design-time CSN reads. A space given up by the
caller (`abandon_space`) gets no further request: waits before its retries end at once.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import quote, urljoin, urlsplit

import httpx

from metasync.config import DatasphereSourceConfig
from metasync.errors import ConfigError, ConnectorAuthError, SourceError
from metasync.sources.datasphere.documents import document_problem

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


class InvalidObjectDocument(SourceError):
    """A read answered with a body that is not the object's CSN: its space cannot be read in full."""

    def __init__(
        self, space: str, object_type: str, technical_name: str, endpoint: str, problem: str
    ) -> None:
        super().__init__(
            f"{endpoint} answered, but not with the CSN of {space}.{technical_name} ({object_type}): {problem}.",
            hint="Check the object in the tenant, and any proxy in front of the tenant; the space is read again "
            "on the next run.",
        )
        self.space = space
        self.technical_name = technical_name
        self.endpoint = endpoint


class SpaceAbandoned(SourceError):
    """A request of a space that has already failed for good was not sent (or not retried)."""

    def __init__(self, space: str) -> None:
        super().__init__(f"space {space} was given up after an earlier failure")
        self.space = space


@dataclass(frozen=True)
class ListedObject:
    """One design-time object as the tenant lists it; `changed_at` is set when the listing carries it."""

    space: str
    object_type: str
    technical_name: str
    changed_at: str | None = None


@dataclass(frozen=True)
class ObjectListing:
    """The objects of one type in one space, each once; `doubt` says why the list may not be whole."""

    objects: list[ListedObject]
    doubt: str | None = None


@dataclass(frozen=True)
class _Pages:
    """The items of a list endpoint by name, each once; `doubt` says why the list may not be whole."""

    items: dict[str, Any]
    doubt: str | None = None


def _listed(space: str, object_type: str, name: str, item: dict[str, Any]) -> ListedObject:
    changed = item.get("changedOn")
    return ListedObject(space, object_type, name, changed if isinstance(changed, str) else None)


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


def _repeats_tail(names: list[str], overlap: list[str], previous: list[str]) -> bool:
    """Whether a page's items already listed are the last items of the page before, repeated at its start (a
    server whose pages overlap by a few), rather than items from anywhere."""
    count = len(overlap)
    return names[:count] == overlap and previous[-count:] == overlap


class DatasphereClient:
    """A thread-safe client of one tenant; use it as a context manager to close its connections."""

    def __init__(
        self,
        config: DatasphereSourceConfig,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """`sleep` replaces the waits before retries (tests); by default they end early for abandoned spaces."""
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
        self._abandoned: set[str] = set()
        self._abandon_signal = threading.Condition()
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
        url = self._base + CATALOG_SPACES_PATH

        def name_of(item: Any) -> str:
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                raise SourceError(f"{url} returned a space without a 'name': {str(item)[:200]}")
            return name

        pages = self._paged(url, operation="ListSpaces", name_of=name_of)
        if pages.doubt:
            raise SourceError(f"{url}: {pages.doubt}; metasync cannot tell which spaces exist.")
        return sorted(pages.items)

    def list_objects(self, space: str, object_type: str) -> ObjectListing:
        """The design-time objects of one type in one space, each once (HTTP 403 raises `SpaceAccessDenied`)."""
        url = self.object_type_url(space, object_type)

        def name_of(item: Any) -> str:
            name = item.get("technicalName") if isinstance(item, dict) else None
            if not isinstance(name, str) or not name:
                raise SourceError(f"{url} listed an object without a 'technicalName': {str(item)[:200]}")
            return name

        pages = self._paged(
            url, operation="ListObjects", name_of=name_of, space=space, page_size=LIST_PAGE_SIZE
        )
        objects = [_listed(space, object_type, name, item) for name, item in pages.items.items()]
        return ObjectListing(objects, pages.doubt)

    def read_object(self, space: str, object_type: str, technical_name: str) -> dict[str, Any]:
        """The CSN document of one design-time object; a body that is not its CSN raises `InvalidObjectDocument`."""
        url = self.object_url(space, object_type, technical_name)
        body = self._get_json(url, operation="ReadObject", accept=CSN_ACCEPT, space=space)
        problem = document_problem(body, object_type, technical_name)
        if problem is not None:
            raise InvalidObjectDocument(space, object_type, technical_name, url, problem)
        assert isinstance(body, dict)  # checked by document_problem
        return body

    def abandon_space(self, space: str) -> None:
        """Give up on `space`: its requests are no longer sent, and those waiting for a retry stop."""
        with self._abandon_signal:
            self._abandoned.add(space)
            self._abandon_signal.notify_all()

    def object_type_url(self, space: str, object_type: str) -> str:
        """The design-time list endpoint of one object type in one space."""
        return self._base + DESIGN_TIME_PATH.format(space=quote(space, safe=""), object_type=object_type)

    def object_url(self, space: str, object_type: str, technical_name: str) -> str:
        """The design-time read endpoint of one object."""
        return self.object_type_url(space, object_type) + "/" + quote(technical_name, safe="")

    # ------------------------------------------------------------------ paging
    def _paged(
        self,
        url: str,
        *,
        operation: str,
        name_of: Callable[[Any], str],
        space: str | None = None,
        page_size: int | None = None,
    ) -> _Pages:
        """Every item of a list endpoint, once each by name, following `@odata.nextLink` or `$top`/`$skip`.

        With `$top`/`$skip`, a page shorter than `$top` does not end the list (a server may cap its pages lower):
        paging ends at an empty page. Servers that page wrongly must not loop or read an object twice: a page
        that brings no new name ends the list (once overlapping pages are ruled out), and when the server
        repeats its first page (it ignores `$skip`) the list is whole only if the server ignores `$top` too;
        otherwise `doubt` says that metasync cannot tell whether it got every item.
        """
        items: dict[str, Any] = {}
        first_names: set[str] = set()
        seen_links: set[str] = set()
        next_url, skip, stale_pages = url, 0, 0
        previous: list[str] = []
        doubt: str | None = None
        while True:
            skipping = bool(page_size) and next_url == url
            params = {"$top": page_size, "$skip": skip} if skipping else None
            page, link = self._page(next_url, operation=operation, space=space, params=params)
            target = urljoin(next_url, link) if link else None
            if target is not None and target in seen_links:
                raise SourceError(f"{url}: @odata.nextLink {target} points to a page already read.")
            names = [name_of(item) for item in page]
            fresh: dict[str, Any] = {}
            for name, item in zip(names, page, strict=True):
                if name not in items:
                    fresh.setdefault(name, item)
            stale_pages = stale_pages + 1 if page and not fresh else 0
            if stale_pages and not skipping:
                return _Pages(items, f"@odata.nextLink {next_url} brought only items already listed")
            if stale_pages and set(names) == first_names:  # the first page again: $skip is ignored
                return _Pages(items, self._ignored_skip_doubt(url, len(page), page_size, operation, space))
            if stale_pages > 1:
                return _Pages(items, f"its pages bring no new items from $skip={skip} on, yet are not empty")
            overlap = [name for name in names if name in items]
            if overlap and doubt is None and not _repeats_tail(names, overlap, previous):
                # Not the end of the last page again (a server off by some), but items from anywhere before: the
                # order changed between requests, and items may have moved past the pages already read.
                doubt = f"its pages at $skip={skip} repeat items of earlier pages out of order"
            items.update(fresh)
            first_names = first_names or set(names)
            previous = names
            if target is not None:
                seen_links.add(target)
                next_url = target
            elif skipping and page:
                skip += len(page)
            else:
                return _Pages(items, doubt)

    def _page(
        self, url: str, *, operation: str, space: str | None, params: dict[str, Any] | None
    ) -> tuple[list[Any], str | None]:
        """The items of one page and its `@odata.nextLink` (bare JSON arrays have none)."""
        body = self._get_json(url, operation=operation, space=space, params=params)
        if isinstance(body, list):
            return body, None
        if isinstance(body, dict) and isinstance(body.get("value"), list):
            link = body.get("@odata.nextLink")
            return body["value"], str(link) if link else None
        raise SourceError(f"{url} returned neither a JSON array nor an OData collection: {str(body)[:200]}")

    def _ignored_skip_doubt(
        self, url: str, length: int, page_size: int | None, operation: str, space: str | None
    ) -> str | None:
        """Why a list whose server ignores `$skip` may be incomplete, or None when its first page was the whole
        list: the server ignores `$top` as well (it sent more than asked, or more than a smaller `$top`)."""
        if page_size is None or length > page_size:
            return None
        if length > 1:
            probe, _ = self._page(
                url, operation=operation, space=space, params={"$top": length - 1, "$skip": 0}
            )
            if len(probe) >= length:
                return None
        return (
            f"the server ignores $skip and answers the same {length} items on every page, fewer than or as many "
            f"as the $top={page_size} asked for; metasync cannot tell whether that is the whole list"
        )

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
            if space is not None and self._is_abandoned(space):
                raise SpaceAbandoned(space)
            token = self._access_token()
            self._count(self.calls, operation)
            try:
                response = self._http.get(
                    url, params=params, headers={"Authorization": f"Bearer {token}", "Accept": accept}
                )
            except httpx.TimeoutException as exc:
                attempt = self._retry_or_raise(
                    attempt,
                    operation,
                    None,
                    f"{url} did not answer within {self._config.timeout:g} s",
                    exc,
                    space=space,
                )
                continue
            except httpx.TransportError as exc:
                attempt = self._retry_or_raise(
                    attempt, operation, None, f"cannot reach {url} ({type(exc).__name__})", exc, space=space
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
                    attempt,
                    operation,
                    response,
                    f"{url} answered HTTP {status} {_body_excerpt(response)}",
                    space=space,
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
        *,
        space: str | None = None,
    ) -> int:
        """Wait before the next attempt, or raise once `max_retries` retries are spent."""
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
        self._wait(delay, space)
        return attempt

    def _is_abandoned(self, space: str) -> bool:
        with self._abandon_signal:
            return space in self._abandoned

    def _wait(self, delay: float, space: str | None) -> None:
        """Wait `delay` seconds, or less when `space` is abandoned meanwhile (its next attempt then stops)."""
        if self._sleep is not None:
            self._sleep(delay)
            return
        with self._abandon_signal:
            self._abandon_signal.wait_for(
                lambda: space is not None and space in self._abandoned, timeout=delay
            )

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
