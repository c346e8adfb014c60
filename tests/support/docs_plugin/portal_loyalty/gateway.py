import msgspec

from portal.sdk import (
    GatewayResponse,
    HostedFields,
    Money,
    PaymentGateway,
    VaultCustomer,
    VaultEntry,
    hookimpl,
)


class AcmeSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    api_key: str
    public_key: str


class AcmeGateway:
    key = "acme"

    def __init__(self, settings: AcmeSettings, merchant) -> None:
        self.settings = settings

    def hosted_fields(self, brand_color: str) -> HostedFields:
        return HostedFields(
            script_url="https://js.acme.example/collect.js",
            origins=("https://js.acme.example",),
            script_attributes={"data-tokenization-key": self.settings.public_key},
        )

    async def vault_add(self, *, payment_token, vault_id, billing_id, customer: VaultCustomer) -> VaultEntry: ...
    async def vault_update(self, *, payment_token, vault_id, billing_id) -> VaultEntry: ...
    async def vault_delete(self, *, vault_id, billing_id, last_in_vault) -> None: ...
    async def sale(self, *, vault_id, billing_id, amount: Money, order_id) -> GatewayResponse: ...
    async def aclose(self) -> None: ...


@hookimpl
def portal_payment_gateways() -> list[PaymentGateway]:
    return [PaymentGateway(key="acme", title="Acme Payments", factory=AcmeGateway, settings=AcmeSettings)]
