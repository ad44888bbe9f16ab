"""Replacing a file atomically: a temporary file written beside it, then renamed over it.

A reader sees the old file or the new one, whole, never a part; a write that
fails leaves the old file as it was and no temporary file behind. The users
file and the notebook directory write this way.
"""

import os
import tempfile


def replace_file(path, data, mode, prefix=".", suffix=".tmp", sync=False):
    """Make the file at *path* hold *data* (bytes), with permissions *mode*, in one step.

    The temporary file is ``<prefix>…<suffix>`` in *path*'s directory (made
    0600 by ``mkstemp``, *mode* just before the rename). *sync*: flush it to
    the disk first, so the new content survives a crash right after.
    """
    fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=suffix,
                                     dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
