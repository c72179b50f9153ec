"""Staging: production-like hosts that receive neutralized copies of production."""

dfr_env = "staging"

# SSH trusts only the host keys recorded in known_hosts/staging: an unknown or changed key stops
# the run before anything is sent (known_hosts/README.md: adding a host).
ssh_strict_host_key_checking = "yes"
ssh_known_hosts_file = "known_hosts/staging"
