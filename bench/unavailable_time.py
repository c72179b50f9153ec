"""How long Odoo is unavailable through nginx during each kind of deploy (issue 26's goals).

    .venv/bin/python -m bench.unavailable_time               # the test double's small database
    .venv/bin/python -m bench.unavailable_time --scale 1     # the 2.35 GB benchmark dataset

One production-like target (the test harness: a docker-ready Debian 12 host, stand-in base
images uploaded, the Odoo test double), the prod stack deployed once, then: a config-only
redeploy (odoo_workers), an image-only redeploy (a new Odoo image, no module to update), a
one-module update, and an update that fails and is rolled back. During each, a client requests
``/web/health`` through nginx back to back; the unavailable time is the sum of the spans from
an answer other than 200 to the next 200. The release log's own figure (engine events) and the
run's wall time are printed next to it. Prints a Markdown table for docs/benchmarks.md.

With ``--scale``, the benchmark dataset of ``bench/odoo_dataset.py`` is loaded first, and what
an update's unavailable time is made of is timed on its own: the bare ``odoo -u`` (Odoo stopped,
a one-off container, as ``bin/dfr-update`` runs it) and the snapshot, ``CREATE DATABASE …
TEMPLATE`` with each of PostgreSQL's two strategies.
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

from bench.odoo_dataset import Dataset, Stack, generate
from bench.target import prod_target
from tests.harness.hosts import TargetHost
from tests.harness.pyinfra_run import PROJECT, pyinfra
from tests.integration.stack import curl


def _watch(host: TargetHost, domain: str, stop: threading.Event, seen: list) -> None:
    while not stop.is_set():
        answer = curl(host, domain, f"https://{domain}/web/health", "-o", "/dev/null",
                      "-w", "%{http_code}", "--max-time", "15")  # fmt: skip
        code = answer.stdout or "000"
        if answer.returncode:  # no answer: say curl's reason (exit 16: the GOAWAY race)
            code += f" (curl exit {answer.returncode}: {answer.stderr.strip()[-80:]})"
        seen.append((time.monotonic(), code))


def _unavailable(seen: list) -> tuple[float, str]:
    """Seconds from an answer other than 200 to the next 200, and how many of each there were."""
    total, since, failed = 0.0, None, Counter()
    for when, code in seen:
        if code != "200":
            failed[code] += 1
            since = when if since is None else since
        elif since is not None:
            total, since = total + when - since, None
    return total, ", ".join(f"{count} × {code}" for code, count in failed.most_common()) or "0"


def _module(addons: Path, version: str, migration: str | None = None) -> None:
    manifest = addons / "dfr_base" / "__manifest__.py"
    text = manifest.read_text()
    start = text.index('"version": "') + len('"version": "')
    manifest.write_text(text[:start] + version + text[text.index('"', start) :])
    if migration:
        folder = addons / "dfr_base" / "migrations" / version
        folder.mkdir(parents=True)
        (folder / "pre-bench.py").write_text(migration)


def _parts_of_an_update(stack: Stack) -> list[tuple[str, float]]:
    """Seconds of the bare ``-u`` and of each snapshot strategy, each timed on its own."""
    timed = []
    for strategy in ("WAL_LOG", "FILE_COPY"):
        seconds = stack.timed(
            f"docker exec -u postgres {stack.pg} psql -X -d postgres -c "
            f"'CREATE DATABASE bench_snapshot TEMPLATE dfr STRATEGY {strategy}'"
        )
        stack.psql("DROP DATABASE bench_snapshot", db="postgres")
        timed.append((f"snapshot, CREATE DATABASE … TEMPLATE, STRATEGY {strategy}", seconds))
    stack.compose("stop", "odoo")
    seconds = stack.timed(
        "cd /opt/dfr/prod && docker compose -p dfr-prod run --rm --no-deps odoo "
        "odoo -d dfr -u dfr_base --stop-after-init"
    )
    timed.append(("bare `odoo -d dfr -u dfr_base --stop-after-init` (one-off container)", seconds))
    stack.compose("up", "-d", "--wait")
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--scale", type=float, default=0, help="load bench/odoo_dataset.py's dataset first"
    )
    scale = parser.parse_args().scale
    rows, parts = [], []
    with prod_target() as (host, inventory, scratch):
        domain = f"{host.name}.prod.dfr.test"
        assert pyinfra(inventory, "deploy.py").returncode == 0
        if scale:
            stack = Stack(host)
            generate(stack, Dataset(scale))
            print(f"database: {stack.database_bytes() / 1e6:,.0f} MB", flush=True)
            parts = _parts_of_an_update(stack)
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
    for label, seconds in parts:
        print(f"| {label} | {seconds:.1f} s |")
    print("| deploy | exit | wall s | unavailable s (client) | not 200 (code) / requests "
          "| unavailable s (release log) | result |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, code, wall, unavailable, failed, total, logged, result in rows:
        print(f"| {label} | {code} | {wall:.1f} | {unavailable:.1f} | {failed} / {total} "
              f"| {logged} | {result} |")  # fmt: skip


if __name__ == "__main__":
    main()
