"""``portal themes check THEME``: overrides, rendering in every language, and colour contrast.

Three checks, each reported per template or colour pair:

1. **Templates**: every template of core, the installed plugins and the theme chain is listed with
   where the theme takes it from (the theme itself, a parent theme, a plugin or core), then
   rendered with sample data (a merchant, a signed-in customer, navigation; page variables a
   sample does not provide render as empty). Syntax errors and errors raised while rendering are
   reported with the template and line.
2. **Translations**: each template is rendered in every language; a message the merged catalogs
   do not translate is reported. The theme's own package is also compared with its catalogs
   (:func:`portal.i18n.extract.check`), which covers text in branches the samples do not reach.
3. **Contrast**: the colour custom properties the theme chain's stylesheets declare on
   ``:root`` (light, and under ``prefers-color-scheme: dark``) are checked in the pairs text is
   drawn in (``--ink`` on ``--bg``, …) against WCAG AA.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from gettext import NullTranslations
from pathlib import Path
from typing import Any

import jinja2

from portal.i18n import LANGUAGE_NAMES, LANGUAGES
from portal.i18n.catalogs import Catalogs, theme_locale
from portal.i18n.current import use_translations
from portal.i18n.extract import check as check_catalogs
from portal.plugin import NavItem
from portal.tenancy.colours import contrast
from portal.tenancy.models import Brand, CustomerView, MerchantView
from portal.theming.engine import CORE_TEMPLATES, ThemeRegistry

TEMPLATE_SUFFIXES = (".html", ".txt", ".css")
CONTRAST_PAIRS: tuple[tuple[str, str, float], ...] = (
    ("--ink", "--bg", 4.5),
    ("--ink", "--surface", 4.5),
    ("--ink-muted", "--bg", 4.5),
    ("--ink-muted", "--surface", 4.5),
    ("--ink", "--hover", 4.5),
    ("--danger", "--surface", 4.5),
    ("--badge-ink", "--badge-bg", 4.5),
    ("--success-ink", "--success-bg", 4.5),
    ("--info-ink", "--info-bg", 4.5),
    ("--warning-ink", "--warning-bg", 4.5),
    ("--danger-ink", "--danger-bg", 4.5),
    ("--line-strong", "--surface", 3.0),
    ("--focus", "--bg", 3.0),
)
"""Foreground, background and the ratio they must reach: body, secondary and badge text (4.5:1),
form control borders and the focus ring (3:1). A theme that names its colours otherwise is checked
on the names it shares with these."""


class SampleUndefined(jinja2.ChainableUndefined):
    """A page variable no sample provides: empty, false, zero, and chainable."""

    def __int__(self) -> int:  # type: ignore[override]
        return 0

    def __float__(self) -> float:  # type: ignore[override]
        return 0.0

    def _same(self, *_: object) -> SampleUndefined:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _same  # type: ignore[assignment]
    __neg__ = __pos__ = _same  # type: ignore[assignment]

    def __call__(self, *_: object, **__: object) -> SampleUndefined:  # type: ignore[override]
        """A sample method's result: the sample itself."""
        return self

    def _false(self, *_: object) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false  # type: ignore[assignment]


@dataclass
class Problem:
    """One failure: what is wrong, and where."""

    kind: str
    where: str
    detail: str

    def line(self) -> str:
        """The problem as one line: ``error: invoices/pdf.html:12: ...``."""
        return f"{self.kind}: {self.where}: {self.detail}"


@dataclass
class Report:
    """What the check found: the template sources and every problem."""

    theme: str
    sources: dict[str, str] = field(default_factory=dict)
    rendered: int = 0
    contrast: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return not self.problems


