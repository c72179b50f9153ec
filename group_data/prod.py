"""Production."""

dfr_env = "prod"
