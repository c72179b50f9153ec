"""Host data as pyinfra merges it for one environment: group_data/all.py, then <env>.py."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

from tasks.tls import self_signed_pair

PROJECT = Path(__file__).resolve().parents[2]
STRONG = {
    "DFR_DB_PASSWORD": "Zq8rT1xv9LmN4bW7kP2sYc",
    "DFR_POSTGRES_PASSWORD": "Hf3Jk9Lq2Wn8Rt5Vy1Bx7M",
    "DFR_ODOO_ADMIN_PASSWD": "pD4gH8jK2mN6qR9tV3wZ5c",
    "DFR_ODOO_ADMIN_USER_PASSWORD": "uL6nB2vX9cR4tY7wQ3zK8e",
}


def _group_data(name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec((PROJECT / "group_data" / f"{name}.py").read_text(), namespace)
    return {
        k: v
        for k, v in namespace.items()
        if not k.startswith("_") and not isinstance(v, types.ModuleType) and not callable(v)
    }


def host_data(env: str, tmp: Path, **overrides: Any) -> dict[str, Any]:
    """Merged data for ``env`` with strong secrets in ``tmp`` (and a TLS pair for prod)."""
    data = {**_group_data("all"), **_group_data(env)}
    secrets = tmp / f"{env}.env"
    secrets.write_text("".join(f"{k}={v}\n" for k, v in STRONG.items()))
    secrets.chmod(0o600)
    data["secrets_file"] = str(secrets)
    data["dfr_domain"] = f"{env}.dfr.example.org" if env != "dev" else "localhost"
    if env == "prod":
        cert, key = self_signed_pair(data["dfr_domain"])
        (tmp / "fullchain.pem").write_bytes(cert)
        (tmp / "privkey.pem").write_bytes(key)
        data["tls_certificate"] = str(tmp / "fullchain.pem")
        data["tls_certificate_key"] = str(tmp / "privkey.pem")
    data.update(overrides)
    return data


HOST_SHAPE = {"cpus": 4, "ram_mb": 8192}
