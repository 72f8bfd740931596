"""Exact theory of training dynamics (deep linear networks, linear regression, mean field)."""
