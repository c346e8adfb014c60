"""Keep a package's catalogs in step with its code: extract messages, update ``.po`` files, check them.

A package is a folder of Python modules with ``templates`` (and so ``locale``) inside it: core's
``portal``, a plugin's or a theme's package. Messages are what ``_()``, ``gettext()``,
``ngettext()``, ``pgettext()`` and ``N_()`` mark in Python, and ``_()``, ``{% trans %}`` and
friends in templates (``.html`` and the emails' ``.txt``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

from portal.i18n.catalogs import po_path
from portal.i18n.negotiate import DEFAULT_LANGUAGE, LANGUAGES

JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "True", "lstrip_blocks": "True"}
METHODS = [
    ("**/.venv/**", "ignore"),
    ("**/locale/**", "ignore"),
    ("**/static/**", "ignore"),
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**/templates/**.txt", "jinja2.ext:babel_extract"),
]
OPTIONS = {pattern: JINJA_OPTIONS for pattern, method in METHODS if method.startswith("jinja2")}
HEADER = "Translations of {name}."


def extract(package: Path, name: str) -> Catalog:
    """Every message marked in ``package``, as a template catalog."""
    catalog = Catalog(project=name, version="1", charset="utf-8", creation_date=datetime(2026, 1, 1, tzinfo=UTC))
    catalog.header_comment = f"# {HEADER.format(name=name)}"
    found = extract_from_dir(
        str(package),
        METHODS,
        OPTIONS,
        keywords=DEFAULT_KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def _read(path: Path) -> Catalog | None:
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return read_po(handle)


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(
            handle, catalog, width=100, no_location=True, sort_output=True, ignore_obsolete=True, include_previous=False
        )


def update(package: Path, name: str, languages: Iterable[str] = LANGUAGES) -> list[Path]:
    """Extract ``package``'s messages and bring each language's ``.po`` file in step; the files written.

    New messages are added untranslated, removed ones dropped, and existing translations kept.
    """
    template = extract(package, name)
    locale_dir = package / "locale"
    written: list[Path] = []
    for language in languages:
        if language == DEFAULT_LANGUAGE:
            continue
        path = po_path(locale_dir, language)
        catalog = _read(path) or _new_catalog(language, name)
        catalog.update(template, no_fuzzy_matching=True)
        _write(path, catalog)
        written.append(path)
    return written


def _new_catalog(language: str, name: str) -> Catalog:
    catalog = Catalog(
        locale=language,
        project=name,
        version="1",
        charset="utf-8",
        fuzzy=False,
        copyright_holder="the portal's authors",
        msgid_bugs_address="",
        last_translator="",
        language_team="",
        creation_date=datetime(2026, 1, 1, tzinfo=UTC),
        revision_date=datetime(2026, 1, 1, tzinfo=UTC),
    )
    catalog.header_comment = f"# {HEADER.format(name=name)}"
    return catalog


@dataclass
class Problems:
    """What a package's catalogs lack: per language, messages missing from the file or untranslated."""

    missing: dict[str, list[str]] = field(default_factory=dict)
    untranslated: dict[str, list[str]] = field(default_factory=dict)
    obsolete: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any((self.missing, self.untranslated, self.obsolete))

    def lines(self, name: str) -> list[str]:
        """One line per problem, naming the package, the language and the message."""
        out: list[str] = []
        for kind, found in (
            ("missing", self.missing),
            ("untranslated", self.untranslated),
            ("obsolete", self.obsolete),
        ):
            for language, messages in sorted(found.items()):
                out.extend(f"{name} [{language}] {kind}: {message!r}" for message in messages)
        return out


def _key(message_id: str | tuple[str, ...] | list[str]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def check(package: Path, name: str, languages: Iterable[str] = LANGUAGES) -> Problems:
    """Compare ``package``'s code with its ``.po`` files: every message present and translated, none left over."""
    template = extract(package, name)
    wanted = {(_key(m.id), m.context) for m in template if m.id}
    problems = Problems()
    for language in languages:
        if language == DEFAULT_LANGUAGE:
            continue
        catalog = _read(po_path(package / "locale", language))
        have = {(_key(m.id), m.context): m for m in catalog if m.id} if catalog is not None else {}
        missing = sorted(message for message, context in wanted - have.keys())
        untranslated = sorted(
            message
            for (message, context), entry in have.items()
            if (message, context) in wanted and (entry.fuzzy or not _translated(entry.string))
        )
        obsolete = sorted(message for message, context in have.keys() - wanted)
        if missing:
            problems.missing[language] = missing
        if untranslated:
            problems.untranslated[language] = untranslated
        if obsolete:
            problems.obsolete[language] = obsolete
    return problems


def _translated(string: str | tuple[str, ...] | list[str] | None) -> bool:
    if string is None:
        return False
    if isinstance(string, str):
        return bool(string)
    return all(string)
