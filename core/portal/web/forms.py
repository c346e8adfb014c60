"""The body of an HTML form POST, as a route handler's ``data`` parameter."""

from __future__ import annotations

from typing import Annotated

from litestar.enums import RequestEncodingType
from litestar.params import Body

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
"""``data: Form`` receives the fields of a URL-encoded form (CSRF is checked before the handler runs)."""
