"""Domain events: the audit trail (hash-chained per merchant) and the webhook outbox."""
