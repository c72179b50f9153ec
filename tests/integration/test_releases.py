"""Safe deploys on a production-like target: one at a time, recorded, reversible."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.harness.hosts import TargetHost
from tests.harness.pyinfra_run import PROJECT, PYINFRA, PyinfraRun, pyinfra
from tests.harness.waiting import wait_for
from tests.integration.conftest import group_data_file
from tests.integration.stack import curl, prod_target_fixtures, requests_through_nginx

RELEASES = "/opt/dfr/prod/releases.jsonl"
LOCK = "/run/lock/dfr-prod.deploy.lock"
OPERATOR = f"{getpass.getuser()}@{socket.gethostname()}"


target, inventory, domain, first_run = prod_target_fixtures("release")


def _records(target: TargetHost) -> list[dict]:
    return [json.loads(line) for line in target.exec(f"cat {RELEASES}").splitlines()]


def _running_images(target: TargetHost) -> dict[str, str]:
    out = target.exec(
        "docker ps --filter label=com.docker.compose.project=dfr-prod "
        "--format '{{.Label \"com.docker.compose.service\"}} {{.ID}}'"
    )
    return {
        service: target.exec(f"docker inspect -f '{{{{.Image}}}}' {container}")
        for service, container in (line.split() for line in out.splitlines())
    }


def _sha256(target: TargetHost, path: str) -> str:
    return target.exec(f"sha256sum {path}").split()[0]


def _deploy(inventory: Path, **data: object) -> PyinfraRun:
    run = pyinfra(inventory, "deploy.py", data=data)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.mark.smoke
def test_a_deploy_is_recorded_with_what_it_released(first_run, target):
    (record,) = _records(target)
    assert record["result"] == "ok" and record["kind"] == "deploy"
    assert record["operator"] == OPERATOR
    assert record["version"] == (PROJECT / "VERSION").read_text().strip()
    head = subprocess.run(["git", "-C", str(PROJECT), "rev-parse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert record["git"]["commit"] == head and isinstance(record["git"]["dirty"], bool)
    assert record["started"] <= record["ended"]
    assert sorted(record["images"].values()) == sorted(_running_images(target).values())
    assert record["config"]["compose.yaml"] == _sha256(target, "/opt/dfr/prod/compose.yaml")
    assert record["config"]["config/odoo.conf"] == _sha256(target, "/opt/dfr/prod/config/odoo.conf")
    assert record["modules_updated"] == [] and re.fullmatch(r"[0-9a-f]{12}", record["addons"])
    assert record["odoo_unavailable_s"] >= 0
    kept = f"/opt/dfr/prod/releases/{record['id']}"
    assert _sha256(target, f"{kept}/compose.yaml") == record["config"]["compose.yaml"]


def test_an_unchanged_redeploy_records_nothing(first_run, inventory, target):
    before = _records(target)
    again = _deploy(inventory)
    assert again.changed() == [], again.changed()
    assert _records(target) == before


def test_a_second_deploy_is_refused_naming_the_holder_and_a_killed_one_leaves_no_lock(
    first_run, inventory, target
):
    """The first run waits at its confirmation prompt (a change is pending), lock held."""
    before = _records(target)
    first = subprocess.Popen(
        [str(PYINFRA), str(inventory), "deploy.py", "--data", "odoo_workers=3"],
        cwd=PROJECT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(
            "the first deploy to take the lock",
            lambda: target.exec(f"flock -n {LOCK} true && echo free || echo held") == "held",
            timeout=180,
        )
        second = pyinfra(inventory, "deploy.py")
        assert second.returncode != 0
        refusal = second.last_error_line()
        assert "the prod deploy lock is held by" in refusal, second.stderr[-2000:]
        assert f"{OPERATOR} since " in refusal and "running deploy.py" in refusal
        assert "break_lock=true" in refusal
        # Its operator gone (say), the lock is broken on purpose: the run goes ahead.
        breaking = pyinfra(inventory, "deploy.py", data={"break_lock": "true"})
        assert breaking.returncode == 0, breaking.stderr[-2000:]
        assert f"broke the prod deploy lock of {OPERATOR} since " in breaking.stderr
    finally:
        first.kill()  # SIGKILL: no clean-up of its own
        first.wait()
    after = _deploy(inventory)
    assert after.changed() == []
    assert _records(target) == before  # the killed run never executed: nothing to record
    assert "workers = 3" not in target.exec("cat /opt/dfr/prod/config/odoo.conf")


def test_a_failed_deploy_is_recorded_as_failed(first_run, inventory, target):
    group_data_file(inventory, "postgres_options = {'shared_bufers': '256MB'}\n")
    try:
        failed = pyinfra(inventory, "deploy.py")
    finally:
        (inventory.parent / "group_data" / "prod.py").unlink()
    assert failed.returncode != 0
    # the lock's shell records it once the run's connection is gone
    wait_for("the failed run's record", lambda: _records(target)[-1]["result"] == "failed", 30)
    record = _records(target)[-1]
    assert record["kind"] == "deploy" and record["operator"] == OPERATOR
    assert record["ended"] is not None and record["started"] <= record["ended"]


def test_the_release_log_prints_newest_first(first_run, inventory, target):
    run = pyinfra(inventory, "tasks/releases.py")
    assert run.returncode == 0, run.stderr[-2000:]
    printed = re.findall(r"^(\d{8}T\d{6}Z)\s+(\S+)", run.stderr, re.MULTILINE)
    recorded = [(record["id"], record["result"]) for record in reversed(_records(target))]
    assert printed == recorded
    assert OPERATOR in run.stderr


def test_rollback_after_a_config_change_puts_back_the_previous_release(
    first_run, inventory, target, domain
):
    previous = [record for record in _records(target) if record["result"] == "ok"][-1]
    images = _running_images(target)
    _deploy(inventory, odoo_workers=3)
    assert "workers = 3" in target.exec("cat /opt/dfr/prod/config/odoo.conf")

    back = pyinfra(inventory, "tasks/rollback.py")
    assert back.returncode == 0, back.stderr[-3000:]
    record = _records(target)[-1]
    assert record["kind"] == "rollback" and record["result"] == "ok"
    assert record["rolled_back_to"] == previous["id"]
    for path, digest in previous["config"].items():
        assert _sha256(target, f"/opt/dfr/prod/{path}") == digest, path
    assert _running_images(target) == images
    assert curl(target, domain, f"https://{domain}/web/login").returncode == 0
    login = curl(target, domain, f"https://{domain}/web/login", "-o", "/dev/null",
                 "-w", "%{http_code}")  # fmt: skip
    assert login.stdout == "200"


def test_rollback_after_an_image_change_puts_back_the_previous_image(
    first_run, inventory, target, domain, base_images, tmp_path
):
    _deploy(inventory)  # the project's own settings again (recorded only if that changed)
    running = [record for record in _records(target) if record["result"] == "ok"][-1]
    previous = running.get("rolled_back_to") or running["id"]
    images = _running_images(target)
    base = f"dfr-test/nginx-release:{os.getpid()}"
    (tmp_path / "Dockerfile").write_text(f"FROM {base_images['nginx']}\nLABEL release=next\n")
    subprocess.run(["docker", "build", "-q", "-t", base, str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    try:
        _deploy(inventory, nginx_base_image=base)
        assert _running_images(target)["nginx"] != images["nginx"]
    finally:
        subprocess.run(["docker", "rmi", base], check=False, capture_output=True)

    back = pyinfra(inventory, "tasks/rollback.py", data={"release": previous})
    assert back.returncode == 0, back.stderr[-3000:]
    assert _running_images(target) == images
    assert _records(target)[-1]["rolled_back_to"] == previous
    health = curl(target, domain, f"https://{domain}/web/health")
    assert health.returncode == 0 and "pass" in health.stdout


def test_rollback_refuses_an_unknown_release_in_one_line(first_run, inventory, target):
    before = hashlib.sha256(target.exec(f"cat {RELEASES}").encode()).hexdigest()
    run = pyinfra(inventory, "tasks/rollback.py", data={"release": "20200101T000000Z"})
    assert run.returncode != 0
    assert "release '20200101T000000Z' is not a successful deploy in effect here" in (
        run.last_error_line()
    )
    assert hashlib.sha256(target.exec(f"cat {RELEASES}").encode()).hexdigest() == before


def test_odoo_config_and_image_changes_drop_no_request(
    first_run, inventory, target, domain, tmp_path
):
    """A new Odoo starts next to the old one, nginx switches to it, then the old one stops."""
    _deploy(inventory)
    before = _running_images(target)["odoo"]
    volumes = target.exec("docker volume ls -q").split()
    with requests_through_nginx(target, domain, "/web/health") as config_change:
        _deploy(inventory, odoo_workers=3)
    assert "workers = 3" in target.exec("cat /opt/dfr/prod/config/odoo.conf")
    addons = tmp_path / "addons"
    shutil.copytree(PROJECT / "files" / "addons", addons)
    (addons / "NOTES.txt").write_text("not a module: a new image, no module to update\n")
    with requests_through_nginx(target, domain, "/web/health") as image_change:
        run = _deploy(inventory, odoo_workers=3, odoo_addons_src=addons)
    assert not [name for name in run.changed() if "Update Odoo modules" in name]
    assert _running_images(target)["odoo"] != before
    for codes in (config_change, image_change):
        assert len(codes) > 20 and set(codes) == {"200"}, Counter(codes)
    assert _records(target)[-1]["odoo_unavailable_s"] == 0
    # The old containers went with their anonymous volumes (the base image's VOLUMEs): after
    # two switches the host has as many volumes as before, odoo-data and pgdata among them.
    after = target.exec("docker volume ls -q").split()
    assert len(after) == len(volumes) and {"dfr-prod_odoo-data", "dfr-prod_pgdata"} <= set(after)
    _deploy(inventory)


def test_a_new_odoo_that_never_becomes_healthy_leaves_the_old_one_on_its_own_files(
    first_run, inventory, target, domain
):
    """Odoo's processes get far less memory than they need (killed at start): the switch gives
    up, and puts back the compose file and configuration the serving Odoo runs on."""
    quick = {"restore_health_timeout": 20}
    _deploy(inventory, **quick)
    files = ("compose.yaml", "config/odoo.conf", "next/odoo.conf")
    before = {path: _sha256(target, f"/opt/dfr/prod/{path}") for path in files}
    odoo = _running_images(target)["odoo"]
    starving = {"odoo_limit_memory_soft": 1 << 20, "odoo_limit_memory_hard": 2 << 20}
    with requests_through_nginx(target, domain, "/web/health") as codes:
        run = pyinfra(inventory, "deploy.py", data={**quick, **starving})
    assert run.returncode != 0
    assert (
        "switching to the new Odoo failed: the new Odoo exited or was not healthy within 20s; "
        "the running one serves on with the files it ran on put back" in run.stderr
    ), run.stderr[-2000:]
    assert set(codes) == {"200"}, Counter(codes)
    assert {path: _sha256(target, f"/opt/dfr/prod/{path}") for path in files} == before
    assert _running_images(target)["odoo"] == odoo
    target.exec("test -f /opt/dfr/prod/switch-failed.log")  # where the message points
    assert _records(target)[-1]["result"] == "failed"
    again = _deploy(inventory, **quick)
    assert again.changed() == [], again.changed()
    _deploy(inventory)
