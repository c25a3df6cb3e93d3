"""Calls to the Glue API: a shared token-bucket rate limit, counting, and retries with full-jitter backoff.

Every attempt (retries included) passes the rate limit and is counted by its Glue operation name, so the
counts in summary.json are what AWS saw. botocore's own retries are switched off by the target.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from metasync.targets.base import CallCounter

log = logging.getLogger(__name__)

THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
SERVER_ERROR_CODES = frozenset({"InternalServiceException", "InternalFailure", "ServiceUnavailable"})
CONCURRENT_MODIFICATION = "ConcurrentModificationException"
CONNECTION_ERROR = "ConnectionError"
# Attempts before a connection error counts as "the endpoint cannot be reached" when no call has answered yet.
UNREACHED_ATTEMPTS = 3


class TokenBucket:
    """Allows `rate` acquisitions per second on average, with bursts of at most `capacity`.

    Thread-safe; a caller that finds the bucket empty reserves the next token and sleeps until it is due,
    so waiting callers are served in arrival order and the long-run rate never exceeds `rate`.
    """

    def __init__(
        self, rate: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else 1.0)
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token and return how many seconds the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> None:
        """Block until one call may be made."""
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)


class GlueCallError(Exception):
    """A Glue call failed for good: its operation, AWS error code, message and HTTP status (if any)."""

    def __init__(
        self, operation: str, code: str, message: str, status: int | None = None, attempts: int = 1
    ) -> None:
        super().__init__(operation, code, message)
        self.operation = operation
        self.code = code
        self.message = message
        self.status = status
        self.attempts = attempts

    def __str__(self) -> str:
        return f"{self.operation} failed with {self.code}: {self.message}"


def error_of(exc: Exception) -> tuple[str, str, int | None]:
    """The AWS error code, message and HTTP status of a botocore exception."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(error.get("Code") or "Unknown"), str(error.get("Message") or exc), status
    if isinstance(exc, (BotocoreConnectionError, HTTPClientError)):
        return CONNECTION_ERROR, str(exc), None
    return type(exc).__name__, str(exc), None


def is_retryable(code: str, status: int | None) -> bool:
    """Whether a failure is transient: throttling, a 5xx, a concurrent modification or a lost connection."""
    return (
        code in THROTTLING_CODES
        or code in SERVER_ERROR_CODES
        or code in (CONCURRENT_MODIFICATION, CONNECTION_ERROR)
        or (status is not None and status >= 500)
    )


class GlueCaller:
    """Makes Glue calls through one boto3 client under a rate limit, counting and retrying them.

    `max_retry_seconds` bounds the time one logical call may spend retrying; backoff is exponential with
    full jitter (a random wait between 0 and `base * 2**attempt`, capped at `max_backoff`).
    """

    def __init__(
        self,
        client: Any,
        *,
        calls: CallCounter,
        rate: float,
        burst: float,
        max_retry_seconds: float,
        base_backoff: float = 0.05,
        max_backoff: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.calls = calls
        self.bucket = TokenBucket(rate, burst)
        self.max_retry_seconds = max_retry_seconds
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._count_lock = threading.Lock()
        self.reached = False

    def _count(self, operation: str, retry: bool) -> None:
        with self._count_lock:
            self.calls.add(operation)
            if retry:
                self.calls.retries[operation] += 1

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): full jitter over an exponential cap."""
        return self._rng.uniform(0.0, min(self.max_backoff, self.base_backoff * 2.0**attempt))

    def call(
        self,
        operation: str,
        method: str,
        *,
        on_conflict: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call `client.<method>(**kwargs)` (Glue operation `operation`) until it succeeds or stops being transient.

        On `ConcurrentModificationException`, `on_conflict(kwargs)` returns the arguments to retry with (for
        example a fresh `VersionId`) or None to give up. Raises `GlueCallError` when the call fails for good.
        """
        deadline = time.monotonic() + self.max_retry_seconds
        attempt = 0
        while True:
            self.bucket.acquire()
            self._count(operation, retry=attempt > 0)
            attempt += 1
            try:
                response = dict(getattr(self.client, method)(**kwargs))
                self.reached = True
                return response
            except ClientError as exc:
                self.reached = True
                code, message, status = error_of(exc)
            except (BotocoreConnectionError, HTTPClientError) as exc:
                code, message, status = error_of(exc)
            if not is_retryable(code, status) or (
                code == CONNECTION_ERROR and not self.reached and attempt >= UNREACHED_ATTEMPTS
            ):
                raise GlueCallError(operation, code, message, status, attempt)
            if code == CONCURRENT_MODIFICATION:
                retry_with = on_conflict(kwargs) if on_conflict is not None else None
                if retry_with is None:
                    raise GlueCallError(operation, code, message, status, attempt)
                kwargs = retry_with
            wait = self.backoff(attempt)
            if time.monotonic() + wait > deadline:
                raise GlueCallError(
                    operation,
                    code,
                    f"{message} (gave up after {attempt} attempts in {self.max_retry_seconds:g} s)",
                    status,
                    attempt,
                )
            log.debug("%s: %s, retry %d in %.3f s", operation, code, attempt, wait)
            time.sleep(wait)
