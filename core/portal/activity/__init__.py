"""The Overview's *Recent activity*: the signed-in customer's audited events, described in words."""
