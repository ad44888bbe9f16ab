"""WAMP URI rules: which URIs are valid for each match policy, and matching.

Client URIs are checked with the spec's *loose* rules (components without
whitespace, ``.`` or ``#``), as Crossbar.io does by default; the service's own
URIs all satisfy the strict ``[0-9a-z_]`` rule besides.
"""

import re

from broker.errors import InvalidUri

MATCH_EXACT = "exact"
MATCH_PREFIX = "prefix"
MATCH_WILDCARD = "wildcard"
MATCH_POLICIES = (MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD)

_PATTERNS = {
    MATCH_EXACT: re.compile(r"^([^\s.#]+\.)*([^\s.#]+)$"),
    MATCH_PREFIX: re.compile(r"^([^\s.#]+\.)*([^\s.#]*)$"),
    MATCH_WILDCARD: re.compile(r"^(([^\s.#]+\.)|\.)*([^\s.#]+)?$"),
}


def check_uri(uri, match=MATCH_EXACT, what="URI"):
    """Return *uri* if it is valid under *match*, else raise ``InvalidUri``."""
    if match not in _PATTERNS:
        raise InvalidUri(f"unknown match policy {match!r}: use one of {MATCH_POLICIES}")
    # fullmatch: with match(), "$" also matches before a trailing newline ("com.x\n")
    if not isinstance(uri, str) or not _PATTERNS[match].fullmatch(uri):
        raise InvalidUri(f"invalid {what} {uri!r} for match policy {match!r}")
    return uri


def wildcard_matches(pattern_parts, uri_parts):
    """True if a wildcard pattern (split on ``.``) matches a URI (split)."""
    if len(pattern_parts) != len(uri_parts):
        return False
    for want, have in zip(pattern_parts, uri_parts):
        if want and want != have:
            return False
    return True

