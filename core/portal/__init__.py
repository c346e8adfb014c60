"""Portal core: the platform every feature plugin and theme plugs into."""

__version__ = "0.1.0"
