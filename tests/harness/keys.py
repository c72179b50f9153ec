"""A fresh SSH key pair per test run."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def new_key_pair(directory: Path) -> tuple[Path, str]:
    """Write an ed25519 private key (0600) into ``directory``; return its path and public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path = directory / "id_ed25519"
    path.touch(mode=0o600)
    path.write_bytes(private)
    return path, public.decode() + " dfr-test\n"
