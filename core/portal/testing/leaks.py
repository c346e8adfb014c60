"""Routes must not reach other tenants' objects: the cross-tenant matrix and a short 404 check."""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from portal.access.csrf import CSRF_COOKIE, token_for
from portal.web.sessions import COOKIE_NAME

ID = "{id}"
"""The placeholder for the id in a route's path or query template."""

_NONCE = re.compile(r"'nonce-[^']*'|nonce=\"[^\"]*\"")
_CSRF_FIELD = re.compile(r'(name="csrf_token"\s+value=")[^"]*(")')
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Foreign:
    """An object the signed-in customer must not reach: its id, and text that would give it away.

    ``text`` is what only that object would put on a page: its last four digits, its name, its
    amount. None of it may appear on any answer the signed-in customer gets for the id.
    """

    id: str
    text: tuple[str, ...] = ()


def _foreign(objects: Foreign | Sequence[Foreign]) -> tuple[Foreign, ...]:
    return (objects,) if isinstance(objects, Foreign) else tuple(objects)


@dataclass(frozen=True)
class ForeignIds:
    """The ids a route is tried with, seen from one signed-in customer (customer A).

    ``other_customer``: objects of another customer of A's merchant; ``other_merchant``: of a
    customer of another merchant of the same ISO (the same email address is the strongest case);
    ``other_iso``: of a customer of a merchant of another ISO. Each is one object or several (a
    live one and a removed one, say). ``unknown`` is a well-formed id that names nothing: every
    other id must be answered exactly like it. ``removed`` are A's own objects that the route must
    no longer reach; ``malformed`` are ids that are not ids at all (by default derived from
    ``unknown``: upper case, one character short, and ``<prefix>_not-an-id``).
    """

    other_customer: Foreign | Sequence[Foreign]
    other_merchant: Foreign | Sequence[Foreign]
    other_iso: Foreign | Sequence[Foreign]
    unknown: str
    removed: Foreign | Sequence[Foreign] = ()
    malformed: Sequence[str] | None = None

    def cases(self) -> list[tuple[str, Foreign]]:
        """``(label, object)`` for every id to try, the unknown one excepted."""
        prefix = self.unknown.split("_", 1)[0]
        malformed = (
            self.malformed
            if self.malformed is not None
            else (self.unknown.upper(), self.unknown[:-1], f"{prefix}_not-an-id")
        )
        found: list[tuple[str, Foreign]] = []
        for label, objects in (
            ("other customer", self.other_customer),
            ("other merchant", self.other_merchant),
            ("other ISO", self.other_iso),
            ("removed", self.removed),
        ):
            found += [(label, item) for item in _foreign(objects)]
        found += [("malformed", Foreign(value)) for value in malformed]
        return found


@dataclass(frozen=True)
class _Seen:
    status: int
    location: str
    body: str


def csrf_token(client: httpx.AsyncClient) -> str:
    """The CSRF token a form of ``client``'s visitor carries (``csrf_token`` field or ``X-CSRF-Token``).

    Derived, as the portal derives it (:mod:`portal.access.csrf`), from the session cookie of a
    signed-in client, else from the anonymous CSRF cookie a page sets on its first visit.
    """
    seed = client.cookies.get(COOKIE_NAME) or client.cookies.get(CSRF_COOKIE)
    assert seed, "the client has neither a session nor a CSRF cookie; sign it in or load a page first"
    return token_for(seed)


def _csrf_headers(client: httpx.AsyncClient, method: str) -> dict[str, str]:
    """The ``X-CSRF-Token`` header an unsafe request of ``client``'s visitor needs."""
    if method in _SAFE_METHODS:
        return {}
    return {"x-csrf-token": csrf_token(client)}


def _mask(text: str, ids: Iterable[str]) -> str:
    """``text`` with nonces, CSRF tokens and the requested id replaced by placeholders."""
    text = _CSRF_FIELD.sub(r"\1…\2", _NONCE.sub("nonce", text))
    for value in ids:
        if value:
            text = text.replace(value, ID)
    return text


async def _try(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    query: str,
    value: str,
    data: Mapping[str, str] | None,
) -> _Seen:
    quoted = quote(value, safe="")
    url = path.replace(ID, quoted) + (f"?{query.replace(ID, quoted)}" if query else "")
    response = await client.request(
        method,
        url,
        headers=_csrf_headers(client, method),
        data=dict(data) if data is not None and method not in _SAFE_METHODS else None,
    )
    variants = sorted({value, quoted, quote(value)}, key=len, reverse=True)
    return _Seen(
        response.status_code,
        _mask(response.headers.get("location", ""), variants),
        _mask(response.text, variants),
    )


