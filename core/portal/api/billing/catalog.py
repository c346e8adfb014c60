"""``/api/v1/products`` and ``/api/v1/prices``: the merchant's catalog."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from portal.api.auth import merchant_tenant, require
from portal.api.billing.common import CONFLICT_RESPONSE, BillingController, paged, tenant_of_object, view
from portal.api.billing.schemas import Price, PriceCreate, PriceList, Product, ProductCreate, ProductList
from portal.api.customers import api_actor
from portal.api.keys import ApiPrincipal
from portal.api.params import Limit, MerchantParam
from portal.billing import catalog
from portal.db.engine import tenant_transaction

Cursor = Annotated[
    str | None, QueryParameter(description="An id from the previous page: the page after it", max_length=40)
]
Active = Annotated[bool | None, QueryParameter(description="Only active (true) or archived (false) ones")]


class ProductController(BillingController):
    """Products: what a merchant sells."""

    path = "/products"
    tags = ["billing"]

    @post("/", status_code=201, summary="Create a product")
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[ProductCreate]
    ) -> Product:
        """A new active product."""
        require(principal, "billing:write")
        tenant = await merchant_tenant(request, principal, data.merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            product = await catalog.create_product(
                tenant, name=data.name, description=data.description, actor=api_actor(request, principal)
            )
        return view(product, Product)

    @get("/", summary="List products")
    async def list_products(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        active: Active = None,
        starting_after: Cursor = None,
        limit: Limit = 20,
        merchant: MerchantParam = None,
    ) -> ProductList:
        """The merchant's products, newest first."""
        require(principal, "billing:read")
        tenant = await merchant_tenant(request, principal, merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            items, has_more = await paged(
                lambda size, after: catalog.list_products(tenant, active=active, limit=size, starting_after=after),
                limit,
                starting_after,
            )
        return ProductList(data=[view(item, Product) for item in items], has_more=has_more)

    @get("/{product_id:str}", summary="Retrieve a product")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], product_id: FromPath[str]
    ) -> Product:
        """One product; 404 for another merchant's."""
        require(principal, "billing:read")
        tenant = await tenant_of_object(request, principal, "product", product_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            product = await catalog.get_product(tenant, product_id)
        return view(product, Product)

    @post("/{product_id:str}/archive", status_code=200, summary="Archive a product")
    async def archive(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], product_id: FromPath[str]
    ) -> Product:
        """No new prices or subscriptions for it; existing subscriptions go on. Archiving again changes nothing."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "product", product_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            product = await catalog.archive_product(tenant, product_id, actor=api_actor(request, principal))
        return view(product, Product)


class PriceController(BillingController):
    """Prices: what a product costs, how often. A price never changes amount: archive it and add another."""

    path = "/prices"
    tags = ["billing"]

    @post("/", status_code=201, summary="Create a price", responses=CONFLICT_RESPONSE)
    async def create(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], data: JSONBody[PriceCreate]
    ) -> Price:
        """A new recurring price of an active product (409 when the product is archived)."""
        require(principal, "billing:write")
        tenant = await merchant_tenant(request, principal, data.merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            price = await catalog.create_price(
                tenant,
                product_id=data.product,
                currency=data.currency,
                unit_amount=data.unit_amount,
                interval=data.interval,
                interval_count=data.interval_count,
                nickname=data.nickname,
                actor=api_actor(request, principal),
            )
        return view(price, Price)

    @get("/", summary="List prices")
    async def list_prices(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[ApiPrincipal],
        product: Annotated[str | None, QueryParameter(description="Only this product's prices", max_length=40)] = None,
        active: Active = None,
        starting_after: Cursor = None,
        limit: Limit = 20,
        merchant: MerchantParam = None,
    ) -> PriceList:
        """The merchant's prices, newest first."""
        require(principal, "billing:read")
        tenant = await merchant_tenant(request, principal, merchant)
        async with tenant_transaction(tenant.merchant.iso_id):
            items, has_more = await paged(
                lambda size, after: catalog.list_prices(
                    tenant, product_id=product, active=active, limit=size, starting_after=after
                ),
                limit,
                starting_after,
            )
        return PriceList(data=[view(item, Price) for item in items], has_more=has_more)

    @get("/{price_id:str}", summary="Retrieve a price")
    async def retrieve(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], price_id: FromPath[str]
    ) -> Price:
        """One price; 404 for another merchant's."""
        require(principal, "billing:read")
        tenant = await tenant_of_object(request, principal, "price", price_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            price = await catalog.get_price(tenant, price_id)
        return view(price, Price)

    @post("/{price_id:str}/archive", status_code=200, summary="Archive a price")
    async def archive(
        self, request: Request[Any, Any, Any], principal: NamedDependency[ApiPrincipal], price_id: FromPath[str]
    ) -> Price:
        """No new subscriptions to it; existing ones go on renewing. Archiving again changes nothing."""
        require(principal, "billing:write")
        tenant = await tenant_of_object(request, principal, "price", price_id)
        async with tenant_transaction(tenant.merchant.iso_id):
            price = await catalog.archive_price(tenant, price_id, actor=api_actor(request, principal))
        return view(price, Price)
