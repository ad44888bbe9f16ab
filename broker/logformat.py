"""``--log-format json``: twistd's log observer writing one JSON object per event.

twistd takes a log observer factory by name (its ``--logger``); the option
sets that to :func:`json_observer`. Each event is written by
``twisted.logger.jsonFileLogObserver``: a record separator, the event as
JSON (its structured fields such as ``kernel_id``, ``log_format``,
``log_level``, ``log_time``), a newline.
"""

import sys

from twisted.logger import jsonFileLogObserver


def json_observer():
    """Events as JSON on standard output (twistd -n) for log collectors."""
    return jsonFileLogObserver(sys.stdout)
