"""A new configuration is checked by the programs that will read it, in the images that will run
it, before it replaces the live one.

Candidates are uploaded to ``<stack_dir>/next/``. When one changed, ``nginx -t``, PostgreSQL's
own parser (``postgres -C``) and the parser Odoo 18 reads odoo.conf with (``RawConfigParser``,
strict: a key twice is an error) judge all of them, each in a throw-away container with no
network; only then are they copied over ``<stack_dir>/config/``, which the containers mount. A
refused candidate fails the deploy in one line with the program's own words, the running stack
and its files untouched; the candidates are put back to the live files, so the next run shows
the change again.
"""

from __future__ import annotations

import shlex
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FunctionCommand, operation
from pyinfra.api.operation import OperationMeta

from tasks.changes import changes
from tasks.errors import StepFailed, failing_in_one_line
from tasks.host_commands import run_on_host

CANDIDATES = "next"
LIVE = "config"
# Odoo 18 reads odoo.conf with configparser.RawConfigParser() (odoo/tools/config.py).
ODOO_PARSER = """
import configparser, sys
parser = configparser.RawConfigParser()
try:
    parser.read_file(open("/etc/odoo/odoo.conf"))
except configparser.Error as error:
    sys.exit(" ".join(str(error).split()))
if not parser.has_section("options"):
    sys.exit("no [options] section")
"""


@dataclass(frozen=True)
class ConfigCheck:
    what: str  # the configuration, as the operator calls it
    path: str  # relative to config/ (and next/)
    command: str  # exits non-zero with the reason on stderr when the candidate is refused


def config_checks(stack_dir: str, images: dict[str, str]) -> list[ConfigCheck]:
    """The check of each candidate, in the image (by tag) that will read it."""
    candidates = f"{stack_dir}/{CANDIDATES}"
    run = "docker run --rm --network none --log-driver none"
    return [
        ConfigCheck(
            "PostgreSQL configuration (postgresql.conf)",
            "postgresql.conf",
            f"{run} --user postgres --entrypoint postgres "
            f"-v {candidates}/postgresql.conf:/etc/postgresql/postgresql.conf:ro "
            f"{images['postgres']} -C server_version -D /tmp "
            "-c config_file=/etc/postgresql/postgresql.conf",
        ),
        ConfigCheck(
            "Odoo configuration (odoo.conf)",
            "odoo.conf",
            f"{run} --entrypoint python3 -v {candidates}/odoo.conf:/etc/odoo/odoo.conf:ro "
            f"{images['odoo']} -c {shlex.quote(ODOO_PARSER)}",
        ),
        ConfigCheck(
            "Nginx site (dfr.conf)",
            "nginx/dfr.conf",
            # The live TLS files are already in place.
            f"{run} --entrypoint nginx "
            f"-v {candidates}/nginx/dfr.conf:/etc/nginx/conf.d/default.conf:ro "
            f"-v {stack_dir}/tls:/etc/nginx/tls:ro {images['nginx']} -t -q",
        ),
    ]


@operation()
def install_checked_config(
    stack_dir: str, images: dict[str, str], uploads: Sequence[OperationMeta]
) -> Generator[FunctionCommand, None, None]:
    """Checks the candidates and installs them when one of ``uploads`` (the operations writing
    them) changes; no change otherwise."""
    if not any(changes(upload) for upload in uploads):
        host.noop("the configuration is unchanged")
        return
    yield FunctionCommand(_check_then_install, (stack_dir, config_checks(stack_dir, images)), {})


@failing_in_one_line
def _check_then_install(stack_dir: str, checks: list[ConfigCheck]) -> None:
    for check in checks:
        ok, output = run_on_host(check.command)
        if not ok:
            run_on_host(_put_back_candidates(stack_dir, checks))
            reason = _reason(output.stderr_lines + output.stdout_lines)
            raise StepFailed(
                f"{host.name}: the new {check.what} is refused, so nothing was replaced and the "
                f"running stack is untouched: {reason}"
            )
    ok, output = run_on_host(_install_candidates(stack_dir, checks))
    if not ok:
        raise StepFailed(f"{host.name}: could not install the checked configuration: "
                         f"{_reason(output.stderr_lines)}")  # fmt: skip


def _install_candidates(stack_dir: str, checks: list[ConfigCheck]) -> str:
    """Each file replaced by a rename: a container still running reads its old file to the end."""
    steps = ["set -e", f"cd {stack_dir}"]
    for check in checks:
        live = f"{LIVE}/{check.path}"
        steps.append(f"cp {CANDIDATES}/{check.path} {live}.new && mv -f {live}.new {live}")
    return "; ".join(steps)


def _put_back_candidates(stack_dir: str, checks: list[ConfigCheck]) -> str:
    steps = [f"cd {stack_dir}"]
    for check in checks:
        candidate, live = f"{CANDIDATES}/{check.path}", f"{LIVE}/{check.path}"
        steps.append(f"if [ -f {live} ]; then cp -p {live} {candidate}; else rm -f {candidate}; fi")
    return "; ".join(steps)


def _reason(lines: list[str]) -> str:
    """The line that says what is wrong: nginx's [emerg], PostgreSQL's LOG before its FATAL."""
    lines = [line.strip() for line in lines if line.strip() and "skipping missing" not in line]
    for marker in ("[emerg]", "LOG:", "FATAL:"):
        found = [line for line in lines if marker in line]
        if found:  # from the marker on: PostgreSQL's lines start with a timestamp
            return found[0][found[0].index(marker) :] if marker != "[emerg]" else found[0]
    return lines[-1] if lines else "no reason given"
