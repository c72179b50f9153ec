"""Docker's image reference grammar (github.com/distribution/reference), for base images.

    reference := name [":" tag] ["@" digest]
    name      := [domain "/"] path-component ["/" path-component]*     (255 characters at most)
    domain    := domain-component ["." domain-component]* [":" port]
    path-component := [a-z0-9]+ (([._] | "__" | "-"+) [a-z0-9]+)*
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

Digests are sha256 only (64 lowercase hex digits), the one Docker Hub and registries use.
A base image reaches command lines on the host: nothing else may pass.
"""

from __future__ import annotations

import re

NAME_MAX = 255
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?"
)


def is_image_reference(reference: str) -> bool:
    if len(reference) > NAME_MAX + 1 + 128 + 1 + 71:  # name, tag, digest: no long regex work
        return False
    found = _REFERENCE.fullmatch(reference)
    return found is not None and len(found["name"]) <= NAME_MAX