def sample_context(theme: str) -> dict[str, Any]:
    """What every page gets, with sample values: a merchant of the theme, a signed-in customer."""
    brand = Brand(
        color="#2e7d32",
        contrast_color="#ffffff",
        logo_url=None,
        support_email="help@example.com",
        terms_url="https://example.com/terms",
        privacy_url="https://example.com/privacy",
    )
    merchant = MerchantView(
        id="mer_sample",
        iso_id="iso_sample",
        slug="sample",
        name="Sample Shop",
        timezone="America/New_York",
        locale="en_US",
        theme_key=theme,
        brand=brand,
    )
    customer = CustomerView(id="cus_sample", merchant_id=merchant.id, email="jane@example.com", name="Jane Doe")
    return {
        "merchant": merchant,
        "customer": customer,
        "nav": [NavItem(label="Overview", href="/", order=0, key="overview")],
        "header_partials": [],
        "active_nav": "overview",
        "csp_nonce": "sample-nonce",
        "page_title": "Sample page",
        "title": "Sample page",
        "status_code": 200,
        "detail": "Sample detail.",
        "csrf_token": "sample-csrf-token",
        "return_url": None,
        "languages": LANGUAGE_NAMES,
        "request_path": "/",
        "widgets": [],
    }


class _Recording(NullTranslations):
    """Translations that note each message the catalog has no translation for."""

    def __init__(self, translations: NullTranslations, missing: set[str]) -> None:
        super().__init__()
        self._inner = translations
        self._known: dict[Any, str] = getattr(translations, "_catalog", {})
        self._missing = missing

    def _note(self, key: Any, message: str) -> None:
        if key not in self._known and message.strip():
            self._missing.add(message)

    def gettext(self, message: str) -> str:
        self._note(message, message)
        return self._inner.gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        self._note((msgid1, 0), msgid1)
        return self._inner.ngettext(msgid1, msgid2, n)

    def pgettext(self, context: str, message: str) -> str:
        self._note(f"{context}\x04{message}", f"{context}|{message}")
        return self._inner.pgettext(context, message)

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        self._note((f"{context}\x04{msgid1}", 0), f"{context}|{msgid1}")
        return self._inner.npgettext(context, msgid1, msgid2, n)


def template_sources(themes: ThemeRegistry, theme: str) -> dict[str, str]:
    """Every template name a page of ``theme`` can use, and where it comes from."""
    chain = themes.chain(theme)
    sources: dict[str, str] = {}
    for name in _names(CORE_TEMPLATES):
        sources[name] = "core"
    for key, folder in sorted(themes.plugin_templates.items()):
        for name in _names(folder):
            sources[f"{key}/{name}"] = f"plugin {key}"
    for position, spec in reversed(list(enumerate(chain))):
        for name in _names(spec.templates):
            sources[name] = "overridden by this theme" if position == 0 else f"inherited from {spec.key}"
    return dict(sorted(sources.items()))


def _names(folder: Path) -> Iterator[str]:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in TEMPLATE_SUFFIXES:
            yield path.relative_to(folder).as_posix()


