"""dfr-deploy capabilities: one module per capability, each exposing a ``@deploy`` function."""
