"""Production."""

dfr_env = "prod"

odoo_workers = "auto"  # Odoo's formula from the host's CPU and RAM; set a number to override
# Production refuses to deploy without the operator's certificate:
# tls_certificate = "secrets/prod/fullchain.pem"
# tls_certificate_key = "secrets/prod/privkey.pem"

backup_schedule = "*-*-* 02:30:00"  # daily on the host, with retention
