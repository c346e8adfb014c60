"""Plugin discovery (the ``portal`` entry-point group) and the registry of what plugins provide."""
