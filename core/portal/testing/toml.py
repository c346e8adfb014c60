"""Tenant files written from Python values, for the merchants the kit creates."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def toml_value(value: Any) -> str:
    """``value`` as a TOML value: strings, numbers, booleans, lists and tables (inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's string escapes are TOML's
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"{value!r} has no TOML form (TOML has no null: leave the setting out)")


def merchant_file(
    iso: tuple[str, str], merchant: tuple[str, str], plugins: Mapping[str, tuple[bool, Mapping[str, Any]]]
) -> str:
    """A tenant file of one ISO ``(slug, name)`` with one sandbox merchant ``(slug, name)`` and its plugins."""
    lines = [
        "[[isos]]",
        f"slug = {toml_value(iso[0])}",
        f"name = {toml_value(iso[1])}",
        "",
        "[[isos.merchants]]",
        f"slug = {toml_value(merchant[0])}",
        f"name = {toml_value(merchant[1])}",
        "[isos.merchants.gateway]",
        'key = "sandbox"',
    ]
    for key, (enabled, settings) in plugins.items():
        lines += [
            f"[isos.merchants.plugins.{json.dumps(key)}]",
            f"enabled = {toml_value(enabled)}",
            f"settings = {toml_value(dict(settings))}",
        ]
    return "\n".join(lines) + "\n"
