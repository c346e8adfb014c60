"""Tools for plugin authors: ``portal plugin new`` (a package to start from) and ``portal plugin migration``."""
