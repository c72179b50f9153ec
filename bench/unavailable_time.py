"""How long Odoo is unavailable through nginx during each kind of deploy (issue 26's goals).

    .venv/bin/python -m bench.unavailable_time

One production-like target (the test harness: a docker-ready Debian 12 host, stand-in base
images uploaded, the Odoo test double), the prod stack deployed once, then: a config-only
redeploy (odoo_workers), an image-only redeploy (a new Odoo image, no module to update), a
one-module update, and an update that fails and is rolled back. During each, a client requests
``/web/health`` through nginx back to back; the unavailable time is the sum of the spans from
an answer other than 200 to the next 200. The release log's own figure (engine events) and the
run's wall time are printed next to it. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from bench.target import prod_target
from tests.harness.hosts import TargetHost
from tests.harness.pyinfra_run import PROJECT, pyinfra
from tests.integration.stack import curl


def _watch(host: TargetHost, domain: str, stop: threading.Event, seen: list) -> None:
    while not stop.is_set():
        answer = curl(host, domain, f"https://{domain}/web/health", "-o", "/dev/null",
                      "-w", "%{http_code}", "--max-time", "5")  # fmt: skip
        seen.append((time.monotonic(), answer.stdout or "000"))


def _unavailable(seen: list) -> tuple[float, int]:
    total, since, failed = 0.0, None, 0
    for when, code in seen:
        if code != "200":
            failed += 1
            since = when if since is None else since
        elif since is not None:
            total, since = total + when - since, None
    return total, failed


def _module(addons: Path, version: str, migration: str | None = None) -> None:
    manifest = addons / "dfr_base" / "__manifest__.py"
    text = manifest.read_text()
    start = text.index('"version": "') + len('"version": "')
    manifest.write_text(text[:start] + version + text[text.index('"', start) :])
    if migration:
        folder = addons / "dfr_base" / "migrations" / version
        folder.mkdir(parents=True)
        (folder / "pre-bench.py").write_text(migration)


def main() -> None:
    rows = []
    with prod_target() as (host, inventory, scratch):
        domain = f"{host.name}.prod.dfr.test"
        assert pyinfra(inventory, "deploy.py").returncode == 0
        addons = scratch / "addons"
        shutil.copytree(PROJECT / "files" / "addons", addons)
        (addons / "NOTES.txt").write_text("not a module\n")
        broken = "def migrate(cr, version):\n    raise Exception('bench: broken')\n"
        new = {"odoo_workers": 3, "odoo_addons_src": addons}
        runs = [
            ("config-only redeploy (odoo_workers)", {"odoo_workers": 3}, None),
            ("image-only redeploy (new Odoo image, no module update)", new, None),
            ("one-module update (dfr_base)", new, lambda: _module(addons, "18.0.1.1.0")),
            ("failed update, rolled back", new, lambda: _module(addons, "18.0.1.2.0", broken)),
        ]
        for label, data, prepare in runs:
            if prepare:
                prepare()
            stop, seen = threading.Event(), []
            watcher = threading.Thread(target=_watch, args=(host, domain, stop, seen))
            watcher.start()
            time.sleep(1)
            run = pyinfra(inventory, "deploy.py", data=data)
            time.sleep(2)
            stop.set()
            watcher.join()
            record = json.loads(host.exec("tail -n1 /opt/dfr/prod/releases.jsonl"))
            unavailable, failed = _unavailable(seen)
            rows.append((label, run.returncode, run.seconds, unavailable, failed, len(seen),
                         record.get("odoo_unavailable_s"), record.get("result")))  # fmt: skip
    print("| deploy | exit | wall s | unavailable s (client) | failed / requests "
          "| unavailable s (release log) | result |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, code, wall, unavailable, failed, total, logged, result in rows:
        print(f"| {label} | {code} | {wall:.1f} | {unavailable:.1f} | {failed} / {total} "
              f"| {logged} | {result} |")  # fmt: skip


if __name__ == "__main__":
    main()
