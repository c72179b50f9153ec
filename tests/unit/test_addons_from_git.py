"""Addons from git on the controller: the lock, the cached shallow fetch, the checks before
anything reaches a host. Real git on local bare repositories (file://)."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tasks import addons_git
from tasks.addons_lock import update
from tasks.addons_plan import addons_plan
from tasks.addons_repos import locked, read_lock, repositories
from tasks.errors import SettingsError
from tasks.settings import load_settings
from tests.unit.addon_repos import Upstream
from tests.unit.environments import PROJECT, host_data

OWN = PROJECT / "files" / "addons"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "dfr-deploy" / "addons"


@pytest.fixture
def oca(tmp_path) -> Upstream:
    """A repository of two modules, one depending on the other, on branch 18.0."""
    upstream = Upstream(tmp_path, "oca")
    upstream.module("oca_base_tools")
    upstream.module("oca_reports", depends=("oca_base_tools", "web"))
    upstream.commit("two modules")
    return upstream


@pytest.fixture
def vendor(tmp_path) -> Upstream:
    """A repository with its modules in a subdirectory, released as tag v1.0."""
    upstream = Upstream(tmp_path, "vendor")
    upstream.module("vendor_theme", subdir="addons")
    upstream.commit("theme")
    upstream.tag("v1.0")
    return upstream


def _settings(tmp_path, *repos: dict, lock: Path | None = None, **data) -> dict:
    return {"odoo_addons_repositories": list(repos),
            "odoo_addons_lock": str(lock or tmp_path / "addons.lock"), **data}  # fmt: skip


def _update(tmp_path, data: dict) -> str:
    """``make addons_update`` for an inventory of one host with ``data``."""
    inventory = tmp_path / "inventory" / "prod.py"
    inventory.parent.mkdir(exist_ok=True)
    inventory.write_text(f"hosts = [('h1', {data!r})]\n")
    out = io.StringIO()
    update([inventory], PROJECT, out)
    return out.getvalue()


def _plan(tmp_path, data: dict, modules: tuple[str, ...] = (), constraints: str = ""):
    repos = locked(repositories(data, PROJECT), Path(data["odoo_addons_lock"]))
    pins = tmp_path / "constraints.txt"
    pins.write_text(constraints)
    return addons_plan(OWN, repos, modules, pins)


# --- lock ---------------------------------------------------------------------------------


def test_addons_update_locks_each_repository_and_a_tag_to_its_commit(tmp_path, oca, vendor):
    data = _settings(
        tmp_path,
        {"name": "oca", "url": oca.url, "ref": "18.0"},
        {"name": "vendor", "url": vendor.url, "ref": "v1.0", "subdir": "addons"},
    )
    said = _update(tmp_path, data)
    lock = read_lock(tmp_path / "addons.lock")
    commits = {entry.name: entry.commit for entry in lock.values()}
    head = subprocess.run(["git", "-C", str(vendor.bare), "rev-parse", "v1.0^{commit}"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert commits == {"oca": oca._git("rev-parse", "HEAD"), "vendor": head}
    assert f"oca ({oca.url} 18.0): new, at {commits['oca'][:12]}" in said


def test_a_moved_branch_is_used_only_after_addons_update_which_shows_the_range(tmp_path, oca):
    data = _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"})
    _update(tmp_path, data)
    old = oca._git("rev-parse", "HEAD")
    oca.module("oca_reports", depends=("oca_base_tools", "web"), version="18.0.1.1.0")
    new = oca.commit("Reports: a new column")

    repos = locked(repositories(data, PROJECT), tmp_path / "addons.lock")
    assert repos[0].commit == old  # the branch moved upstream: the deploy still uses the lock

    said = _update(tmp_path, data)
    assert f"oca ({oca.url} 18.0): {old[:12]}..{new[:12]}" in said
    assert "Reports: a new column" in said
    assert locked(repositories(data, PROJECT), tmp_path / "addons.lock")[0].commit == new
    assert "unchanged" in _update(tmp_path, data)


@pytest.mark.parametrize("change", ["not locked", "url", "ref"])
def test_a_repository_the_lock_does_not_match_is_one_line_telling_to_update(
    tmp_path, oca, vendor, change
):
    data = _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"})
    _update(tmp_path, data)
    repo = {"name": "oca", "url": oca.url, "ref": "18.0"}
    if change == "not locked":
        repo["name"] = "oca2"
    elif change == "url":
        repo["url"] = vendor.url
    else:
        repo["ref"] = "v2.0"
    data = _settings(tmp_path, repo)
    with pytest.raises(SettingsError) as error:
        locked(repositories(data, PROJECT), tmp_path / "addons.lock")
    message = str(error.value)
    assert "\n" not in message
    assert "run make addons_update" in message
    assert ("not in addons.lock" if change == "not locked" else "url or ref changed") in message


def test_an_unknown_ref_is_one_line_naming_it(tmp_path, oca):
    with pytest.raises(SettingsError, match=r"has no branch or tag '19\.0'"):
        _update(tmp_path, _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "19.0"}))


def test_deploys_check_the_lock_when_loading_settings(tmp_path, oca):
    data = host_data("prod", tmp_path, **_settings(
        tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"}))  # fmt: skip
    with pytest.raises(SettingsError, match=r"oca: it is not in addons\.lock: run make"):
        load_settings(data, {"cpus": 2, "ram_mb": 4096})
    _update(tmp_path, _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"}))
    settings = load_settings(data, {"cpus": 2, "ram_mb": 4096})
    assert settings.addons_path == "/opt/dfr-own-addons,/opt/dfr-addons/oca"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"url": "x", "ref": "18.0"}, "give each repository a name"),
        ({"name": "a", "ref": "18.0"}, "give its url"),
        ({"name": "a", "url": "x"}, "give its ref"),
        ({"name": "a", "url": "x", "ref": "18.0", "branch": "y"}, "unknown keys branch"),
        ({"name": "a", "url": "x", "ref": "18.0", "subdir": "../up"}, "inside the repository"),
        ({"name": "a", "url": "x", "ref": "18.0", "addons": "web"}, "give a list of module"),
    ],
)
def test_a_bad_repository_setting_is_one_line(entry, message):
    with pytest.raises(SettingsError, match=message):
        repositories({"odoo_addons_repositories": [entry]}, PROJECT)


# --- fetch ----------------------------------------------------------------------------------


def test_the_locked_commit_is_fetched_shallow_once_then_read_from_the_cache(tmp_path, oca, cache):
    data = _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"})
    _update(tmp_path, data)
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    first = _plan(tmp_path, data)
    assert first.fetched == ("oca",)
    gitdir = addons_git.cache_dir(oca.url)
    assert (gitdir / "shallow").exists()  # shallow: only the locked commit
    oca.bare.rename(tmp_path / "gone.git")  # upstream unreachable: the cache is enough
    from tasks import addons_plan as plan_module

    plan_module._plans.clear()
    second = _plan(tmp_path, data)
    assert second.fetched == ()
    assert second.module_shas == first.module_shas


def test_the_archive_holds_the_selected_modules_of_the_subdirectory(tmp_path, vendor):
    vendor.module("vendor_extra", subdir="addons")
    vendor.commit("extra")
    data = _settings(tmp_path, {"name": "vendor", "url": vendor.url, "ref": "18.0",
                                "subdir": "addons", "addons": ["vendor_theme"]})  # fmt: skip
    _update(tmp_path, data)
    plan = _plan(tmp_path, data)
    (content,) = plan.repositories
    with tarfile.open(content.archive) as tar:
        names = {name.split("/")[0] for name in tar.getnames()}
    assert names == {"vendor_theme"}
    assert dict(plan.module_shas).keys() == {"dfr_base", "vendor_theme"}


# --- checks ---------------------------------------------------------------------------------


def _refused(tmp_path, upstream: Upstream, message: str, modules=(), constraints="", **repo):
    data = _settings(tmp_path, {"name": "oca", "url": upstream.url, "ref": "18.0", **repo})
    _update(tmp_path, data)
    with pytest.raises(SettingsError) as error:
        _plan(tmp_path, data, modules, constraints)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_module_two_repositories_give_is_refused_unless_one_overrides_it(tmp_path, oca):
    other = Upstream(tmp_path, "other")
    other.module("oca_reports", depends=("oca_base_tools",))
    other.commit("a fork of oca_reports")
    repos = [{"name": "oca", "url": oca.url, "ref": "18.0"},
             {"name": "fork", "url": other.url, "ref": "18.0"}]  # fmt: skip
    data = _settings(tmp_path, *repos)
    _update(tmp_path, data)
    with pytest.raises(SettingsError, match=r"addon oca_reports is in oca and fork: take it"):
        _plan(tmp_path, data)
    repos[1]["overrides"] = ["oca_reports"]
    data = _settings(tmp_path, *repos)
    _update(tmp_path, data)
    plan = _plan(tmp_path, data)
    assert [c.modules for c in plan.repositories] == [("oca_base_tools",), ("oca_reports",)]


def test_a_module_the_own_addons_also_have_is_refused(tmp_path, oca):
    oca.module("dfr_base")
    oca.commit("a dfr_base")
    _refused(tmp_path, oca, "addon dfr_base is in files/addons and oca")


def test_an_odoo_module_nothing_provides_is_refused(tmp_path, oca):
    _refused(tmp_path, oca, "addon oca_missing of odoo_modules is in no addons repository",
             modules=("oca_reports", "sale", "oca_missing"))  # fmt: skip


def test_a_dependency_nothing_provides_is_refused(tmp_path, oca):
    oca.module("oca_needs", depends=("oca_elsewhere",))
    oca.commit("needs another repository")
    _refused(tmp_path, oca, "addon oca_needs (oca) depends on oca_elsewhere, which no addons")


def test_a_dependency_left_out_by_the_addons_list_is_refused(tmp_path, oca):
    _refused(tmp_path, oca, "addon oca_reports (oca) depends on oca_base_tools",
             addons=["oca_reports"])  # fmt: skip


def test_a_manifest_that_does_not_parse_is_refused(tmp_path, oca):
    (oca.work / "oca_reports" / "__manifest__.py").write_text("{'name': 'x', 'depends': [}\n")
    oca.commit("broken")
    _refused(tmp_path, oca, "addon oca_reports (oca): __manifest__.py does not parse")


def test_a_manifest_with_code_is_refused_as_odoo_refuses_it(tmp_path, oca):
    (oca.work / "oca_reports" / "__manifest__.py").write_text("{'name': __import__('os')}\n")
    oca.commit("code")
    _refused(tmp_path, oca, "addon oca_reports (oca): __manifest__.py does not parse")


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"depends": "base"}, "depends"),
        ({"external_dependencies": {"python": "lxml"}}, "external_dependencies['python']"),
        ({"external_dependencies": ["lxml"]}, "external_dependencies['python']"),
    ],
)
def test_a_manifest_field_of_the_wrong_type_is_refused(tmp_path, oca, fields, what):
    (oca.work / "oca_reports" / "__manifest__.py").write_text(
        repr({"name": "x", "version": "18.0.1.0.0", **fields})
    )
    oca.commit("wrong type")
    _refused(tmp_path, oca, f"addon oca_reports (oca): its manifest's {what} is not a list")


@pytest.mark.parametrize("version", ["17.0.1.0.0", "1.0", "18.0.1.0"])
def test_a_module_not_for_odoo_18_is_refused(tmp_path, oca, version):
    oca.module("oca_old", version=version)
    oca.commit("old")
    _refused(tmp_path, oca, f"addon oca_old (oca): version {version!r} is not for Odoo 18")


def test_a_missing_addon_of_the_addons_list_is_refused(tmp_path, oca):
    _refused(tmp_path, oca, "addon oca_nope is not in repository oca", addons=["oca_nope"])


# --- Python requirements --------------------------------------------------------------------


def _with_requirements(oca: Upstream) -> None:
    oca.module(
        "oca_xls",
        external_dependencies={"python": ["xlsxwriter", "openupgradelib"]},
        files={"requirements.txt": "openupgradelib>=3.0\n# comment\nrequests\n"},
    )
    oca.module("oca_api", files={"requirements.txt": "OpenUpgradeLib<4\n"})
    oca.commit("modules with requirements")


def test_python_requirements_are_collected_and_pinned_once(tmp_path, oca):
    _with_requirements(oca)
    data = _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"})
    _update(tmp_path, data)
    plan = _plan(tmp_path, data, constraints="openupgradelib==3.6.0\n")
    # xlsxwriter and requests come with the Odoo image: no pin, not installed again
    assert plan.requirements == "openupgradelib==3.6.0\n"


def test_a_requirement_without_a_pin_is_refused(tmp_path, oca):
    _with_requirements(oca)
    _refused(tmp_path, oca, "addon oca_api needs Python package openupgradelib, which "
             "constraints.txt does not pin: add openupgradelib==<version>")  # fmt: skip


def test_a_requirement_in_conflict_with_its_pin_is_refused(tmp_path, oca):
    _with_requirements(oca)
    message = "addon oca_api needs OpenUpgradeLib<4 but constraints.txt pins openupgradelib=="
    _refused(tmp_path, oca, f"{message}4.1.0: a conflict", constraints="openupgradelib==4.1.0\n")


def test_a_constraints_line_that_is_not_a_pin_is_refused(tmp_path, oca):
    _with_requirements(oca)
    _refused(tmp_path, oca, "constraints.txt line 1 'openupgradelib>=3' is not a pin",
             constraints="openupgradelib>=3\n")  # fmt: skip


def test_the_image_tag_follows_the_locked_commit_and_only_changed_modules_hash_anew(tmp_path, oca):
    data = _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"})
    _update(tmp_path, data)
    before = _plan(tmp_path, data)
    oca.module("oca_reports", depends=("oca_base_tools", "web"), version="18.0.1.1.0")
    oca.commit("reports 1.1")
    _update(tmp_path, data)
    after = _plan(tmp_path, data)
    changed = {n for n, sha in after.module_shas if dict(before.module_shas)[n] != sha}
    assert changed == {"oca_reports"}
    assert after.digest != before.digest


# --- make dev -------------------------------------------------------------------------------


def test_dev_keeps_the_own_addons_bind_mounted_and_takes_repositories_from_the_image(tmp_path, oca):
    from tasks.render import render

    repo = {"name": "oca", "url": oca.url, "ref": "18.0"}
    _update(tmp_path, _settings(tmp_path, repo))
    settings = load_settings(host_data("dev", tmp_path, **_settings(tmp_path, repo)))
    conf = render("odoo.conf.j2", settings)
    assert "addons_path = /opt/dfr-own-addons,/opt/dfr-addons/oca\n" in conf
    images = {"odoo": "dfr/odoo:x", "postgres": "dfr/postgres:x", "nginx": "dfr/nginx:x"}
    sha = {"postgres": "2" * 16, "odoo": "0" * 16, "nginx": "1" * 16}
    compose = render(
        "compose.yaml.j2", settings, images=images, odoo_memory_limit="2g", config_sha=sha
    )
    assert f"      - {OWN}:/opt/dfr-own-addons:ro\n" in compose
    assert "/opt/dfr-addons" not in compose  # the repositories' modules are the image's


# --- wheels for air-gapped sites ------------------------------------------------------------


def test_wheels_are_got_once_through_the_operators_pip_configuration(tmp_path, monkeypatch):
    from tasks.addons_wheels import addons_wheels
    from tests.unit.addon_repos import pure_wheel

    pure_wheel(tmp_path / "wheelhouse", "dfr-test-wheel", "1.2.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheelhouse"))
    got = addons_wheels("dfr-test-wheel==1.2.0\n", "3.12", "manylinux_2_39_x86_64")
    assert [p.name for p in got.iterdir()] == ["dfr_test_wheel-1.2.0-py3-none-any.whl"]
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))  # cached: pip not asked
    assert addons_wheels("dfr-test-wheel==1.2.0\n", "3.12", "manylinux_2_39_x86_64") == got
    with pytest.raises(SettingsError, match="Python wheels for image_source 'upload' could not"):
        addons_wheels("dfr-test-wheel==9.9\n", "3.12", "manylinux_2_39_x86_64")


def test_a_relative_path_stays_relative_in_the_lock(tmp_path, oca):
    """A repository beside the project: the lock holds the path as written, the same on every
    operator's machine, and git is given it from the project root."""
    (tmp_path / "upstreams").mkdir()
    oca.bare.rename(tmp_path / "upstreams" / "oca.git")
    data = _settings(tmp_path, {"name": "oca", "url": "upstreams/oca.git", "ref": "18.0"})
    inventory = tmp_path / "inventory" / "prod.py"
    inventory.parent.mkdir()
    inventory.write_text(f"hosts = [('h1', {data!r})]\n")
    update([inventory], tmp_path, io.StringIO())
    (entry,) = read_lock(tmp_path / "addons.lock").values()
    assert entry.url == "upstreams/oca.git"
    (repo,) = locked(repositories(data, tmp_path), tmp_path / "addons.lock")
    assert repo.remote == str(tmp_path / "upstreams" / "oca.git")


def test_a_repository_left_out_of_the_settings_leaves_the_lock(tmp_path, oca):
    _update(tmp_path, _settings(tmp_path, {"name": "oca", "url": oca.url, "ref": "18.0"}))
    said = _update(tmp_path, _settings(tmp_path))
    assert f"oca: removed (was {oca._git('rev-parse', 'HEAD')[:12]})" in said
    assert read_lock(tmp_path / "addons.lock") == {}
