"""Background work with taskiq: the broker chosen by URL, and the worker."""
