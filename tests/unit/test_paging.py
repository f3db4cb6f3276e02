"""Following the host list page by page, however the platform reports its pages.

The HTTP layer is replaced by a list of pages here (the paging rule is pure logic); the
same client against the real lab is in tests/test_seed_operations.py.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from opsflow.opsapi import BadResponse, OpsPlatformClient


class Pages(OpsPlatformClient):
    """A client whose answers are given pages (one per request, in order)."""

    def __init__(self, pages: list[Any], page_size: int = 2) -> None:
        super().__init__("https://ops.example", token="token-123456", page_size=page_size)
        self.pages = list(pages)
        self.asked: list[dict[str, Any]] = []

    def request(self, method: str, path: str, params: Any = None, **_: Any) -> Any:
        self.asked.append(dict(params or {}))
        return self.pages.pop(0)


def rows(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "hostname": f"h{i}", "ip": f"10.0.0.{i}"} for i in ids]


def test_pages_are_followed_until_the_total_is_reached():
    client = Pages([{"data": rows(1, 2), "total": 3}, {"data": rows(3), "total": 3}])

    assert [h.id for h in client.list_hosts(tag="web")] == ["1", "2", "3"]
    assert [a["page"] for a in client.asked] == [1, 2]
    assert all(a["tag"] == "web" and a["page_size"] == 2 for a in client.asked)


def test_without_a_total_a_short_page_is_the_last():
    client = Pages([{"data": rows(1, 2)}, {"data": rows(3)}])

    assert len(client.list_hosts()) == 3 and len(client.asked) == 2


def test_a_server_with_a_smaller_page_size_is_followed_by_its_own_size():
    client = Pages(
        [{"data": rows(1), "page_size": 1}, {"data": rows(2), "page_size": 1}, {"data": []}]
    )

    assert [h.id for h in client.list_hosts()] == ["1", "2"]


def test_a_bare_list_is_one_page():
    assert len(Pages([rows(1, 2, 3)]).list_hosts()) == 3


def test_an_answer_without_data_is_a_bad_response():
    with pytest.raises(BadResponse, match="expected {'data': \\[...\\]}"):
        Pages([{"hosts": rows(1)}]).list_hosts()


def test_a_host_missing_its_ip_is_a_bad_response_naming_the_field():
    with pytest.raises(BadResponse, match="bad or missing fields: ip"):
        Pages([{"data": [{"id": 1, "hostname": "h1"}], "total": 1}]).list_hosts()


class ByPage(OpsPlatformClient):
    """A client whose answers are pages by number; the pages after the first wait for each
    other (a barrier), so they are only answered if they are asked for at the same time."""

    def __init__(self, hosts: int, page_size: int, total: int | None = None, together: int = 0):
        super().__init__("https://ops.example", token="token-123456", page_size=page_size)
        self.hosts, self.total = hosts, hosts if total is None else total
        self.barrier = threading.Barrier(together) if together else None
        self.asked: list[int] = []

    def request(self, method: str, path: str, params: Any = None, **_: Any) -> Any:
        page, size = params["page"], params["page_size"]
        self.asked.append(page)
        if page > 1 and self.barrier is not None:
            self.barrier.wait(timeout=5)
        first = (page - 1) * size + 1
        return {"data": rows(*range(first, min(first + size, self.hosts + 1))), "total": self.total}


def test_with_a_total_the_pages_after_the_first_are_fetched_together_and_kept_in_order():
    client = ByPage(hosts=7, page_size=2, together=3)  # pages 2, 3 and 4 at once, or never

    hosts = client.list_hosts()

    assert [h.id for h in hosts] == [str(i) for i in range(1, 8)]
    assert sorted(client.asked) == [1, 2, 3, 4]


def test_a_list_that_grew_while_it_was_read_is_followed_to_its_end():
    client = ByPage(hosts=6, page_size=2, total=4)  # the first page said 4; there are 6

    def grown(method: str, path: str, params: Any = None, **_: Any) -> Any:
        answer = ByPage.request(client, method, path, params)
        return {**answer, "total": 4 if params["page"] == 1 else 6}

    client.request = grown  # type: ignore[method-assign]

    assert [h.id for h in client.list_hosts()] == [str(i) for i in range(1, 7)]
    assert sorted(client.asked) == [1, 2, 3]


def test_a_short_page_in_the_middle_does_not_end_a_list_whose_total_says_more():
    client = ByPage(hosts=7, page_size=2)  # page 2 lost a row (a server that filters late)

    def short(method: str, path: str, params: Any = None, **_: Any) -> Any:
        answer = ByPage.request(client, method, path, params)
        return {**answer, "data": answer["data"][:1]} if params["page"] == 2 else answer

    client.request = short  # type: ignore[method-assign]

    assert [h.id for h in client.list_hosts()] == ["1", "2", "3", "5", "6", "7"]
