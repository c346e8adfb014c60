"""Every message of core, every first-party plugin and every shipped theme is translated in every language."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from portal.i18n import LANGUAGES
from portal.i18n.catalogs import po_path
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


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language != "en"])
def test_core_and_plugins_never_translate_one_message_two_ways(language: str) -> None:
    """Their catalogs merge into one, so two translations of one message would leave one page worded
    by the other package's (themes may re-word a message on purpose, and are left out)."""
    seen: dict[tuple[str, str | None], dict[str, object]] = {}
    for name, folder in PACKAGES.items():
        path = po_path(folder / "locale", language)
        if name.startswith("theme ") or not path.is_file():
            continue
        with path.open("rb") as handle:
            for message in read_po(handle):
                if message.id:
                    key = (message.id if isinstance(message.id, str) else message.id[0], message.context)
                    string = message.string if isinstance(message.string, str) else tuple(message.string)
                    seen.setdefault(key, {})[name] = string
    assert {key: found for key, found in seen.items() if len(set(found.values())) > 1} == {}
