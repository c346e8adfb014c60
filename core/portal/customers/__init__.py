"""Customers' own data kept by core beyond the tenancy record (billing details)."""
