"""testssl.sh (Debian's package) against a deployed production-like stack: what an auditor or an
attacker's scanner sees on port 443.

Only the certificate's trust may be flagged: the test deploys a self-signed certificate (an
operator's would chain to a public CA), so findings about its chain, issuer and revocation are
expected; everything else must rate below HIGH.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.harness.hosts import HostPool, TargetHost
from tests.harness.images import docker_ready_image
from tests.harness.pyinfra_run import pyinfra
from tests.integration.stack import curl, stack_inventory

# Findings about a self-signed certificate's trust: expected here, and only here.
SELF_SIGNED = {
    "cert_chain_of_trust",
    "cert_trust",
    "cert_caIssuers",
    "cert_crlDistributionPoints",
    "cert_ocspURL",
    "cert_revocation",
    "OCSP_stapling",
    "DNS_CAArecord",
    "cert_certificatePolicies_EV",
}


@pytest.fixture(scope="module")
def target(start_hosts, pool: HostPool, base_images, distro_docker_data) -> TargetHost:
    (host,) = start_hosts(docker_ready_image(), prefix="tls")
    inventory = stack_inventory(pool, [host], "prod", base_images, distro_docker_data)
    run = pyinfra(inventory, "deploy.py")
    assert run.returncode == 0, run.stderr[-3000:]
    return host


@pytest.fixture(scope="module")
def findings(target, tmp_path_factory) -> dict[str, dict]:
    testssl = shutil.which("testssl") or shutil.which("testssl.sh")
    assert testssl, "testssl is not installed (Debian: apt-get install testssl.sh)"
    report = tmp_path_factory.mktemp("testssl") / "report.json"
    domain = f"{target.name}.prod.dfr.test"
    scan = subprocess.run(
        [testssl, "--quiet", "--color", "0", "--warnings", "off", "--jsonfile", str(report),
         "--ip", target.address, f"https://{domain}/"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert report.exists(), scan.stdout[-3000:] + scan.stderr[-2000:]
    return {item["id"]: item for item in json.loads(report.read_text())}


def test_no_finding_rated_high_or_critical_but_the_self_signed_trust(findings):
    serious = {
        name: f"{item['severity']}: {item['finding']}"
        for name, item in findings.items()
        if item["severity"] in ("HIGH", "CRITICAL") and name not in SELF_SIGNED
    }
    assert serious == {}


def test_only_tls_1_2_and_1_3_with_forward_secrecy(findings):
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert findings[old]["finding"].startswith("not offered"), findings[old]
    for current in ("TLS1_2", "TLS1_3"):
        assert findings[current]["finding"].startswith("offered"), findings[current]
    assert findings["PFS"]["finding"].startswith("offered"), findings["PFS"]
    assert findings["cipher_order"]["severity"] in ("OK", "INFO"), findings["cipher_order"]


def test_hsts_for_two_years_and_no_session_tickets(findings):
    assert "63072000" in findings["HSTS_time"]["finding"], findings["HSTS_time"]
    assert findings["HSTS_time"]["severity"] == "OK"
    # No TLS 1.2 ticket extension: nothing is sealed with a ticket key that never rotates (TLS
    # 1.3 resumes from the server's session cache).
    assert "no session ticket extension" in findings["ticketbleed"]["finding"], findings[
        "ticketbleed"
    ]


def test_hsts_is_on_every_response_static_files_too(target):
    domain = f"{target.name}.prod.dfr.test"
    for path in ("/web/login", "/web/static/does-not-matter.css", "/web/health"):
        reply = curl(target, domain, f"https://{domain}{path}", "-D", "-", "-o", "/dev/null")
        assert "strict-transport-security: max-age=63072000" in reply.stdout.lower(), path


def test_a_name_other_than_the_domain_gets_no_answer(target):
    domain = f"{target.name}.prod.dfr.test"
    assert curl(target, "other.example", "https://other.example/web/login").returncode != 0
    plain = curl(target, "other.example", "http://other.example/", "-o", "/dev/null")
    assert plain.returncode == 52  # empty reply: nginx closed the connection (444)
    served = curl(target, domain, f"https://{domain}/web/login", "-o", "/dev/null",
                  "-w", "%{http_code}")  # fmt: skip
    assert served.stdout == "200"


def test_logins_beyond_a_burst_are_answered_429(target):
    domain = f"{target.name}.prod.dfr.test"
    codes = [
        curl(target, domain, f"https://{domain}/web/reset_password", "-o", "/dev/null",
             "-w", "%{http_code}").stdout
        for _ in range(25)
    ]  # fmt: skip
    assert "429" in codes and codes[0] != "429", codes
