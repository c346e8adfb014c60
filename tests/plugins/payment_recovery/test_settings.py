"""Recovery settings are checked when a tenant file is applied; a bad one writes nothing."""

from __future__ import annotations

import uuid

import pytest

from portal.tenancy.files import TenantFileError
from portal.testing import apply_tenants
from support.recovery import tenant_file


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ("retry_days = [6, 3]", "increasing"),
        ("reminder_days = [0]", "reminder_days"),
        ("retry_days = []", "retry_days"),
        ('final_action = "forgive"', "final_action"),
        ("emails = 1", "emails"),
        ("retries = 4", "retries"),
    ],
)
async def test_invalid_settings_are_refused(portal_platform, tmp_path, settings: str, named: str) -> None:
    slug = f"rec-bad-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TenantFileError) as error:
        await apply_tenants(portal_platform, tenant_file(slug, recovery=f"settings = {{ {settings} }}"), tmp_path)
    assert "payment_recovery" in str(error.value) and named in str(error.value), str(error.value)
    assert await portal_platform.tenants.resolve(f"{slug}.portal.localhost") is None
