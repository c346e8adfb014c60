"""Passwordless access: signed portal links, signing keys, sessions, CSRF, API keys."""
