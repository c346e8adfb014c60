"""ISOs, merchants, domains, customers and per-merchant plugin activation."""
