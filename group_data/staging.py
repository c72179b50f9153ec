"""Staging: production-like hosts that receive neutralized copies of production."""

dfr_env = "staging"
