"""Brand colours that always read: WCAG 2.x contrast, and colours adjusted until they reach it.

A merchant picks any brand colour (and optionally an accent). From each the portal derives, once
per merchant, the colours its pages and emails use:

- the *surface*: the colour of brand surfaces (buttons, the current navigation item, badges),
  with its text colour, white or near-black, reaching :data:`AA` on it. When neither does (mid
  tones), the surface itself is darkened or lightened in small steps, keeping its hue;
- the *text* colour: the colour for text and links on the page background, darkened (light
  scheme) or lightened (dark scheme) until it reaches :data:`AA` there.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import msgspec

AA = 4.5
"""WCAG 2.x level AA contrast for normal text."""

WHITE = "#ffffff"
NEAR_BLACK = "#111111"
LIGHT_BACKGROUND = "#eef0f4"
"""The darkest light-scheme background text sits on (hover; the page is #f6f8fa, cards white)."""
DARK_BACKGROUND = "#262c38"
"""The lightest dark-scheme background text sits on (hover; the page is #12161d, cards #1c212b)."""

STEP = 0.01
"""How far one adjustment step moves HSL lightness."""


def _rgb(hex_color: str) -> tuple[float, float, float]:
    return (int(hex_color[1:3], 16) / 255, int(hex_color[3:5], 16) / 255, int(hex_color[5:7], 16) / 255)


def _hex(red: float, green: float, blue: float) -> str:
    return "#" + "".join(f"{round(min(max(value, 0.0), 1.0) * 255):02x}" for value in (red, green, blue))


def luminance(hex_color: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb``."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    red, green, blue = (channel(value) for value in _rgb(hex_color))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(first: str, second: str) -> float:
    """WCAG 2.x contrast ratio of two ``#rrggbb`` colours, from 1 to 21."""
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _walk(hex_color: str, direction: int, reaches: Callable[[str], bool]) -> tuple[str, int]:
    """Step HSL lightness in ``direction`` (-1 darker, +1 lighter) until ``reaches`` holds.

    Returns the colour and the number of steps; black or white at the end of the walk.
    """
    hue, lightness, saturation = colorsys.rgb_to_hls(*_rgb(hex_color))
    steps = 0
    candidate = hex_color
    while not reaches(candidate):
        steps += 1
        lightness += direction * STEP
        if lightness <= 0 or lightness >= 1:
            return (NEAR_BLACK if direction < 0 else WHITE), steps
        candidate = _hex(*colorsys.hls_to_rgb(hue, lightness, saturation))
    return candidate, steps


def on_surface(hex_color: str) -> tuple[str, str]:
    """The brand surface and its text colour: ``(surface, white or near-black)``.

    The surface is ``hex_color`` when white or near-black reaches :data:`AA` on it (the one with
    more contrast is chosen); otherwise the colour darkened for white text or lightened for
    near-black text, whichever needs fewer steps.
    """
    color = hex_color.lower()
    on_white, on_dark = contrast(color, WHITE), contrast(color, NEAR_BLACK)
    if max(on_white, on_dark) >= AA:
        return color, WHITE if on_white >= on_dark else NEAR_BLACK
    darker, darker_steps = _walk(color, -1, lambda c: contrast(c, WHITE) >= AA)
    lighter, lighter_steps = _walk(color, +1, lambda c: contrast(c, NEAR_BLACK) >= AA)
    if darker_steps <= lighter_steps:
        return darker, WHITE
    return lighter, NEAR_BLACK


def text_on(hex_color: str, background: str) -> str:
    """``hex_color`` as a text colour on ``background``: darkened or lightened until it reaches AA."""
    color = hex_color.lower()
    direction = -1 if luminance(background) > 0.18 else +1
    return _walk(color, direction, lambda c: contrast(c, background) >= AA)[0]


class Palette(msgspec.Struct, frozen=True, kw_only=True):
    """The colours derived from one chosen colour."""

    chosen: str
    surface: str
    on_surface: str
    text: str
    """For text and links on the light scheme's page."""
    text_dark: str
    """For text and links on the dark scheme's page."""


def palette(hex_color: str) -> Palette:
    """Every colour the portal derives from ``hex_color``."""
    chosen = hex_color.lower()
    surface, text_colour = on_surface(chosen)
    return Palette(
        chosen=chosen,
        surface=surface,
        on_surface=text_colour,
        text=text_on(chosen, LIGHT_BACKGROUND),
        text_dark=text_on(chosen, DARK_BACKGROUND),
    )


def adjustments(hex_color: str) -> list[str]:
    """What had to change for ``hex_color`` to read, one phrase each; empty when nothing did.

    For example ``'#f5f5a0 is too pale for text on white: shown as #6b6b16'``. The dark scheme's
    text colour is not reported: most brand colours are lightened there, as expected.
    """
    found = palette(hex_color)
    chosen = found.chosen
    notes = []
    if found.surface != chosen:
        notes.append(
            f"{chosen} is a mid tone that neither white nor near-black text reads on (needs {AA}:1): "
            f"brand surfaces are shown as {found.surface} with {found.on_surface} text"
        )
    if found.text != chosen:
        notes.append(f"{chosen} is too pale for text on white: shown as {found.text}")
    return notes