async def assert_no_cross_tenant_leak(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    query: str = "",
    *,
    ids: ForeignIds,
    mine: Foreign | None = None,
    data: Mapping[str, str] | None = None,
    state: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Request a route with every id of ``ids`` as ``client``'s customer; assert nothing leaks.

    ``path`` and ``query`` are templates with ``{id}`` where the id goes (``"/invoices/{id}"``;
    ``"done=paid&invoice={id}"``, without the ``?``). An id in the path must answer 404 for
    every id of ``ids``, the unknown one included. An id only in the query must give exactly the
    page the unknown id gives: the same status, the same ``Location`` and the same body, compared
    with nonces, CSRF tokens and the requested id itself masked. In both cases no ``text`` of a
    foreign object may appear in the answer.

    ``client`` must be signed in (see :func:`sign_in`); unsafe methods are sent with the CSRF
    header of its session, so they reach the route's id lookup, and with ``data`` as the form.
    ``mine``, one of the customer's own objects the route does show, is requested once for
    ``GET`` routes to prove that the route reads the id at all: its answer must differ from the
    unknown id's. ``state``, when given, is awaited before and after; its results must be equal
    (for example the rows a ``POST`` would change). Every failure is reported at once.
    """
    method = method.upper()
    in_path = ID in path
    if not in_path and ID not in query:
        raise ValueError(f"neither {path!r} nor {query!r} has an {ID} placeholder")
    route = f"{method} {path}" + (f"?{query}" if query else "")
    before = await state() if state is not None else None
    baseline = await _try(client, method, path, query, ids.unknown, data)
    failures: list[str] = []
    if in_path and baseline.status != 404:
        failures.append(f"unknown id {ids.unknown}: {baseline.status}, not 404")
    if mine is not None and method in _SAFE_METHODS:
        own = await _try(client, method, path, query, mine.id, data)
        if own == baseline:
            failures.append(f"the customer's own {mine.id} is answered like an unknown id: is {ID} read at all?")
    for label, item in ids.cases():
        seen = await _try(client, method, path, query, item.id, data)
        where = f"{label} {item.id!r}"
        if in_path and seen.status != 404:
            failures.append(f"{where}: {seen.status}, not 404")
        if seen.status != baseline.status or seen.location != baseline.location:
            failures.append(
                f"{where}: {seen.status} {seen.location!r}, the unknown id gives "
                f"{baseline.status} {baseline.location!r}"
            )
        elif seen.body != baseline.body:
            failures.append(
                f"{where}: the page differs from the unknown id's:\n{_first_difference(baseline.body, seen.body)}"
            )
        leaked = [text for text in item.text if text in seen.body or text in seen.location]
        if leaked:
            failures.append(f"{where}: the answer shows {leaked}")
    if state is not None:
        after = await state()
        if after != before:
            failures.append(f"the state changed:\n  before: {before!r}\n  after:  {after!r}")
    assert not failures, f"{route} as the signed-in customer:\n- " + "\n- ".join(failures)


def _first_difference(expected: str, actual: str) -> str:
    """The first lines where two pages differ, for a failure message."""
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(), "unknown id", "this id", n=1, lineterm="")
    return "\n".join(list(lines)[:12])


async def assert_not_found(client: httpx.AsyncClient, path: str, *ids: str, method: str = "GET") -> None:
    """Assert that ``path`` answers 404 for each id (``{id}`` in ``path`` marks where it goes).

    The short form of :func:`assert_no_cross_tenant_leak` for ids in the path: pass the ids of
    another merchant's and another ISO's objects. Unsafe methods carry the session's CSRF header.
    """
    if ID not in path:
        raise ValueError(f"{path!r} has no {ID} placeholder")
    if not ids:
        raise ValueError("give at least one id")
    method = method.upper()
    failures = []
    for value in ids:
        url = path.replace(ID, quote(value, safe=""))
        response = await client.request(method, url, headers=_csrf_headers(client, method))
        if response.status_code != 404:
            failures.append(f"{method} {url}: {response.status_code}, not 404")
    assert not failures, "\n".join(failures)
