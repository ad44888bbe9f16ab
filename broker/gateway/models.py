"""The kernel API's payloads in the shapes of Jupyter's REST API (Kernel Gateway's, exactly).

* a kernel model ``{id, name, last_activity, execution_state, connections}``
  with the dashed id and ``last_activity`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
  (jupyter_server parses it with that very format);
* kernelspecs ``{default, kernelspecs: {name: {name, spec, resources}}}``,
  ``resources`` naming the logo files served at ``/kernelspecs/<name>/<file>``,
  ``spec`` with an empty ``argv`` and ``env`` (JupyterLab requires an ``argv``
  array; the kernel's command line is not disclosed);
* the ``env`` of ``POST /api/kernels``, checked as Kernel Gateway reads it.
"""

import os
import re
from datetime import datetime, timezone

from broker.gateway.ids import dashed

#: what a logo file of a kernelspec may be called (the only files served from its directory)
LOGO_FILE = re.compile(r"logo-[A-Za-z0-9x-]{1,40}\.(png|svg)")
#: the largest logo file served, in bytes
MAX_LOGO_BYTES = 1024 * 1024
#: most entries in the env of POST /api/kernels, and longest name and value
MAX_ENV_ENTRIES = 100
MAX_ENV_TEXT = 4096
#: the largest KERNEL_LAUNCH_TIMEOUT a client may ask for, in seconds
MAX_LAUNCH_TIMEOUT = 600


class BadRequest(ValueError):
    """A request the gateway refuses with HTTP 400 (the message says why)."""


def jupyter_time(iso):
    """``2026-11-25T15:38:09.983000Z`` for the service's ``2026-11-25T15:38:09.983Z`` (now if None)."""
    if iso:
        stamp = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    else:
        stamp = datetime.now(timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kernel_model(model, connections=0):
    """Jupyter's model of a kernel from the kernel API's *model*."""
    return {"id": dashed(model["id"]), "name": model.get("name"),
            "last_activity": jupyter_time(model.get("last_activity") or model.get("created")),
            "execution_state": model.get("execution_state") or "unknown",
            "connections": int(connections)}


def logo_resources(name, resource_dir, prefix="/kernelspecs"):
    """``{logo-64x64: /kernelspecs/<name>/logo-64x64.png, …}`` for the logos in *resource_dir*."""
    try:
        files = sorted(os.listdir(resource_dir)) if resource_dir else []
    except OSError:
        files = []
    return {f.rsplit(".", 1)[0]: f"{prefix}/{name}/{f}" for f in files if LOGO_FILE.fullmatch(f)}


def kernelspecs(listing, resource_dirs):
    """The listing of ``webkernel.kernelspecs``, every entry with its ``resources``.

    *resource_dirs* is ``{name: directory}`` of the kernelspecs installed here.
    """
    specs = {}
    for name, entry in listing.get("kernelspecs", {}).items():
        # JupyterLab refuses a spec without an argv array; the real one stays on the host
        spec = dict({"argv": [], "env": {}}, **entry.get("spec", {}))
        specs[name] = dict(entry, spec=spec, resources=logo_resources(name, resource_dirs.get(name)))
    return {"default": listing.get("default"), "kernelspecs": specs}


def start_arguments(body, ready_timeout):
    """``(kernel_name or None, timeout seconds)`` from the JSON body of ``POST /api/kernels``.

    The body is ``{name, env}`` (both optional). ``env`` must be an object of
    strings; of it only ``KERNEL_LAUNCH_TIMEOUT`` is used (seconds, at most
    :data:`MAX_LAUNCH_TIMEOUT`). ``KERNEL_USERNAME`` and every other entry
    are ignored: the kernel belongs to whoever signed in, and the kernel API
    starts kernels with the service's environment (docs/jupyter.md).
    """
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object {name, env}")
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 256):
        raise BadRequest("name must be a kernelspec's name (a string) or null")
    env = body.get("env")
    env = {} if env is None else env
    _check_env(env)
    timeout = ready_timeout
    if "KERNEL_LAUNCH_TIMEOUT" in env:
        try:
            asked = float(env["KERNEL_LAUNCH_TIMEOUT"])
        except ValueError:
            raise BadRequest("KERNEL_LAUNCH_TIMEOUT must be a number of seconds") from None
        if not 0 < asked <= MAX_LAUNCH_TIMEOUT:
            raise BadRequest(f"KERNEL_LAUNCH_TIMEOUT must be above 0 and at most "
                             f"{MAX_LAUNCH_TIMEOUT} seconds")
        timeout = asked
    return name or None, timeout


def _check_env(env):
    if not isinstance(env, dict):
        raise BadRequest("env must be a JSON object of strings")
    if len(env) > MAX_ENV_ENTRIES:
        raise BadRequest(f"env may have at most {MAX_ENV_ENTRIES} entries")
    for key, value in env.items():
        if not isinstance(value, str) or len(key) > MAX_ENV_TEXT or len(value) > MAX_ENV_TEXT:
            raise BadRequest(f"env values must be strings of at most {MAX_ENV_TEXT} "
                             f"characters ({key[:64]!r} is not)")
