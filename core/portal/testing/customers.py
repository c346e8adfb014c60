"""A customer of a test merchant, signed in, whose unsafe requests carry the CSRF token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from portal.tenancy.models import CustomerView
from portal.testing.leaks import assert_not_found, csrf_token

if TYPE_CHECKING:
    from portal.testing.merchants import TestMerchant


class TestCustomer:
    """A customer of a test merchant with a client signed in on the merchant's host.

    :meth:`post` (and :meth:`request` for other unsafe methods) adds the session's CSRF token to
    the form, as the portal's own forms do.
    """

    __test__ = False

    def __init__(self, merchant: TestMerchant, customer_id: str, email: str, name: str, client: httpx.AsyncClient):
        self.merchant = merchant
        self.customer_id = customer_id
        self.email = email
        self.name = name
        self.client = client

    @property
    def view(self) -> CustomerView:
        """The customer as core's functions take it."""
        return CustomerView(
            id=self.customer_id, merchant_id=self.merchant.merchant_id, email=self.email, name=self.name
        )

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``path`` on the merchant's host as the customer."""
        return await self.client.get(path, **kwargs)

    async def post(self, path: str, data: Mapping[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        """POST the form ``data`` (plus the CSRF token) to ``path``; redirects are not followed."""
        return await self.request("POST", path, data=data, **kwargs)

    async def request(
        self, method: str, path: str, data: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send ``method`` to ``path``; unsafe methods carry the CSRF token.

        The token goes in the form's ``csrf_token`` field, or in the ``X-CSRF-Token`` header when
        the body is not a form (``json=``, ``content=``). Pass ``csrf_token`` in ``data``
        yourself to send another (a wrong one, say).
        """
        form = dict(data or {})
        if method.upper() not in ("GET", "HEAD", "OPTIONS"):
            if {"json", "content"} & kwargs.keys():
                kwargs["headers"] = {"x-csrf-token": csrf_token(self.client), **dict(kwargs.get("headers") or {})}
            else:
                form.setdefault("csrf_token", csrf_token(self.client))
        return await self.client.request(method, path, data=form or None, **kwargs)

    async def page(self, path: str) -> str:
        """The text of the page at ``path``, asserting it answers 200."""
        response = await self.client.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code}\n{response.text[:2000]}"
        return response.text

    def anonymous(self) -> httpx.AsyncClient:
        """A client on the same host with no session."""
        return self.merchant.client()

    async def assert_not_found(self, path: str, *ids: str, method: str = "GET") -> None:
        """Assert ``path`` (with ``{id}``) answers 404 to this customer for each of ``ids``."""
        await assert_not_found(self.client, path, *ids, method=method)
