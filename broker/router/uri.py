"""WAMP URI rules: which URIs are valid for each match policy, and matching.

Client URIs are checked with the spec's *loose* rules (components without
whitespace, ``.`` or ``#``), as Crossbar.io does by default; the service's own
URIs all satisfy the strict ``[0-9a-z_]`` rule besides.
"""

import re
from functools import lru_cache

from broker.errors import InvalidUri

MATCH_EXACT = "exact"
MATCH_PREFIX = "prefix"
MATCH_WILDCARD = "wildcard"
MATCH_POLICIES = (MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD)
#: how many (URI, match policy) answers of check_uri are remembered
VALID_URIS_REMEMBERED = 4096
#: only URIs up to this length are remembered (so at most about 1 MB is held)
REMEMBERED_URI_LENGTH = 256

_PATTERNS = {
    MATCH_EXACT: re.compile(r"^([^\s.#]+\.)*([^\s.#]+)$"),
    MATCH_PREFIX: re.compile(r"^([^\s.#]+\.)*([^\s.#]*)$"),
    MATCH_WILDCARD: re.compile(r"^(([^\s.#]+\.)|\.)*([^\s.#]+)?$"),
}


def check_uri(uri, match=MATCH_EXACT, what="URI"):
    """Return *uri* if it is valid under *match*, else raise ``InvalidUri``."""
    if match not in _PATTERNS:
        raise InvalidUri(f"unknown match policy {match!r}: use one of {MATCH_POLICIES}")
    if not isinstance(uri, str) or not (_remembered_valid(uri, match)
                                        if len(uri) <= REMEMBERED_URI_LENGTH
                                        else _valid(uri, match)):
        raise InvalidUri(f"invalid {what} {uri!r} for match policy {match!r}")
    return uri


def _valid(uri, match):
    """True if *uri* is valid under *match*."""
    # fullmatch: with match(), "$" also matches before a trailing newline ("com.x\n")
    return _PATTERNS[match].fullmatch(uri) is not None


#: Every PUBLISH reaching the router has its topic checked here, after Autobahn's
#: own looser check; the kernel host publishes each output on one of a few topics
#: per kernel, so the answers for recent URIs (up to a length) are remembered.
_remembered_valid = lru_cache(maxsize=VALID_URIS_REMEMBERED)(_valid)


def wildcard_matches(pattern_parts, uri_parts):
    """True if a wildcard pattern (split on ``.``) matches a URI (split)."""
    if len(pattern_parts) != len(uri_parts):
        return False
    for want, have in zip(pattern_parts, uri_parts):
        if want and want != have:
            return False
    return True

