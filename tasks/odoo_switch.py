"""A new Odoo image or configuration put in place with no dropped request (blue/green).

``bin/dfr-switch-odoo`` (``files/backup/dfr-switch-odoo.sh``) starts the compose file's Odoo next
to the running one, switches nginx to it once it is healthy (reload, not restart) and then stops
the old one. Module updates and first deployments are left to ``compose up``: an update needs
Odoo stopped, and there is nothing to switch from at first.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.operation import OperationMeta

from tasks.changes import changes
from tasks.errors import StepFailed, failing_in_one_line
from tasks.host_commands import run_on_host
from tasks.settings import Settings


@operation()
def switch_odoo(
    settings: Settings, inputs: Sequence[OperationMeta], fall_back: bool
) -> Generator[FunctionCommand, None, None]:
    """Runs the switch when one of ``inputs`` (the operations writing what Odoo runs on: its
    image, compose.yaml, configuration, secrets) changed; the script itself finds whether the
    running Odoo differs from the compose file's. ``fall_back``: this deploy kept the running
    release's files in previous/, put back if the new Odoo does not become healthy."""
    if not any(changes(op) for op in inputs):
        host.noop("Odoo's image and configuration are unchanged")
        return
    yield FunctionCommand(_switch, (settings, fall_back), {})


@failing_in_one_line
def _switch(settings: Settings, fall_back: bool) -> None:
    script = f"{settings.stack_dir}/bin/dfr-switch-odoo"
    ok, output = run_on_host(f"{script} --fall-back" if fall_back else script)
    if not ok:
        said = [line.split("ERROR: ", 1)[-1] for line in output.stderr_lines if "ERROR: " in line]
        said = said or output.stderr_lines
        raise StepFailed(f"{host.name}: switching to the new Odoo failed: "
                         f"{said[-1] if said else 'no reason given'}")  # fmt: skip
    if output.stdout_lines[-1:] == ["switched"]:
        logger.info(f"{host.name}: the new Odoo serves; the old one was stopped after it")
