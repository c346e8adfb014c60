"""Payments: the gateway contract, the merchant's gateway choice and the built-in adapters."""
