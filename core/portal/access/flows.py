"""Deep links into one task ("flows"), contributed by plugins through ``portal_link_flows``."""

from __future__ import annotations

from portal.ids import has_prefix
from portal.plugin import LinkFlow
from portal.tenancy.models import Tenant


class FlowError(ValueError):
    """The flow is unknown, needs an id it was not given, or its plugin is off here."""


def encode_flow(flow: LinkFlow, target_id: str | None) -> str:
    """The flow as carried in a token: ``name`` or ``name:<id>``."""
    if flow.parameter is None:
        if target_id is not None:
            raise FlowError(f"flow {flow.name!r} takes no {target_id!r}")
        return flow.name
    if not target_id or not has_prefix(target_id, flow.parameter_prefix):
        raise FlowError(f"flow {flow.name!r} needs a {flow.parameter} id ({flow.parameter_prefix}_...)")
    return f"{flow.name}:{target_id}"


def resolve_flow(flows: dict[str, tuple[str, LinkFlow]], tenant: Tenant, value: str | None) -> str:
    """Where a link with flow ``value`` lands on this merchant: the flow's page, else Overview."""
    if not value:
        return "/"
    name, _, target_id = value.partition(":")
    owner = flows.get(name)
    if owner is None or owner[0] not in tenant.enabled_plugins:
        return "/"
    return owner[1].path.format(id=target_id)
