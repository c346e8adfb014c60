"""Every message of core, every first-party plugin and every shipped theme is translated in every language."""

from __future__ import annotations

import pytest

from portal.i18n import LANGUAGES
from portal.i18n.cli import installed_packages
from portal.i18n.extract import check

PACKAGES = installed_packages()


def test_every_first_party_package_is_walked() -> None:
    names = set(PACKAGES)
    assert {"portal", "theme base", "theme harbor", "theme summit"} <= names
    assert {
        f"plugin {key}" for key in ("cards", "subscriptions", "invoices", "merchant_switch", "payment_recovery")
    } <= names
    assert LANGUAGES == ("en", "es", "fr", "de", "pt_BR")


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_catalogs_are_complete(name: str) -> None:
    problems = check(PACKAGES[name], name)
    assert problems.lines(name) == []
