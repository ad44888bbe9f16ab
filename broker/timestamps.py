"""The one timestamp format of the service's payloads: ISO 8601, UTC, milliseconds."""

from datetime import datetime, timezone


def iso_utc(seconds):
    """``2026-11-25T15:38:09.983Z`` for a POSIX time in seconds."""
    stamp = datetime.fromtimestamp(seconds, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
