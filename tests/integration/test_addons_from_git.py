"""Addons from git on a production-like target: two repositories, one served over file:// from
this machine, one private over SSH from another host acting as the git server, pinned to a
tag. Fetched on the controller with the operator's key; the target never gets git or the key."""

from __future__ import annotations

import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.hosts import SSH_USER, HostPool, TargetHost
from tests.harness.images import dev_machine_image, docker_ready_image
from tests.harness.keys import new_key_pair
from tests.harness.pyinfra_run import PROJECT, PyinfraRun, pyinfra
from tests.integration.stack import psql, stack_inventory
from tests.unit.addon_repos import Upstream, pure_wheel

MODULES = ["dfr_base", "oca_reports", "vendor_theme"]


@pytest.fixture(scope="module")
def target(start_hosts, pool: HostPool) -> TargetHost:
    (host,) = start_hosts(docker_ready_image(), prefix="addons")
    return host


@pytest.fixture(scope="module")
def git_server(start_hosts) -> TargetHost:
    (host,) = start_hosts(dev_machine_image(), prefix="gitserver")
    return host


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("addons-git")


@pytest.fixture(scope="module")
def operator_key(work, git_server) -> Path:
    """The operator's own key for the private repository: the git server only knows it."""
    directory = work / "operator"
    directory.mkdir()
    key, public = new_key_pair(directory)
    git_server.exec(f"cat >> /home/{SSH_USER}/.ssh/authorized_keys", input=public.encode())
    return key


@pytest.fixture(scope="module")
def git_env(work, operator_key, pool) -> dict[str, str]:
    """What the operator's shell has: their git cache and their SSH key for git."""
    known_hosts = pool.key_path.parent / "known_hosts"
    ssh = (
        f"ssh -i {shlex.quote(str(operator_key))} -o IdentitiesOnly=yes "
        f"-o StrictHostKeyChecking=yes -o UserKnownHostsFile={shlex.quote(str(known_hosts))}"
    )
    # No package index here: the operator's pip finds the addons' wheels in a wheelhouse.
    pure_wheel(work / "wheelhouse", "dfr-test-wheel", "1.2.0")
    return {
        "XDG_CACHE_HOME": str(work / "cache"),
        "GIT_SSH_COMMAND": ssh,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(work / "wheelhouse"),
    }


@pytest.fixture(scope="module")
def oca(work) -> Upstream:
    """Two modules, one depending on the other, on branch 18.0 (file://)."""
    upstream = Upstream(work, "oca")
    upstream.module("oca_base_tools")
    _reports(upstream, "18.0.1.0.0")
    upstream.commit("Reports on top of base tools")
    return upstream


def _reports(upstream: Upstream, version: str) -> None:
    """oca_reports: on oca_base_tools, with a Python package the Odoo image lacks."""
    upstream.module("oca_reports", depends=("oca_base_tools", "web"), version=version,
                    external_dependencies={"python": ["dfr-test-wheel"]})  # fmt: skip


@pytest.fixture(scope="module")
def vendor_url(work, git_server) -> str:
    """A private repository on the git server, its module in addons/, released as v1.0."""
    upstream = Upstream(work, "vendor")
    upstream.module("vendor_theme", subdir="addons")
    upstream.commit("Theme")
    upstream.tag("v1.0")
    upstream.module("vendor_theme", subdir="addons", version="18.0.2.0.0")
    upstream.commit("Theme 2, not released")
    archive = subprocess.run(["tar", "-C", str(upstream.bare.parent), "-c", upstream.bare.name],
                             capture_output=True, check=True).stdout  # fmt: skip
    home = f"/home/{SSH_USER}"
    git_server.exec(f"tar -C {home} -x && chown -R {SSH_USER}: {home}/vendor.git", input=archive)
    return f"ssh://{SSH_USER}@{git_server.address}{home}/vendor.git"


@pytest.fixture(scope="module")
def inventory(pool, target, base_images, distro_docker_data, work, oca, vendor_url) -> Path:
    path = stack_inventory(pool, [target], "prod", base_images, distro_docker_data)
    (work / "constraints.txt").write_text("dfr-test-wheel==1.2.0\nopenupgradelib==3.6.0\n")
    return _with_data(
        path,
        odoo_modules=MODULES,
        odoo_addons_repositories=[
            {"name": "oca", "url": oca.url, "ref": "18.0"},
            {"name": "vendor", "url": vendor_url, "ref": "v1.0", "subdir": "addons"},
        ],
        odoo_addons_lock=str(work / "addons.lock"),
        odoo_addons_constraints=str(work / "constraints.txt"),
    )


def _with_data(inventory: Path, directory: str = "", **data: object) -> Path:
    """The inventory with ``data`` in each host's data, as a file of the same name (the same
    environment) in ``directory`` beside it."""
    hosts = runpy.run_path(str(inventory))["targets"]
    hosts = [(name, {**host_data, **data}) for name, host_data in hosts]
    path = inventory.parent / directory / inventory.name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"targets = {hosts!r}\n")
    return path


