"""One exception type for every input the operator must fix before anything runs."""

from pyinfra.api.exceptions import DeployError


class SettingsError(DeployError):
    """Bad input: pyinfra prints it as one line and exits non-zero before any change."""
