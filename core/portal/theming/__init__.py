"""Themes: template precedence, one cached Jinja environment per theme, static files."""
