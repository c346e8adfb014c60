"""Plugins and themes used only by the test suite."""
