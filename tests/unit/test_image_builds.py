"""When an image is built on the host: its tag missing, or its base replaced under its name."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pyinfra.api import deploy

from tasks.images import Image, build_image
from tests.unit.plan import Plan, os_release, plan

IMAGE = Image("odoo", "odoo:18.0", Path("files/odoo"), None, "dfr/odoo:1.4.0-0123456789ab", "e3b0")
BASE_A, BASE_B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _plan(built_on: str | None, base_id: str | None, refresh: bool = False) -> Plan:
    @deploy("Build")
    def build() -> None:
        build_image(
            image=IMAGE,
            context="/opt/dfr/prod/build/odoo",
            version="1.4.0",
            built_on=built_on,
            base_id=base_id,
            refresh=refresh,
        )

    return plan(build, os_release("debian", "12", "bookworm"))


def _builds(result: Plan) -> list[str]:
    return [command for command in result.commands if "docker build" in command]


def test_an_image_built_on_the_hosts_current_base_is_not_built_again():
    assert _builds(_plan(built_on=BASE_A, base_id=BASE_A)) == []


def test_an_existing_image_is_kept_while_its_base_is_not_known_before_the_run():
    assert _builds(_plan(built_on=BASE_A, base_id=None)) == []


def _run_on_stub_engine(command: str, tmp_path: Path, base_id: str, built_on: str) -> list[str]:
    """Runs the planned build command against a stand-in ``docker`` that answers ``base_id``
    for the base, ``built_on`` for the image's label, and records every call."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "docker"
    stub.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >>{calls}\n'
        'case "$*" in\n'
        f"  *dfr.base-id*dfr/odoo*) echo {built_on} ;;\n"
        f"  *'{{{{.Id}}}}'*) echo {base_id} ;;\n"
        "esac\n"
    )
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    subprocess.run(["bash", "-c", command], env=env, check=True, capture_output=True)
    return calls.read_text().splitlines()


def test_a_base_replaced_under_its_name_rebuilds_the_image_under_its_tag(tmp_path):
    (command,) = _builds(_plan(built_on=BASE_A, base_id=BASE_B))
    calls = _run_on_stub_engine(command, tmp_path, base_id=BASE_B, built_on=BASE_A)
    (build,) = [call for call in calls if call.startswith("build")]
    assert build.startswith("build -t dfr/odoo:1.4.0-0123456789ab --build-arg ODOO_BASE=odoo:18.0")
    # the label records the base the build really used, read on the host just before it
    assert f"--label dfr.base-id={BASE_B}" in build
    assert not any(call.startswith("pull") for call in calls)


def test_an_image_built_before_bases_were_recorded_is_rebuilt_once():
    assert len(_builds(_plan(built_on="", base_id=BASE_A))) == 1


def test_refresh_pulls_the_base_again_and_rebuilds_when_it_changed(tmp_path):
    (command,) = _builds(_plan(built_on=BASE_A, base_id=None, refresh=True))
    calls = _run_on_stub_engine(command, tmp_path, base_id=BASE_B, built_on=BASE_A)
    assert calls[0] == "pull -q odoo:18.0"
    (build,) = [call for call in calls if call.startswith("build")]
    assert f"--label dfr.base-id={BASE_B}" in build


def test_refresh_builds_nothing_when_the_pulled_base_is_the_one_built_on(tmp_path):
    (command,) = _builds(_plan(built_on=BASE_A, base_id=None, refresh=True))
    calls = _run_on_stub_engine(command, tmp_path, base_id=BASE_A, built_on=BASE_A)
    assert calls[0] == "pull -q odoo:18.0"
    assert not any(call.startswith("build") for call in calls)


def test_a_missing_image_is_built(tmp_path):
    (command,) = _builds(_plan(built_on=None, base_id=None))
    calls = _run_on_stub_engine(command, tmp_path, base_id=BASE_A, built_on="")
    assert [call.split()[0] for call in calls] == ["image", "image", "build"]
