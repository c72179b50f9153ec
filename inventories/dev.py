"""Development inventory: this machine, reached without SSH.

pyinfra inventories/dev.py deploy.py     (or: make dev)
"""

import os

dev = [("@local", {"_sudo": os.geteuid() != 0})]
