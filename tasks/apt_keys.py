"""An apt signing key downloaded on the host and accepted only if its fingerprint matches."""

from __future__ import annotations

import shlex
from collections.abc import Generator

from pyinfra import host
from pyinfra.api import operation

from tasks.facts import GpgKeyFingerprints


@operation()
def pinned_key(url: str, dest: str, fingerprint: str) -> Generator[str, None, None]:
    """
    Install the OpenPGP key at ``url`` as ``dest`` (for ``signed_by``) when its fingerprint is
    ``fingerprint``; a key with any other fingerprint is refused and nothing is written.
    """
    fingerprint = fingerprint.replace(" ", "").upper()
    if host.get_fact(GpgKeyFingerprints, path=dest) == [fingerprint]:
        host.noop(f"{dest} holds the key {fingerprint}")
        return
    tmp = f"{dest}.download"
    q_tmp, q_dest, q_url = shlex.quote(tmp), shlex.quote(dest), shlex.quote(url)
    yield f"install -d -m 0755 {shlex.quote(dest.rsplit('/', 1)[0])}"
    fingerprints = (
        f"gpg --batch --show-keys --with-colons {q_tmp} | awk -F: '$1 == \"fpr\" {{print $10}}'"
    )
    yield (
        f"curl -fsSL --retry 3 -o {q_tmp} {q_url} && "
        f"got=$({fingerprints}) && "
        f'if [ "$got" != {fingerprint} ]; then '
        f'echo "key from {url} has fingerprint $got, expected {fingerprint}: refusing it" >&2; '
        f"rm -f {q_tmp}; exit 1; fi && "
        f"chmod 0644 {q_tmp} && mv {q_tmp} {q_dest}"
    )
