"""The merchant and ISO API under ``/api/v1``: API keys, customers, portal sessions, links."""
