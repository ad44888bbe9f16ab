"""Installed Jupyter kernelspecs: the REST-shaped listing, and a spec turned into a command.

Any language's kernelspec works: its ``argv`` has ``{connection_file}``
(and ``{resource_dir}``, ``{prefix}``) filled in, its ``env`` is added to the
host's environment with ``${VAR}`` substituted from it, as ``jupyter_client``
does. A ``python``/``python3`` executable means this interpreter, as in
``jupyter_client``.
"""

import os
import re
import shutil
import sys
from string import Template

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from broker.kernel.errors import KernelCommandNotFound, NoSuchKernelSpec

DEFAULT_KERNEL_NAME = "python3"

#: spec fields a client may see; ``argv`` and ``env`` stay on the host
PUBLIC_SPEC_FIELDS = ("display_name", "language", "interrupt_mode", "metadata")

_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_THIS_PYTHON = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}


def find_spec(spec_manager, kernel_name):
    """The KernelSpec named *kernel_name*, or NoSuchKernelSpec."""
    try:
        return spec_manager.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise NoSuchKernelSpec(f"no kernelspec named {kernel_name!r} is installed") from None


def kernelspecs_model(spec_manager=None):
    """``{default, kernelspecs: {name: {name, spec}}}``, as Jupyter Server's ``/api/kernelspecs``."""
    spec_manager = spec_manager or KernelSpecManager()
    specs = {}
    for name, found in sorted(spec_manager.get_all_specs().items()):
        spec = found["spec"]
        specs[name] = {"name": name, "spec": {k: spec.get(k) for k in PUBLIC_SPEC_FIELDS}}
    default = DEFAULT_KERNEL_NAME if DEFAULT_KERNEL_NAME in specs or not specs else sorted(specs)[0]
    return {"default": default, "kernelspecs": specs}


def kernel_command(spec, connection_file, search_path=None):
    """The executable and argv of *spec* for *connection_file*.

    The executable is found on *search_path* (a PATH string; default: this
    process's PATH).
    """
    values = {"connection_file": os.path.realpath(connection_file),
              "resource_dir": spec.resource_dir, "prefix": sys.prefix}
    argv = [_PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), arg)
            for arg in spec.argv]
    if not argv:
        raise KernelCommandNotFound(f"kernelspec {spec.display_name!r} has an empty argv")
    if argv[0] in _THIS_PYTHON:
        argv[0] = sys.executable
    executable = shutil.which(argv[0], path=search_path)
    if executable is None:
        raise KernelCommandNotFound(f"{argv[0]!r} of kernelspec {spec.display_name!r} is not on the PATH")
    return executable, argv


def kernel_environment(spec, base_env):
    """*base_env* plus *spec*'s env, ``${VAR}`` references filled from *base_env*."""
    env = dict(base_env)
    env.update({k: Template(v).safe_substitute(base_env) for k, v in spec.env.items()})
    if (spec.language or "").lower().startswith("python"):
        env.pop("PYTHONEXECUTABLE", None)  # it would make the kernel run another interpreter
    return env
