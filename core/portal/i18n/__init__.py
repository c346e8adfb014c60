"""Languages: the portal's catalogs, the current request's translations and locale negotiation.

Pages, emails and PDFs are written in one of :data:`LANGUAGES`. A request (or an email being
rendered) sets the translations in use with :func:`use_translations`; :func:`gettext` and the
templates' ``_()``, ``{% trans %}`` read them from there. Outside such a scope text stays in
English.
"""

from portal.i18n.catalogs import Catalogs
from portal.i18n.current import (
    N_,
    current_language,
    current_locale,
    gettext,
    ngettext,
    npgettext,
    pgettext,
    use_translations,
)
from portal.i18n.negotiate import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, choose_locale, language_of

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "N_",
    "Catalogs",
    "choose_locale",
    "current_language",
    "current_locale",
    "gettext",
    "language_of",
    "ngettext",
    "npgettext",
    "pgettext",
    "use_translations",
]
