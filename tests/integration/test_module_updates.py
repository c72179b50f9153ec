"""Module updates on a production-like target: only what changed, on a snapshot, put back on
failure with the release before it."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.harness.hosts import TargetHost
from tests.harness.pyinfra_run import PROJECT, PyinfraRun, pyinfra
from tests.integration.stack import curl, prod_target_fixtures, psql, requests_through_nginx

FILESTORE = "/var/lib/docker/volumes/dfr-prod_odoo-data/_data/filestore"
MANIFEST = """{{
    "name": "{name}",
    "version": "{version}",
    "license": "LGPL-3",
    "depends": {depends!r},
    "installable": True,
}}
"""


target, inventory, domain, first_run = prod_target_fixtures("modules")


@pytest.fixture(scope="module")
def addons(tmp_path_factory) -> Path:
    """The project's addons plus dfr_extra, which depends on dfr_base."""
    path = tmp_path_factory.mktemp("addons")
    shutil.rmtree(path)
    shutil.copytree(PROJECT / "files" / "addons", path)
    _module(path, "dfr_extra", "18.0.1.0.0", ["dfr_base"])
    return path


def _module(addons: Path, name: str, version: str, depends: list[str]) -> Path:
    module = addons / name
    module.mkdir(exist_ok=True)
    (module / "__init__.py").touch()
    (module / "__manifest__.py").write_text(
        MANIFEST.format(name=name, version=version, depends=depends)
    )
    return module


def _deploy_extra(inventory: Path, addons: Path, **data: object) -> PyinfraRun:
    """deploy.py with dfr_extra among odoo_modules (host data: an inventory of its own)."""
    text = inventory.read_text().replace("'odoo_modules': ['dfr_base']",
                                         "'odoo_modules': ['dfr_base', 'dfr_extra']")  # fmt: skip
    assert "dfr_extra" in text
    (inventory.parent / "extra").mkdir(exist_ok=True)
    path = inventory.parent / "extra" / "prod.py"  # same name: the same environment
    path.write_text(text)
    return pyinfra(path, "deploy.py", data={"odoo_addons_src": addons, **data})


def _module_rows(target: TargetHost) -> dict[str, tuple[str, str, str]]:
    rows = psql(target, "SELECT name, state, latest_version, write_date FROM ir_module_module "
                        "WHERE name LIKE 'dfr%'")  # fmt: skip
    return {row.split("|")[0]: tuple(row.split("|")[1:]) for row in rows.splitlines()}


def _last_record(target: TargetHost) -> dict:
    return json.loads(target.exec("tail -n1 /opt/dfr/prod/releases.jsonl"))


def _database_dump(target: TargetHost) -> str:
    """The whole database as SQL (pg_dump 17.6's random \\restrict key left out)."""
    dump = target.exec(
        "docker exec $(docker ps -q --filter label=com.docker.compose.service=postgres) "
        "pg_dump -U postgres -d dfr | grep -v '^\\\\\\(un\\)\\?restrict '"
    )
    assert "CREATE TABLE public.ir_module_module" in dump
    return dump


def _filestore(target: TargetHost) -> str:
    listing = target.exec(
        f"cd {FILESTORE} && find . -type f -print0 | sort -z | xargs -0 sha256sum"
    )
    assert "./dfr/ab/ab12" in listing
    return listing


def _running_manifest(target: TargetHost, module: str) -> str:
    """The manifest of one of the project's own addons, as the running Odoo reads it."""
    odoo = target.exec("docker ps -q --filter label=com.docker.compose.service=odoo")
    return target.exec(f"docker exec {odoo} cat /opt/dfr-own-addons/{module}/__manifest__.py")


def _odoo_image(target: TargetHost) -> str:
    return target.exec(
        "docker inspect -f '{{.Image}}' "
        "$(docker ps -q --filter label=com.docker.compose.service=odoo)"
    )


@pytest.mark.smoke
def test_a_module_added_to_odoo_modules_is_installed_and_nothing_else_updated(
    first_run, inventory, addons, target
):
    before = _module_rows(target)
    run = _deploy_extra(inventory, addons)
    assert run.returncode == 0, run.stderr[-3000:]
    after = _module_rows(target)
    assert after["dfr_extra"][0] == "installed"
    assert after["dfr_base"] == before["dfr_base"]  # same version, not written
    record = _last_record(target)
    assert record["modules_installed"] == ["dfr_extra"] and record["modules_updated"] == []


def test_only_the_module_whose_files_changed_is_updated_behind_a_maintenance_page(
    first_run, inventory, addons, target, domain
):
    before = _module_rows(target)
    _module(addons, "dfr_extra", "18.0.1.1.0", ["dfr_base"])
    with requests_through_nginx(target, domain, "/web/health") as codes:
        run = _deploy_extra(inventory, addons)
    assert run.returncode == 0, run.stderr[-3000:]
    # While Odoo is stopped for the update: the maintenance page, never a 502 or no answer.
    assert "503" in codes and set(codes) == {"200", "503"}, Counter(codes)
    after = _module_rows(target)
    assert after["dfr_extra"][1] == "18.0.1.1.0"
    assert after["dfr_base"] == before["dfr_base"]
    assert _last_record(target)["modules_updated"] == ["dfr_extra"]
    assert '"version": "18.0.1.1.0"' in _running_manifest(target, "dfr_extra")  # the new code
    again = _deploy_extra(inventory, addons)
    assert again.returncode == 0 and again.changed() == [], again.changed()


