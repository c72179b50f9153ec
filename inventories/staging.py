"""Staging inventory. Replace the example host with yours; per-host data overrides group data.

pyinfra inventories/staging.py deploy.py --dry --diff
pyinfra inventories/staging.py deploy.py
"""

odoo_servers = [
    (
        "staging.dfr.example.org",
        {"ssh_user": "deploy", "_sudo": True},
    ),
]
