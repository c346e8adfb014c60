"""What links can be for: core's ``portal`` purpose and those plugins declare (``portal_link_purposes``).

The platform registers its plugins' purposes when it is built (:func:`register_purposes`); link
issuing and verification look them up here. A token naming a purpose no loaded plugin declares
is refused as invalid.
"""

from __future__ import annotations

from collections.abc import Mapping

from portal.plugin import LinkPurpose
from portal.plugins.registry import CORE_PURPOSES

_PURPOSES: dict[str, LinkPurpose] = {purpose.name: purpose for purpose in CORE_PURPOSES}


class UnknownPurposeError(ValueError):
    """No loaded plugin declares this link purpose."""


def register_purposes(purposes: Mapping[str, LinkPurpose]) -> None:
    """Make ``purposes`` known to this process (the platform calls it with its registry's)."""
    _PURPOSES.update(purposes)


def link_purpose(name: str) -> LinkPurpose:
    """The purpose called ``name``; :class:`UnknownPurposeError` when none is declared."""
    found = _PURPOSES.get(name)
    if found is None:
        raise UnknownPurposeError(f"no link purpose {name!r}; known: {', '.join(sorted(_PURPOSES))}")
    return found


def known_purposes() -> list[str]:
    """Names of every purpose known to this process."""
    return sorted(_PURPOSES)
