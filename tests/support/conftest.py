"""The docs' plugin (``docs_plugin``) has a test run of its own, started by ``tests/meta/test_docs_examples.py``."""

collect_ignore = ["docs_plugin"]