def _error_location(exc: BaseException, name: str) -> str:
    """``template:line`` of a template error, from Jinja's rewritten traceback."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name or name}:{exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(TEMPLATE_SUFFIXES):
            return f"{frame.filename}:{frame.lineno}"
    return name


def render_all(themes: ThemeRegistry, catalogs: Catalogs, report: Report) -> None:
    """Render every template of the theme in every language, noting errors and untranslated text."""
    environment = themes.environment(report.theme).overlay(undefined=SampleUndefined, cache_size=0)
    context = sample_context(report.theme)
    for name in report.sources:
        missing: dict[str, set[str]] = {}
        for language in LANGUAGES:
            found: set[str] = set()
            inner = catalogs.translations(report.theme, language)
            translations = inner if language == "en" else _Recording(inner, found)
            try:
                with use_translations(translations, language, language):
                    environment.get_template(name).render({**context, "lang": language.replace("_", "-")})
            except Exception as exc:
                report.problems.append(Problem("error", _error_location(exc, name), f"{type(exc).__name__}: {exc}"))
                break
            if found:
                missing[language] = found
        else:
            report.rendered += 1
        for language, messages in sorted(missing.items()):
            for message in sorted(messages):
                report.problems.append(Problem("untranslated", f"{name} [{language}]", repr(message)))


_ROOT = re.compile(r":root\s*\{([^}]*)\}")
_DARK = re.compile(r"@media[^{]*prefers-color-scheme\s*:\s*dark[^{]*\{((?:[^{}]*\{[^}]*\})*[^{}]*)\}")
_DECLARATION = re.compile(r"(--[\w-]+)\s*:\s*([^;]+);?")
_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")


def _declarations(block: str) -> dict[str, str]:
    return {name: value.strip() for name, value in _DECLARATION.findall(re.sub(r"/\*.*?\*/", "", block, flags=re.S))}


def palettes(stylesheets: list[Path]) -> dict[str, dict[str, str]]:
    """The ``:root`` colour custom properties of ``stylesheets`` (later ones win), light and dark."""
    light: dict[str, str] = {}
    dark: dict[str, str] = {}
    for path in stylesheets:
        css = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
        dark_blocks = _DARK.findall(css)
        without_dark = _DARK.sub("", css)
        for block in _ROOT.findall(without_dark):
            light.update(_declarations(block))
        for media in dark_blocks:
            for block in _ROOT.findall(media):
                dark.update(_declarations(block))
    return {"light": light, "dark": {**light, **dark} if dark else {}}


def _resolve(palette: Mapping[str, str], name: str, depth: int = 0) -> str | None:
    value = palette.get(name)
    if value is None or depth > 5:
        return None
    reference = re.fullmatch(r"var\((--[\w-]+)(?:\s*,\s*([^)]+))?\)", value)
    if reference:
        return _resolve(palette, reference.group(1), depth + 1) or (reference.group(2) or "").strip() or None
    match = _HEX.fullmatch(value)
    if not match:
        return None
    digits = match.group(1)
    return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits).lower()


def check_contrast(themes: ThemeRegistry, report: Report) -> None:
    """Check the chain's palette pairs in light and dark mode."""
    stylesheets: list[Path] = []
    for spec in reversed(themes.chain(report.theme)):
        if spec.static is not None and spec.static.is_dir():
            stylesheets.extend(sorted(spec.static.rglob("*.css")))
    for scheme, palette in palettes(stylesheets).items():
        for foreground, background, needed in CONTRAST_PAIRS:
            fg, bg = _resolve(palette, foreground), _resolve(palette, background)
            if fg is None or bg is None:
                continue
            ratio = contrast(fg, bg)
            line = f"{scheme}: {foreground} {fg} on {background} {bg}: {ratio:.2f}:1 (needs {needed}:1)"
            report.contrast.append(line)
            if ratio < needed:
                report.problems.append(Problem("contrast", scheme, line))


def check_theme(themes: ThemeRegistry, catalogs: Catalogs, theme: str) -> Report:
    """Run every check on ``theme`` (``ThemeError`` when it is not installed)."""
    report = Report(theme=theme, sources=template_sources(themes, theme))
    render_all(themes, catalogs, report)
    spec = themes.chain(theme)[0]
    package = theme_locale(spec).parent
    for line in check_catalogs(package, f"theme {theme}").lines(f"theme {theme}"):
        report.problems.append(Problem("catalog", f"theme {theme}", line))
    check_contrast(themes, report)
    return report


def print_report(report: Report, out: Any = sys.stdout) -> None:
    """The report as ``portal themes check`` prints it."""
    print(f"theme {report.theme}: {len(report.sources)} templates", file=out)
    width = max((len(name) for name in report.sources), default=0)
    for name, source in report.sources.items():
        print(f"  {name:<{width}}  {source}", file=out)
    print(f"rendered {report.rendered} of {len(report.sources)} templates in {len(LANGUAGES)} languages", file=out)
    for line in report.contrast:
        print(f"  {line}", file=out)
    for problem in report.problems:
        print(problem.line(), file=out)
    print("ok" if report.ok else f"{len(report.problems)} problem(s)", file=out)
