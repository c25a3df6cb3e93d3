"""The HTTP client against the fake tenant: OAuth, retries, paging, quoting, failure modes."""

from __future__ import annotations

import email.utils
import time

import pytest

from metasync.config import DatasphereSourceConfig
from metasync.errors import ConfigError, ConnectorAuthError, SourceError
from metasync.sources.datasphere.client import (
    DatasphereClient,
    ObjectListing,
    ObjectNotFound,
    SpaceAccessDenied,
    derive_token_url,
)

from . import datasphere_tenant
from .datasphere_tenant import FakeTenant


def make_client(
    tenant: FakeTenant, sleeps: list[float] | None = None, **overrides: object
) -> DatasphereClient:
    config = DatasphereSourceConfig.model_validate(tenant.source_config(**overrides))
    if sleeps is None:
        return DatasphereClient(config)
    return DatasphereClient(config, sleep=sleeps.append)


def table(name: str) -> dict:
    return {
        "definitions": {name: {"kind": "entity", "elements": {"ID": {"type": "cds.Integer", "key": True}}}}
    }


def test_token_url_is_derived_from_the_tenant_url() -> None:
    assert (
        derive_token_url("https://acme-dev.eu10.hcs.cloud.sap/")
        == "https://acme-dev.authentication.eu10.hana.ondemand.com/oauth/token"
    )
    with pytest.raises(ConfigError, match="token_url"):
        derive_token_url("http://127.0.0.1:8080")


def test_one_token_serves_many_requests(tenant: FakeTenant) -> None:
    for i in range(5):
        tenant.add_object("SALES", "localtables", f"T{i}", table(f"T{i}"))
    with make_client(tenant) as client:
        listed = client.list_objects("SALES", "localtables").objects
        docs = [client.read_object("SALES", "localtables", o.technical_name) for o in listed]
    assert [d["definitions"] for d in docs] == [table(f"T{i}")["definitions"] for i in range(5)]
    assert len(tenant.calls("POST", "/oauth/token")) == 1
    assert client.calls["Token"] == 1
    gets = tenant.calls("GET", "/dwaas-core/")
    assert all(r.headers["authorization"] == "Bearer token-1" for r in gets)
    reads = tenant.calls("GET", "/localtables/T")
    assert {r.headers["accept"] for r in reads} == {"application/vnd.sap.datasphere.object.content+json"}


def test_client_credentials_are_sent_to_the_token_endpoint(tenant: FakeTenant) -> None:
    tenant.add_space("SALES")
    with make_client(tenant) as client:
        client.list_objects("SALES", "views")
    (token_call,) = tenant.calls("POST", "/oauth/token")
    assert token_call.headers["authorization"].startswith("Basic ")
    assert token_call.headers["content-type"] == "application/x-www-form-urlencoded"


