"""One kernel, two spellings: WAMP URIs carry ``uuid4().hex``, Jupyter routes dashed UUIDs."""

import re

_HEX = re.compile(r"[0-9a-f]{32}")
_DASHED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def dashed(kernel_id):
    """``8-4-4-4-12`` form of a 32-hex-digit kernel id (unchanged if it is not one)."""
    if not _HEX.fullmatch(kernel_id):
        return kernel_id
    return "-".join((kernel_id[:8], kernel_id[8:12], kernel_id[12:16], kernel_id[16:20],
                     kernel_id[20:]))


def wamp_id(jupyter_id):
    """The WAMP kernel id of a Jupyter one (dashed or not, any case); None if it is neither."""
    text = jupyter_id.lower()
    if _DASHED.fullmatch(text):
        return text.replace("-", "")
    if _HEX.fullmatch(text):
        return text
    return None
