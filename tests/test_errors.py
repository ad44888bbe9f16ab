"""Errors in one place: every error URI a documented constant of broker/errors.py, every condition bound to one.

A new exception class fails this test until it is bound to a URI or listed in
``NOT_SENT`` with the reason it never reaches a peer.

* each URI constant of :mod:`broker.errors` is used, and documented in
  ``docs/protocol.md``, ``docs/kernels.md`` or ``docs/notebook.md``;
* no other module spells an error or close URI (each literal appears once);
* every exception class of the service either names a documented URI
  (``uri``) or is listed below as one that never reaches a peer as such;
* :func:`broker.errors.answering` is how a condition reaches a caller.
"""

import ast
import importlib
import os
import pkgutil
import re

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

import broker
import plugins
from broker import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ("protocol.md", "kernels.md", "notebook.md")
ERROR_URI = re.compile(r"^(wamp|webkernel)\.(error|close)\.[a-z_]+$")

#: exception classes that never reach a peer as themselves, and why
NOT_SENT = {
    "broker.errors.Condition": "the base: its subclasses carry the URI",
    "broker.errors.RouterError": "the base of the router's refusals",
    "broker.notebook.store.NotebookError": "the base of the notebook refusals",
    "broker.client.errors.KernelError": "the client's base; a URI it does not know keeps its own",
    "broker.client.errors.ConnectionFailed": "found by the client, not sent (docs/clients.md)",
    "broker.client.errors.ConnectionLost": "found by the client, not sent (docs/clients.md)",
    "broker.kernel.capacity.TooFewDescriptors": "a start-up check: twistd stops with a usage error",
    "broker.kernel.errors.InvalidKernelId": "the host makes every id itself",
    "broker.kernel.errors.KernelCommandNotFound": "a start that fails: kernel_start_failed",
    "broker.kernel.errors.UnknownChannel": "the host's own requests name their channel",
    "broker.kernel.errors.ChannelsClosed": "a closed kernel's requests end as kernel_died",
    "broker.kernel.errors.UnsignedSession": "the host always signs: a misuse of the adapter",
    "broker.kernel.errors.KernelNotReady": "a start that times out: kernel_start_failed",
    "broker.kernel.errors.KernelGone": "re-attaching: logged, the kernel's files removed",
    "broker.kernel.records.KernelDirNotOurs": "refuses --kernel-dir at start: a usage error",
    "broker.kernel.accounts.NoAccount": "a start that fails: kernel_start_failed",
    "broker.kernel.isolation_checks.IsolationUnavailable": "refuses --users at start: a usage error",
    "broker.jsonrpc.protocol.JsonRpcError": "JSON-RPC errors have codes (docs/clients.md)",
    "broker.jsonrpc.protocol.InvalidParams": "JSON-RPC errors have codes (docs/clients.md)",
    "broker.gateway.models.BadRequest": "the gateway's REST refusals are HTTP statuses (docs/jupyter.md)",
    "broker.gateway.rest._Refusal": "the gateway's REST refusals are HTTP statuses (docs/jupyter.md)",
    "broker.gateway.wire.BadMessage": "closes a kernel WebSocket with code 4007 (docs/jupyter.md)",
}


def uri_constants():
    """``{name: uri}`` of the error and close URIs :mod:`broker.errors` defines."""
    return {name: value for name, value in vars(errors).items()
            if name.isupper() and isinstance(value, str) and ERROR_URI.match(value)}


def shipped_sources():
    """``{path: source}`` of every module of the broker and plugins packages."""
    found = {}
    for tree in ("broker", "plugins"):
        for directory, _, files in os.walk(os.path.join(ROOT, tree)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    with open(path, encoding="utf-8") as f:
                        found[path] = f.read()
    return found


def service_exceptions():
    """Every exception class defined in a module of the broker and plugins packages."""
    for package in (broker, plugins):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)
    found, stack = set(), [BaseException]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith(("broker.", "plugins.")):
                found.add(sub)
    return found


def qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


class UriConstantTests(SynchronousTestCase):
    """broker/errors.py holds every error URI, each documented and used."""

    def test_every_constant_is_documented(self):
        """Each error and close URI appears in the docs' error tables."""
        docs = ""
        for name in DOCS:
            with open(os.path.join(ROOT, "docs", name), encoding="utf-8") as f:
                docs += f.read()
        missing = sorted(uri for uri in uri_constants().values() if f"`{uri}`" not in docs)
        self.assertEqual(missing, [])

    def test_every_constant_is_used(self):
        """No constant is kept that nothing sends or reads."""
        others = "".join(source for path, source in shipped_sources().items()
                         if not path.endswith(os.path.join("broker", "errors.py")))
        with open(errors.__file__, encoding="utf-8") as f:
            own = f.read()
        unused = sorted(name for name in uri_constants()
                        if not re.search(rf"\b{name}\b", others)
                        and len(re.findall(rf"\b{name}\b", own)) < 2)
        self.assertEqual(unused, [])

    def test_no_uri_literal_outside_errors(self):
        """No other module spells an error or close URI; errors.py spells each once."""
        spelled = []
        for path, source in shipped_sources().items():
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and ERROR_URI.match(node.value):
                    spelled.append((os.path.relpath(path, ROOT), node.value))
        outside = [s for s in spelled if s[0] != os.path.join("broker", "errors.py")]
        self.assertEqual(outside, [])
        literals = [uri for _, uri in spelled]
        self.assertEqual(sorted(u for u in set(literals) if literals.count(u) > 1), [])


class ExceptionTests(SynchronousTestCase):
    """Every condition is an exception class bound to a documented URI."""

    def test_every_exception_maps_to_a_uri(self):
        """An exception class of the service names a URI constant, or never reaches a peer as such."""
        known = set(uri_constants().values())
        unbound = []
        for cls in service_exceptions():
            name = qualified(cls)
            if name in NOT_SENT or name.startswith("broker.users."):
                continue  # broker.users: the users file and its command, not the wire
            if getattr(cls, "uri", None) not in known:
                unbound.append(name)
        self.assertEqual(sorted(unbound), [])

    def test_not_sent_list_is_current(self):
        """Every class listed as never sent still exists and has no URI of its own."""
        classes = {qualified(cls): cls for cls in service_exceptions()}
        for name in NOT_SENT:
            self.assertIn(name, classes)
            self.assertIsNone(getattr(classes[name], "uri", None), name)

    def test_answering_turns_conditions_into_wamp_errors(self):
        """A condition raised or failed with becomes its URI; anything else is left alone."""
        from broker.kernel.errors import NoSuchKernel

        def raises():
            raise NoSuchKernel("no kernel 'x'", hint=1)

        with self.assertRaises(ApplicationError) as raised:
            errors.answering(raises)()
        self.assertEqual((raised.exception.error, raised.exception.args, raised.exception.kwargs),
                         (errors.NO_SUCH_KERNEL, ("no kernel 'x'",), {"hint": 1}))
        failure = self.failureResultOf(
            errors.answering(lambda: defer.fail(errors.Timeout("late")))(), ApplicationError)
        self.assertEqual(failure.value.error, errors.TIMEOUT)
        self.failureResultOf(errors.answering(lambda: defer.fail(KeyError("x")))(), KeyError)
        self.assertEqual(errors.answering(lambda: 5)(), 5)
