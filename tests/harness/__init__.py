"""Test harness: base images, SSH target hosts with nested Docker, and a pyinfra runner."""
