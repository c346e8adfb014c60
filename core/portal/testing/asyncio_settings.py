"""The pytest-asyncio settings the kit's fixtures need, applied as defaults by the kit itself.

The kit's database pool, platform and servers are session-scoped and bound to one event loop,
so async tests and fixtures must run in the session's loop. A project that sets these options
itself (``pyproject.toml``, ``pytest.ini``, ``-o``, ``--asyncio-mode``) keeps its values: only
the defaults change, the way a plugin's ``parser.addini`` declares them.
"""

from __future__ import annotations

import pytest

DEFAULTS: dict[str, str] = {
    "asyncio_mode": "auto",
    "asyncio_default_fixture_loop_scope": "session",
    "asyncio_default_test_loop_scope": "session",
}
"""The option and the default the kit gives it."""


def declare_defaults(parser: pytest.Parser) -> None:
    """Declare the kit's defaults for pytest-asyncio's options (idempotent).

    pytest-asyncio declares them with its own defaults (``strict``, unset, ``function``); the
    last declaration of an option's default wins, and values a project sets win over any default.
    """
    for name, value in DEFAULTS.items():
        parser.addini(name, help=f"{name} (default {value!r}, set by portal.testing)", type="string", default=value)
