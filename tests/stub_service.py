"""Run the router, its web site (``/ws``, ``/jsonrpc``) and the stub kernel host; for client tests.

``python -m tests.stub_service [--token TOKEN] [--anonymous]`` listens on a
free loopback port and logs the ``webkernel is serving at …`` line that
:class:`tests.service.ServiceProcess` reads, as ``twistd webkernel`` does.
It wires the parts as ``broker.tap.makeService`` does, with the stub host in
place of the real one, so the clients are tested against the real router,
site and JSON-RPC resource with no kernel process.
"""

import argparse
import functools
import sys

import txaio
from autobahn.wamp import types
from twisted.internet import endpoints
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

from broker.auth import KERNEL_HOST_ROLE, DefaultAuthorizer, Principal
from broker.jsonrpc import JsonRpcResource
from broker.router.local import attacher
from broker.router.router import Router
from broker.transport import (
    DEFAULT_MAX_MESSAGE_SIZE,
    UniversalFactory,
    WampRawSocketFactory,
    WampWebSocketFactory,
)
from broker.web import make_site
from tests.stub_host import StubKernelHost

REALM = "webkernel"
log = Logger(namespace="webkernel")


def serve(reactor, token, anonymous):
    """Build and start everything on *reactor*; a Deferred of the listening port."""
    config = {"token": token, "anonymous": anonymous}
    router = Router.single_realm(REALM, DefaultAuthorizer(), reactor, config)
    websocket = WampWebSocketFactory(router, [], DEFAULT_MAX_MESSAGE_SIZE, reactor=reactor)
    rawsocket = WampRawSocketFactory(router, DEFAULT_MAX_MESSAGE_SIZE, reactor=reactor)
    attach = attacher(router, reactor)
    jsonrpc = JsonRpcResource(attach, functools.partial(router.authenticate, REALM), REALM, reactor)
    site = make_site(websocket, jsonrpc, reactor, body_allowed=jsonrpc.admits)
    factory = UniversalFactory(site, rawsocket, reactor)
    host = StubKernelHost(types.ComponentConfig(realm=REALM), reactor)
    attach(host, Principal("host", KERNEL_HOST_ROLE, "local"))
    listening = endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    return host.ready.addCallback(lambda _: listening)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", default=None)
    parser.add_argument("--anonymous", action="store_true")
    args = parser.parse_args(argv)
    from twisted.internet import reactor
    txaio.use_twisted()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    query = f"?token={args.token}" if args.token else ""

    def listening(port):
        log.info("webkernel is serving at http://127.0.0.1:{port}/{query}",
                 port=port.getHost().port, query=query)
    serve(reactor, args.token, args.anonymous).addCallbacks(
        listening, lambda f: (log.failure("cannot start", f), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