def test_a_failing_update_puts_back_the_database_filestore_and_release_before_it(
    first_run, inventory, addons, target, domain, tmp_path
):
    """dfr_base's update runs and commits (a post-migration writes a table), then dfr_extra's
    pre-migration raises: Odoo leaves a half-migrated database, which must not stay."""
    target.exec(
        f"mkdir -p {FILESTORE}/dfr/ab && echo stored >{FILESTORE}/dfr/ab/ab12 && "
        f"chown -R --reference={FILESTORE}/.. {FILESTORE}"
    )  # as Odoo stores files
    dump, filestore, image = _database_dump(target), _filestore(target), _odoo_image(target)
    failing = tmp_path / "addons"
    shutil.copytree(addons, failing)
    base = _module(failing, "dfr_base", "18.0.1.1.0", ["base"])
    (base / "migrations" / "18.0.1.1.0").mkdir(parents=True)
    (base / "migrations" / "18.0.1.1.0" / "post-mark.py").write_text(
        "import os\n\n"
        "def migrate(cr, version):\n"
        "    cr.execute('CREATE TABLE dfr_half_migrated (v int)')\n"
        "    os.makedirs('/var/lib/odoo/filestore/dfr/cd', exist_ok=True)\n"
        "    open('/var/lib/odoo/filestore/dfr/cd/cd34', 'w').write('added by the update')\n"
    )
    extra = _module(failing, "dfr_extra", "18.0.1.2.0", ["dfr_base"])
    (extra / "migrations" / "18.0.1.2.0").mkdir(parents=True)
    (extra / "migrations" / "18.0.1.2.0" / "pre-break.py").write_text(
        "def migrate(cr, version):\n    raise Exception('broken migration of dfr_extra')\n"
    )

    run = _deploy_extra(inventory, failing)
    assert run.returncode != 0
    assert "the module update (update dfr_base,dfr_extra) failed and was rolled back" in run.stderr
    assert "Exception: broken migration of dfr_extra" in run.stderr, run.stderr[-2000:]
    assert _database_dump(target) == dump  # byte for byte: dfr_base's committed update is gone
    assert _filestore(target) == filestore
    assert _odoo_image(target) == image
    login = curl(target, domain, f"https://{domain}/web/login", "-o", "/dev/null",
                 "-w", "%{http_code}")  # fmt: skip
    assert login.stdout == "200"
    record = _last_record(target)
    assert record["result"] == "rolled back"
    assert "broken migration of dfr_extra" in record["error"]
    assert psql(target, "SELECT count(*) FROM pg_database WHERE datname LIKE 'dfr_before_%'") == "2"

    # The release before is what runs: deploying it again changes only the build context,
    # which the failed run had filled with its addons (and records that as a release).
    again = _deploy_extra(inventory, addons)
    assert again.returncode == 0, again.stderr[-3000:]
    changed = [name for name in again.changed() if "build context" not in name.lower()]
    assert changed == ["Record the release if the run changed anything"], changed


def test_a_rollback_over_a_module_update_puts_back_its_snapshot_once_the_loss_is_confirmed(
    first_run, inventory, addons, target, domain
):
    dump, filestore, image = _database_dump(target), _filestore(target), _odoo_image(target)
    _module(addons, "dfr_extra", "18.0.1.3.0", ["dfr_base"])
    run = _deploy_extra(inventory, addons)
    assert run.returncode == 0, run.stderr[-3000:]
    update = _last_record(target)
    assert update["modules_updated"] == ["dfr_extra"]
    assert update["snapshot"] == f"dfr_before_{update['id']}"
    # Work done on the updated release: what going back to the snapshot loses.
    psql(target, "CREATE TABLE dfr_written_after AS SELECT 'x' AS v")
    target.exec(f"mkdir -p {FILESTORE}/dfr/ef && echo new >{FILESTORE}/dfr/ef/ef56")
    now = _database_dump(target), _filestore(target)

    refused = pyinfra(inventory, "tasks/rollback.py")
    assert refused.returncode != 0
    assert f"before release {update['id']} updated dfr_extra, at " in refused.stderr
    assert (
        " min ago): everything written since is lost; add --data confirm_snapshot="
        f"{update['id']} to go ahead" in refused.stderr
    ), refused.stderr[-2000:]
    assert (_database_dump(target), _filestore(target)) == now

    with requests_through_nginx(target, domain, "/web/health") as codes:
        run = pyinfra(inventory, "tasks/rollback.py", data={"confirm_snapshot": update["id"]})
    assert run.returncode == 0, run.stderr[-3000:]
    assert _database_dump(target) == dump  # byte for byte: the update and the work after it gone
    assert _filestore(target) == filestore
    assert _odoo_image(target) == image
    assert set(codes) <= {"200", "503"}, Counter(codes)  # the maintenance page while stopped
    login = curl(target, domain, f"https://{domain}/web/login", "-o", "/dev/null",
                 "-w", "%{http_code}")  # fmt: skip
    assert login.stdout == "200"
    record = _last_record(target)
    assert record["kind"] == "rollback" and record["result"] == "ok"
    assert record["snapshot_put_back"] == update["id"]
    # What the snapshot replaced is set aside, not dropped.
    aside = f"dfr_before_{record['id']}"
    assert psql(target, f"SELECT count(*) FROM pg_database WHERE datname = '{aside}'") == "1"
    assert psql(target, "SELECT v FROM dfr_written_after", db=aside) == "x"
