"""Production."""

dfr_env = "prod"

# SSH trusts only the host keys recorded in known_hosts/prod: an unknown or changed key stops
# the run before anything is sent (known_hosts/README.md: adding a host).
ssh_strict_host_key_checking = "yes"
ssh_known_hosts_file = "known_hosts/prod"

odoo_workers = "auto"  # Odoo's formula from the host's CPU and RAM; set a number to override
# Production refuses to deploy without the operator's certificate:
# tls_certificate = "secrets/prod/fullchain.pem"
# tls_certificate_key = "secrets/prod/privkey.pem"

backup_schedule = "*-*-* 02:30:00"  # daily on the host, with retention
