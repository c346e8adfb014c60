"""Jinja filters every theme can use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TEMPLATE_FILTERS: dict[str, Callable[..., Any]] = {}