def addons_update(inventory: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """``make addons_update`` for the test's inventory."""
    return subprocess.run(
        [sys.executable, "-m", "tasks.addons_lock", str(inventory)],
        cwd=PROJECT, capture_output=True, text=True, env={**os.environ, **env}, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def first_run(inventory, git_env) -> PyinfraRun:
    updated = addons_update(inventory, git_env)
    assert updated.returncode == 0, updated.stderr
    run = pyinfra(inventory, "deploy.py", env=git_env)
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def _rows(target: TargetHost) -> dict[str, tuple[str, str]]:
    rows = psql(
        target,
        "SELECT name, state, latest_version FROM ir_module_module "
        "WHERE name LIKE 'oca%' OR name LIKE 'vendor%' OR name = 'dfr_base'",
    )
    return {row.split("|")[0]: tuple(row.split("|")[1:]) for row in rows.splitlines()}


def _host_state(target: TargetHost) -> str:
    """What a deploy would change on the host: its stack files, containers and images."""
    return target.exec(
        "find /opt/dfr -path /opt/dfr/prod/backups -prune -o -printf '%p %s %T@\\n' | sort; "
        "docker ps -a --format '{{.ID}} {{.Image}} {{.Status}}' | sed 's/Up .*/Up/'; "
        "docker image ls -q --no-trunc | sort"
    )


def test_two_repositories_install_the_listed_modules_in_a_fixed_addons_path(
    first_run, target, oca, work
):
    rows = _rows(target)
    assert rows["oca_reports"] == ("installed", "18.0.1.0.0")
    assert rows["oca_base_tools"][0] == "installed"  # its dependency, from the same repository
    assert rows["vendor_theme"] == ("installed", "18.0.1.0.0")  # the tag, not the branch's 2.0
    conf = target.exec("grep ^addons_path /opt/dfr/prod/config/odoo.conf")
    path = "/opt/dfr-own-addons,/opt/dfr-addons/oca,/opt/dfr-addons/vendor"
    assert conf.strip() == f"addons_path = {path}"
    in_image = target.exec(
        "docker exec $(docker ps -q --filter label=com.docker.compose.service=odoo) "
        "ls /opt/dfr-addons/oca /opt/dfr-addons/vendor"
    )
    assert {"oca_base_tools", "oca_reports", "vendor_theme"} <= set(in_image.split())


def test_the_addons_python_packages_are_in_the_image_outside_the_system_python(first_run, target):
    odoo = "$(docker ps -q --filter label=com.docker.compose.service=odoo)"
    said = target.exec(
        f"docker exec {odoo} python3 -c 'import dfr_test_wheel as w; print(w.VERSION, w.__file__)'"
    )
    assert said.split() == ["1.2.0", "/opt/dfr-python/dfr_test_wheel/__init__.py"]


def test_the_hosts_never_get_the_operators_git_key_nor_git(first_run, target, operator_key):
    # The key's body lines after the first (which every OpenSSH ed25519 key shares).
    body = operator_key.read_text().splitlines()[2:-1]
    patterns = " ".join(f"-e {shlex.quote(line)}" for line in body)
    found = target.exec(
        f"grep -rlF {patterns} /opt /home /root /etc /tmp /var/lib/dfr "
        "/var/lib/docker/volumes 2>/dev/null; true"
    )
    assert found.strip() == ""
    odoo = "$(docker ps -q --filter label=com.docker.compose.service=odoo)"
    image = target.exec(
        f"docker run --rm --entrypoint sh $(docker inspect -f '{{{{.Image}}}}' {odoo}) -c "
        f"{shlex.quote(f'grep -rlF {patterns} /opt /mnt /etc /var/lib/odoo 2>/dev/null; true')}"
    )
    assert image.strip() == ""
    assert target.exec("command -v git; true").strip() == ""


def test_an_unchanged_redeploy_changes_nothing_and_fetches_nothing(
    first_run, inventory, git_env, oca, work
):
    hidden = work / "oca-unreachable.git"
    oca.bare.rename(hidden)  # upstream gone: only the cache can give the locked commit
    try:
        run = pyinfra(inventory, "deploy.py", env=git_env)
    finally:
        hidden.rename(oca.bare)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.changed() == [], (run.changed(), first_run.changed())
    assert "addons: fetched" not in run.output


def test_a_moved_branch_changes_nothing_until_addons_update_then_updates_that_module(
    first_run, inventory, git_env, oca, target
):
    before = _rows(target)
    _reports(oca, "18.0.1.1.0")
    new = oca.commit("Reports: a total column")

    still = pyinfra(inventory, "deploy.py", env=git_env)
    assert still.returncode == 0, still.stderr[-3000:]
    assert still.changed() == []
    assert _rows(target) == before

    updated = addons_update(inventory, git_env)
    assert updated.returncode == 0, updated.stderr
    assert f"..{new[:12]}" in updated.stdout and "Reports: a total column" in updated.stdout
    assert "vendor (" in updated.stdout and "unchanged" in updated.stdout

    state = _host_state(target)
    preview = pyinfra(inventory, "deploy.py", "--dry", "--diff", execute=False,
                      json_output=False, env=git_env)  # fmt: skip
    assert preview.returncode == 0, preview.stderr[-3000:]
    assert f"Addons of oca at {new[:12]}" in preview.output
    assert "Addons of vendor" not in preview.output  # its archive on the host is current
    assert _host_state(target) == state

    run = pyinfra(inventory, "deploy.py", env=git_env)
    assert run.returncode == 0, run.stderr[-3000:]
    builds = [name for name in run.changed() if "| Build image " in name]
    assert len(builds) == 1 and "dfr/odoo:" in builds[0], builds
    updates = [name.split(" | ")[-1] for name in run.changed() if "Update Odoo modules" in name]
    assert updates == ["Update Odoo modules oca_reports on a snapshot (Odoo stopped meanwhile)"]
    after = _rows(target)
    assert after["oca_reports"] == ("installed", "18.0.1.1.0")
    assert after["oca_base_tools"] == before["oca_base_tools"]
    assert after["vendor_theme"] == before["vendor_theme"]


BAD = {
    "duplicate": ({"name": "oca_base_tools"}, "addon oca_base_tools is in oca and bad: take it"),
    "unknown module": ({"name": "bad_tool"},
                       "addon bad_missing of odoo_modules is in no addons repository"),
    "missing dependency": ({"name": "bad_tool", "depends": ("bad_elsewhere",)},
                           "addon bad_tool (bad) depends on bad_elsewhere, which no addons"),
    # image_source upload: Odoo's own modules are read from the base image (the test double
    # has base, bus, mail and web), so one the real Odoo has is refused here
    "not in the base image": ({"name": "bad_tool", "depends": ("sale",)},
                              "addon bad_tool (bad) depends on sale, which no addons"),
    "manifest": ({"name": "bad_tool", "manifest": "{'name': 'x',\n"},
                 "addon bad_tool (bad): __manifest__.py does not parse"),
    "version": ({"name": "bad_tool", "version": "17.0.1.0.0"},
                "addon bad_tool (bad): version '17.0.1.0.0' is not for Odoo 18"),
    "requirements": ({"name": "bad_tool", "requirements": "openupgradelib<3\n"},
                     "addon bad_tool needs openupgradelib<3 but constraints.txt pins "
                     "openupgradelib==3.6.0: a conflict"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_check_stops_the_deploy_with_one_line_and_nothing_changed(
    first_run, inventory, git_env, oca, vendor_url, target, work, case
):
    module, message = BAD[case]
    upstream = Upstream(work, f"bad-{case.replace(' ', '-')}")
    upstream.module(module["name"], depends=module.get("depends", ("base",)),
                    version=module.get("version", "18.0.1.0.0"),
                    files={"requirements.txt": module.get("requirements", "")})  # fmt: skip
    if "manifest" in module:
        (upstream.work / module["name"] / "__manifest__.py").write_text(module["manifest"])
    upstream.commit("bad")
    lock = work / f"{case}.lock"
    (lock).write_text((work / "addons.lock").read_text())
    bad = _with_data(
        inventory,
        directory=case.replace(" ", "-"),
        odoo_modules=[*MODULES, "bad_missing"] if case == "unknown module" else MODULES,
        odoo_addons_repositories=[
            {"name": "oca", "url": oca.url, "ref": "18.0"},
            {"name": "vendor", "url": vendor_url, "ref": "v1.0", "subdir": "addons"},
            {"name": "bad", "url": upstream.url, "ref": "18.0"},
        ],
        odoo_addons_lock=str(lock),
    )
    assert addons_update(bad, git_env).returncode == 0
    before = _host_state(target)
    run = pyinfra(bad, "deploy.py", env=git_env, json_output=False)
    assert run.returncode != 0
    assert message in run.last_error_line(), run.stderr[-2000:]
    assert _host_state(target) == before


def test_a_repository_missing_from_the_lock_stops_the_deploy(inventory, git_env, work, oca):
    missing = _with_data(
        inventory, directory="unlocked",
        odoo_addons_repositories=[{"name": "oca2", "url": oca.url, "ref": "18.0"}],
    )  # fmt: skip
    run = pyinfra(missing, "deploy.py", env=git_env, json_output=False)
    assert run.returncode != 0
    assert "addons repository oca2: it is not in addons.lock: run make addons_update" in (
        run.last_error_line()
    )
