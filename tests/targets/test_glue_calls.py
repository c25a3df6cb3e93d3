"""Small units of the Glue target: token bucket, backoff, retry policy (stub client), limit checks."""

from __future__ import annotations

import json
import random
from typing import Any

import polars as pl
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given, settings
from hypothesis import strategies as st

from metasync.targets.base import CallCounter
from metasync.targets.glue_calls import GlueCaller, GlueCallError, TokenBucket
from metasync.targets.glue_limits import limit_violations, parameter_violation


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_spaces_calls_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, capacity=2.0, clock=clock)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])
    clock.now += 10.0
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.5, 500),
    capacity=st.floats(1, 20),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=80),
)
def test_token_bucket_never_exceeds_rate_plus_burst(rate: float, capacity: float, gaps: list[float]) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, capacity=capacity, clock=clock)
    used = []
    for gap in gaps:
        clock.now += gap
        used.append(clock.now + bucket.reserve())
    used.sort()
    for i, start in enumerate(used):
        for j in range(i, len(used)):
            window = used[j] - start
            assert j - i + 1 <= capacity + rate * window + 1e-6


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


class StubClient:
    """Answers `get_table` from a script of exceptions and finally a response."""

    def __init__(self, script: list[Exception | dict[str, Any]]) -> None:
        self.script = script
        self.seen: list[dict[str, Any]] = []

    def get_table(self, **kwargs: Any) -> dict[str, Any]:
        self.seen.append(kwargs)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


def _caller(client: StubClient, max_retry_seconds: float = 5.0) -> GlueCaller:
    return GlueCaller(
        client,
        calls=CallCounter(),
        rate=10_000,
        burst=100,
        max_retry_seconds=max_retry_seconds,
        base_backoff=0.001,
        max_backoff=0.002,
        rng=random.Random(1),
    )


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    caller = GlueCaller(
        StubClient([{}]),
        calls=CallCounter(),
        rate=1,
        burst=1,
        max_retry_seconds=1,
        base_backoff=0.1,
        max_backoff=1.0,
        rng=random.Random(3),
    )
    for attempt in range(1, 8):
        waits = [caller.backoff(attempt) for _ in range(200)]
        cap = min(1.0, 0.1 * 2**attempt)
        assert 0 <= min(waits) and max(waits) <= cap
        assert max(waits) > cap / 2


@pytest.mark.parametrize("code,status", [("ThrottlingException", 400), ("InternalServiceException", 500)])
def test_transient_errors_are_retried_and_counted(code: str, status: int) -> None:
    client = StubClient([_client_error(code, status), _client_error(code, status), {"Table": {}}])
    caller = _caller(client)
    assert caller.call("GetTable", "get_table", Name="t") == {"Table": {}}
    assert caller.calls.counts["GetTable"] == 3
    assert caller.calls.retries["GetTable"] == 2


def test_permanent_errors_are_not_retried() -> None:
    caller = _caller(StubClient([_client_error("AccessDeniedException")]))
    with pytest.raises(GlueCallError) as caught:
        caller.call("GetTable", "get_table", Name="t")
    assert (caught.value.code, caught.value.attempts) == ("AccessDeniedException", 1)
    assert caller.calls.counts["GetTable"] == 1 and not caller.calls.retries


def test_retrying_stops_at_the_time_bound() -> None:
    caller = _caller(StubClient([_client_error("ThrottlingException")]), max_retry_seconds=0.05)
    with pytest.raises(GlueCallError, match="gave up after"):
        caller.call("GetTable", "get_table", Name="t")
    assert caller.calls.retries["GetTable"] >= 1


def test_unreachable_endpoint_gives_up_after_a_few_attempts() -> None:
    caller = _caller(StubClient([EndpointConnectionError(endpoint_url="http://127.0.0.1:9")]))
    with pytest.raises(GlueCallError) as caught:
        caller.call("GetTable", "get_table", Name="t")
    assert caught.value.code == "ConnectionError" and caught.value.attempts == 3


def test_concurrent_modification_retries_with_what_on_conflict_returns() -> None:
    client = StubClient([_client_error("ConcurrentModificationException"), {"ok": True}])
    caller = _caller(client)
    assert caller.call("GetTable", "get_table", on_conflict=lambda sent: {**sent, "VersionId": "7"}, Name="t")
    assert client.seen == [{"Name": "t"}, {"Name": "t", "VersionId": "7"}]

    refusing = _caller(StubClient([_client_error("ConcurrentModificationException")]))
    with pytest.raises(GlueCallError, match="ConcurrentModificationException"):
        refusing.call("GetTable", "get_table", on_conflict=lambda sent: None, Name="t")


def test_limit_violations_name_the_problem_and_pass_good_rows() -> None:
    def row(table: str, **body: Any) -> dict[str, str]:
        return {
            "glue_database": "db",
            "glue_table": table,
            "table_input": json.dumps({"Name": table, **body}),
        }

    frame = pl.DataFrame(
        [
            row(
                "good",
                StorageDescriptor={"Columns": [{"Name": "a", "Type": "int", "Parameters": {"k": "v"}}]},
            ),
            row(
                "dup",
                StorageDescriptor={"Columns": [{"Name": "a", "Type": "int"}, {"Name": "a", "Type": "int"}]},
            ),
            row("part", PartitionKeys=[{"Name": "P", "Type": "int"}]),
            row("untyped", StorageDescriptor={"Columns": [{"Name": "a"}]}),
            {"glue_database": "db\n", "glue_table": "x", "table_input": json.dumps({"Name": "x"})},
        ]
    )
    found = limit_violations(frame).to_list()
    assert found[0] is None
    assert "share one name" in found[1]
    assert "column 'P'" in found[2]
    assert "column 'a'" in found[3]
    assert "database name" in found[4]


def test_parameter_violation() -> None:
    assert parameter_violation({"a": "b"}) is None
    assert "512000" in str(parameter_violation({"a": "x" * 512_001}))
    assert "1-255" in str(parameter_violation({"k" * 256: "v"}))
    assert "not a string" in str(parameter_violation({"n": 1}))
