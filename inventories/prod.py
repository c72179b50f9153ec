"""Production inventory. Replace the example host with yours; per-host data overrides group data.

pyinfra inventories/prod.py deploy.py --dry --diff     (always first)
pyinfra inventories/prod.py deploy.py
"""

odoo_servers = [
    (
        "odoo.dfr.example.org",
        {"ssh_user": "deploy", "_sudo": True},
    ),
]
