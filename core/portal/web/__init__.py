"""The HTTP side: app factory, tenant middleware, sessions, page rendering, errors."""
