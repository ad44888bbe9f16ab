"""The import rules of docs/STYLE ("the nevers"), checked on the source with ``ast``.

* the router (``broker/router/``) imports nothing of kernels, notebooks,
  JSON-RPC, the clients, the classroom, the users file or the Jupyter gateway, and from
  :mod:`broker.auth` only the seams (no application role);
* those packages import nothing of the router's insides (``broker.router.*``):
  the wiring (``broker/tap.py``) hands them what they need;
* only the ZeroMQ adapter (``broker/kernel/zmq_channels.py``) imports ``zmq``
  or ``txzmq``.

Every module of the shipped tree (``broker``, ``plugins``, ``twisted/plugins``)
is parsed, imports inside functions included.
"""

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ("broker", "plugins", os.path.join("twisted", "plugins"))
APPLICATION = ("broker.kernel", "broker.notebook", "broker.jsonrpc", "broker.client",
               "broker.classroom", "broker.users", "broker.gateway", "broker.teaching")
#: what the router may take from broker.auth: the seams, not the service's roles
AUTH_SEAMS = {"IAuthenticator", "IAuthenticatorFactory", "IAuthorizer", "Principal",
              "AuthenticationFailed", "ACTIONS", "has_prefix"}
ZMQ = ("zmq", "txzmq")
ZMQ_ADAPTER = "broker.kernel.zmq_channels"


def module_name(path):
    """``broker/kernel/host.py`` -> ``broker.kernel.host`` (a package is its ``__init__``)."""
    parts = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def shipped_modules():
    """``{module name: path}`` of every ``.py`` file in the shipped trees."""
    found = {}
    for tree in TREES:
        for directory, _, files in os.walk(os.path.join(ROOT, tree)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    found[module_name(path)] = path
    return found


def imports_of(source, module, is_package=False):
    """``[(line, imported module, imported name or None)]`` of every import in *source*."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.append((node.lineno, base, alias.name))
                found.append((node.lineno, f"{base}.{alias.name}", None))  # a submodule, maybe
    return found


def within(name, packages):
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(rule):
    """``module:line imports …`` for each import of the shipped tree *rule* refuses."""
    found = []
    for module, path in sorted(shipped_modules().items()):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        for line, imported, name in imports_of(source, module, path.endswith("__init__.py")):
            if rule(module, imported, name):
                found.append(f"{module}:{line} imports {imported}"
                             + (f".{name}" if name else ""))
    return sorted(set(found))


def router_imports_application(module, imported, name):
    return within(module, ["broker.router"]) and within(imported, APPLICATION)


def router_imports_application_roles(module, imported, name):
    return (within(module, ["broker.router"]) and imported == "broker.auth"
            and name is not None and name not in AUTH_SEAMS)


def application_imports_router(module, imported, name):
    return within(module, APPLICATION) and within(imported, ["broker.router"])


def imports_zmq(module, imported, name):
    return module != ZMQ_ADAPTER and within(imported, ZMQ)


class ImportRuleTests(SynchronousTestCase):
    """No forbidden import appears anywhere in the shipped tree."""

    def test_router_imports_no_application(self):
        """The router imports nothing of kernels, notebooks, JSON-RPC, clients, classroom or users."""
        self.assertEqual(violations(router_imports_application), [])

    def test_router_imports_only_auth_seams(self):
        """From broker.auth the router takes only the seams, never a role of the service."""
        self.assertEqual(violations(router_imports_application_roles), [])

    def test_application_imports_no_router_internals(self):
        """Kernel, notebook, JSON-RPC, client, classroom and users code import nothing under broker.router."""
        self.assertEqual(violations(application_imports_router), [])

    def test_only_the_zmq_adapter_imports_zmq(self):
        """zmq and txzmq are imported by broker/kernel/zmq_channels.py alone."""
        self.assertEqual(violations(imports_zmq), [])


class CheckerTests(SynchronousTestCase):
    """The checker itself sees what it must, so the rules cannot pass by seeing nothing."""

    def test_sees_the_whole_tree(self):
        """Every package is scanned, the ZeroMQ adapter's own imports included."""
        modules = shipped_modules()
        for name in ("broker.router.router", "broker.kernel.host", "broker.notebook.session",
                     "broker.jsonrpc.resource", "broker.client", "plugins", "broker.tap",
                     "broker.gateway.rest"):
            self.assertIn(name, modules)
        with open(modules[ZMQ_ADAPTER], encoding="utf-8") as f:
            imported = {i for _, i, _ in imports_of(f.read(), ZMQ_ADAPTER)}
        self.assertTrue({"zmq", "txzmq"} <= imported)

    def test_finds_each_form_of_import(self):
        """Plain, from, relative and function-local imports are all found, with the name taken."""
        source = ("import zmq.asyncio\n"
                  "from broker.router import local\n"
                  "from ..router.session import RouterSession\n"
                  "def f():\n    from broker.auth import KERNEL_HOST_ROLE\n")
        found = imports_of(source, "broker.kernel.x")
        self.assertIn((1, "zmq.asyncio", None), found)
        self.assertIn((2, "broker.router.local", None), found)
        self.assertIn((3, "broker.router.session", "RouterSession"), found)
        self.assertIn((5, "broker.auth", "KERNEL_HOST_ROLE"), found)
        self.assertTrue(router_imports_application_roles("broker.router.x", "broker.auth",
                                                         "KERNEL_HOST_ROLE"))
        self.assertTrue(application_imports_router("broker.client.x", "broker.router.local", None))
        self.assertFalse(application_imports_router("broker.kernel.x", "broker.auth", None))
        self.assertTrue(imports_zmq("broker.kernel.host", "txzmq", None))
        self.assertFalse(imports_zmq(ZMQ_ADAPTER, "zmq", None))