def test_expired_token_is_refreshed_once_and_the_request_retried(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    with make_client(tenant) as client:
        client.read_object("SALES", "views", "V")
        tenant.expire_tokens()
        doc = client.read_object("SALES", "views", "V")
    assert doc == table("V")
    assert len(tenant.calls("POST", "/oauth/token")) == 2
    statuses = [r.status for r in tenant.calls("GET", "/views/V")]
    assert statuses == [200, 401, 200]


def test_token_is_renewed_before_it_expires(tenant: FakeTenant) -> None:
    tenant.token_lifetime = 1
    tenant.add_object("SALES", "views", "V", table("V"))
    with make_client(tenant) as client:
        client.read_object("SALES", "views", "V")
        time.sleep(0.95)
        client.read_object("SALES", "views", "V")
    assert len(tenant.calls("POST", "/oauth/token")) == 2
    assert [r.status for r in tenant.calls("GET", "/views/V")] == [200, 200]


def test_a_second_401_after_refresh_is_an_auth_error(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    tenant.fail(r"/views/V$", 401, times=2)
    with make_client(tenant) as client, pytest.raises(ConnectorAuthError) as caught:
        client.read_object("SALES", "views", "V")
    assert "/views/V" in str(caught.value) and tenant.client_id in str(caught.value)
    assert tenant.client_secret not in str(caught.value)
    assert len(tenant.calls("POST", "/oauth/token")) == 2


def test_wrong_secret_is_refused_without_revealing_it(tenant: FakeTenant) -> None:
    tenant.add_space("SALES")
    with (
        make_client(tenant, client_secret="wrong-Secret-0042") as client,
        pytest.raises(ConnectorAuthError) as caught,
    ):
        client.list_objects("SALES", "views")
    message = str(caught.value) + repr(caught.value) + repr(caught.value.__cause__)
    assert "token endpoint" in message and tenant.token_url in message
    assert "wrong-Secret-0042" not in message
    assert caught.value.exit_code == 3


def test_429_waits_as_long_as_retry_after_says(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    tenant.fail(r"/views/V$", 429, headers={"Retry-After": "3"})
    sleeps: list[float] = []
    with make_client(tenant, sleeps) as client:
        assert client.read_object("SALES", "views", "V") == table("V")
    assert sleeps == [2.0]  # Retry-After 3 s, capped by max_backoff
    assert [r.status for r in tenant.calls("GET", "/views/V")] == [429, 200]
    assert client.retries["ReadObject"] == 1


def test_retry_after_as_http_date_is_honoured(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    tenant.fail(r"/views/V$", 429, headers={"Retry-After": when})
    sleeps: list[float] = []
    with make_client(tenant, sleeps, max_backoff=120) as client:
        client.read_object("SALES", "views", "V")
    assert len(sleeps) == 1 and 25 <= sleeps[0] <= 31


def test_429_retry_after_really_delays_the_next_attempt(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    tenant.fail(r"/views/V$", 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    with make_client(tenant) as client:
        client.read_object("SALES", "views", "V")
    assert time.monotonic() - started >= 1.0


def test_500_recovers_with_exponential_backoff(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    tenant.fail(r"/views/V$", 500, times=3)
    sleeps: list[float] = []
    with make_client(tenant, sleeps, retry_backoff=0.5) as client:
        assert client.read_object("SALES", "views", "V") == table("V")
    assert sleeps == [0.5, 1.0, 2.0]
    assert [r.status for r in tenant.calls("GET", "/views/V")] == [500, 500, 500, 200]


def test_persistent_503_gives_up_naming_the_endpoint(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    tenant.fail(r"/views/V$", 503, times=100)
    with make_client(tenant, [], max_retries=2) as client, pytest.raises(SourceError) as caught:
        client.read_object("SALES", "views", "V")
    assert "/dwaas-core/api/v1/spaces/SALES/views/V" in str(caught.value)
    assert "3 attempts" in str(caught.value)
    assert len(tenant.calls("GET", "/views/V")) == 3


def test_timeouts_are_retried(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"))
    tenant.fail(r"/views/V$", 200, delay=0.6)
    with make_client(tenant, [], timeout=0.2) as client:
        assert client.read_object("SALES", "views", "V") == table("V")
    assert client.retries["ReadObject"] == 1


def test_unreachable_tenant_is_a_source_error(tenant: FakeTenant) -> None:
    config = tenant.source_config(url="http://127.0.0.1:9", max_retries=1)
    with DatasphereClient(DatasphereSourceConfig.model_validate(config), sleep=lambda _s: None) as client:
        tenant.add_space("SALES")
        # the token endpoint is reachable, the tenant is not
        with pytest.raises(SourceError, match=r"cannot reach http://127\.0\.0\.1:9/dwaas-core"):
            client.list_objects("SALES", "views")


def test_403_on_a_space_names_the_space(tenant: FakeTenant) -> None:
    tenant.forbidden.add("HR")
    with make_client(tenant) as client, pytest.raises(SpaceAccessDenied) as caught:
        client.list_objects("HR", "views")
    assert caught.value.space == "HR"
    assert caught.value.message == "the technical user is not a member of space HR"
    assert "Space Management" in (caught.value.hint or "")


def test_404_is_reported_as_not_found(tenant: FakeTenant) -> None:
    tenant.add_space("SALES")
    with make_client(tenant) as client, pytest.raises(ObjectNotFound):
        client.read_object("SALES", "views", "GONE")


def test_catalog_spaces_follow_next_links(tenant: FakeTenant) -> None:
    for space in ("E", "D", "C", "B", "A"):
        tenant.add_space(space)
    with make_client(tenant) as client:
        assert client.list_spaces() == ["A", "B", "C", "D", "E"]
    pages = tenant.calls("GET", "/catalog/spaces")
    assert len(pages) == 3
    assert [p.query.get("$skiptoken") for p in pages] == [None, ["2"], ["4"]]


def test_catalog_spaces_as_a_bare_array(tenant: FakeTenant) -> None:
    tenant.catalog_as_array = True
    for space in ("B", "A", "C"):
        tenant.add_space(space)
    with make_client(tenant) as client:
        assert client.list_spaces() == ["A", "B", "C"]
    assert len(tenant.calls("GET", "/catalog/spaces")) == 1


def test_catalog_refused_is_an_auth_error(tenant: FakeTenant) -> None:
    tenant.fail(r"/catalog/spaces$", 403)
    with make_client(tenant) as client, pytest.raises(ConnectorAuthError) as caught:
        client.list_spaces()
    assert "/api/v1/datasphere/consumption/catalog/spaces" in str(caught.value)
    assert caught.value.exit_code == 3


def test_design_time_lists_page_with_top_and_skip(tenant: FakeTenant) -> None:
    names = [f"T{i:03d}" for i in range(450)]
    for name in names:
        tenant.add_object("BIG", "localtables", name, table(name))
    with make_client(tenant) as client:
        listed = client.list_objects("BIG", "localtables").objects
    assert [o.technical_name for o in listed] == names
    pages = tenant.calls("GET", "/BIG/localtables$")
    assert [(p.query["$top"], p.query["$skip"]) for p in pages] == [
        (["200"], ["0"]),
        (["200"], ["200"]),
        (["200"], ["400"]),
        (["200"], ["450"]),  # a short page does not end the list; an empty one does
    ]


def test_pages_capped_below_top_are_all_read(tenant: FakeTenant) -> None:
    tenant.list_max_top = 3
    names = [f"T{i}" for i in range(7)]
    for name in names:
        tenant.add_object("SALES", "localtables", name, table(name))
    with make_client(tenant) as client:
        assert [o.technical_name for o in client.list_objects("SALES", "localtables").objects] == names
    skips = [p.query["$skip"] for p in tenant.calls("GET", "/SALES/localtables$")]
    assert skips == [["0"], ["3"], ["6"], ["7"]]


def sales_tables(tenant: FakeTenant, count: int) -> tuple[list[str], ObjectListing]:
    """`count` tables T000… in space SALES, and the list metasync reads of them."""
    names = [f"T{i:03d}" for i in range(count)]
    for name in names:
        tenant.add_object("SALES", "localtables", name, table(name))
    with make_client(tenant) as client:
        return names, client.list_objects("SALES", "localtables")


@pytest.mark.parametrize(("count", "requests"), [(5, 3), (250, 2)])  # fewer and more than $top=200
def test_a_list_that_ignores_paging_is_read_once(tenant: FakeTenant, count: int, requests: int) -> None:
    tenant.list_ignores_paging = True
    names, listing = sales_tables(tenant, count)
    assert [o.technical_name for o in listing.objects] == names
    assert listing.doubt is None
    # The first page again says $skip is ignored; with fewer objects than $top, a smaller $top that is ignored
    # too says the server does not page at all, so its first answer was the whole list.
    pages = tenant.calls("GET", "/SALES/localtables$")
    assert len(pages) == requests
    assert requests == 2 or pages[-1].query == {"$top": ["4"], "$skip": ["0"]}


def test_broken_paging_stops_instead_of_looping(tenant: FakeTenant) -> None:
    tenant.broken_paging = True
    for i in range(250):
        tenant.add_object("BIG", "localtables", f"T{i:03d}", table(f"T{i:03d}"))
    for space in ("A", "B", "C"):
        tenant.add_space(space)
    with make_client(tenant) as client:
        listing = client.list_objects("BIG", "localtables")
        with pytest.raises(SourceError, match="points to a page already read"):
            client.list_spaces()
    assert len(listing.objects) == 200  # what the server gave, each once, but in doubt
    assert listing.doubt is not None and "ignores $skip" in listing.doubt
    assert (
        len(tenant.calls("GET", "/BIG/localtables$")) == 3
    )  # first page, again, a probe with a smaller $top
    assert len(tenant.calls("GET", "/catalog/spaces$")) <= 3


@pytest.mark.parametrize("cap", [1, 50])
def test_a_server_that_caps_pages_and_ignores_skip_leaves_the_list_in_doubt(
    tenant: FakeTenant, cap: int
) -> None:
    tenant.list_max_top, tenant.broken_paging = cap, True
    for i in range(120):
        tenant.add_object("SALES", "localtables", f"T{i:03d}", table(f"T{i:03d}"))
    with make_client(tenant) as client:
        listing = client.list_objects("SALES", "localtables")
    assert [o.technical_name for o in listing.objects] == [f"T{i:03d}" for i in range(cap)]
    assert listing.doubt is not None
    assert f"answers the same {cap} items on every page" in listing.doubt
    assert len(tenant.calls("GET", "/SALES/localtables$")) <= 3


def test_overlapping_pages_list_each_object_once(tenant: FakeTenant) -> None:
    tenant.list_max_top, tenant.list_overlap = 50, 1
    names, listing = sales_tables(tenant, 120)
    assert [o.technical_name for o in listing.objects] == names
    assert listing.doubt is None


def test_a_list_in_another_order_each_time_that_ignores_skip_ends_at_once(tenant: FakeTenant) -> None:
    tenant.list_ignores_paging, tenant.list_unstable_order = True, True
    for i in range(150):
        tenant.add_object("SALES", "localtables", f"T{i:03d}", table(f"T{i:03d}"))
    with make_client(tenant) as client:
        listing = client.list_objects("SALES", "localtables")
    assert sorted(o.technical_name for o in listing.objects) == [f"T{i:03d}" for i in range(150)]
    assert listing.doubt is None
    assert len(tenant.calls("GET", "/SALES/localtables$")) == 3


def test_random_pages_that_ignore_skip_end_in_doubt(tenant: FakeTenant) -> None:
    tenant.list_max_top, tenant.broken_paging, tenant.list_unstable_order = 30, True, True
    for i in range(60):
        tenant.add_object("SALES", "localtables", f"T{i:03d}", table(f"T{i:03d}"))
    with make_client(tenant) as client:
        listing = client.list_objects("SALES", "localtables")
    assert len({o.technical_name for o in listing.objects}) == len(listing.objects)
    assert listing.doubt is not None
    assert len(tenant.calls("GET", "/SALES/localtables$")) <= 62  # each page brings something new, or ends it


def test_listing_carries_change_timestamps(tenant: FakeTenant) -> None:
    tenant.add_object("SALES", "views", "V", table("V"), changed_on="2025-03-01T10:00:00Z")
    with make_client(tenant) as client:
        (listed,) = client.list_objects("SALES", "views").objects
    assert listed.changed_at == "2025-03-01T10:00:00Z"


@pytest.mark.parametrize(
    "name", ["SAP.TIME.VIEW_DIMENSION_DAY", "a/b", "Alpha-2 code", "Größe ü", "../x", "50%"]
)
def test_hostile_technical_names_round_trip(tenant: FakeTenant, name: str) -> None:
    tenant.add_object("SALES", "views", name, table(name))
    with make_client(tenant) as client:
        (listed,) = client.list_objects("SALES", "views").objects
        assert client.read_object("SALES", "views", listed.technical_name) == table(name)


def test_unexpected_list_shape_names_the_endpoint(tenant: FakeTenant) -> None:
    tenant.add_space("SALES")
    tenant.fail(r"/SALES/views$", 200)  # a fault's body is a JSON object, not a list
    with make_client(tenant) as client, pytest.raises(SourceError) as caught:
        client.list_objects("SALES", "views")
    assert "neither a JSON array nor an OData collection" in str(caught.value)
    assert "/dwaas-core/api/v1/spaces/SALES/views" in str(caught.value)


def test_pages_that_repeat_earlier_items_out_of_order_leave_the_list_in_doubt(tenant: FakeTenant) -> None:
    """A server that honours $skip but orders its list differently on each request: items move past the
    pages already read, so metasync cannot tell it got them all."""
    tenant.list_max_top, tenant.list_unstable_order = 30, True
    _, listing = sales_tables(tenant, 100)
    assert listing.doubt is not None and "out of order" in listing.doubt
    assert len({o.technical_name for o in listing.objects}) == len(listing.objects) <= 100


def test_an_order_that_changes_once_leaves_the_list_in_doubt(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order is stable for two pages, then reversed (a re-index): the short last page holds only items
    read before, and the two that moved are missing. That page is no repeat of the page before, so the list is
    in doubt (partial, nothing deleted) instead of taken as whole."""
    lists = []

    class OrderChangesOnce:
        def __init__(self, _seed: object = None) -> None:
            pass

        def shuffle(self, names: list[str]) -> None:
            lists.append(names)
            if len(lists) >= 3:
                names.reverse()

    monkeypatch.setattr(datasphere_tenant.random, "Random", OrderChangesOnce)
    tenant.list_max_top, tenant.list_unstable_order = 30, True
    _, listing = sales_tables(tenant, 62)
    assert len(listing.objects) < 62 and listing.doubt is not None and "out of order" in listing.doubt
