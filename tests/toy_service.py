"""``twistd webkernel`` as it is, but with toy kernels: for the client tests.

``python -m tests.toy_service [webkernel options]`` builds the service with
:func:`broker.tap.makeService` (the real router, site, JSON-RPC resource and
kernel host) and gives its kernel host the toy launcher and channels of
:mod:`tests.toy_kernel` instead of ipykernel processes over ZeroMQ. It
listens on a free loopback port and logs the ``webkernel is serving at …``
line that :class:`tests.service.ServiceProcess` reads.
"""

import shutil
import sys
import tempfile

from twisted.logger import globalLogBeginner, textFileLogObserver

from broker.kernel.service import KernelHostService
from broker.tap import Options, makeService
from tests.toy_kernel import ToyLauncher, toy_channels_factory


def toy_service(argv, reactor, kernel_dir):
    """The service of ``twistd webkernel *argv*``, its kernels toys, their files in *kernel_dir*."""
    options = Options()
    options.parseOptions(["--listen", "tcp:0:interface=127.0.0.1", "--kernel-dir", kernel_dir, *argv])
    top = makeService(options, reactor)
    for part in top:
        if isinstance(part, KernelHostService):
            part.launcher = ToyLauncher(reactor)
            part.channels_factory = toy_channels_factory
    return top


def main(argv):
    from twisted.internet import reactor
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    kernel_dir = tempfile.mkdtemp(prefix="webkernel-toy-")
    top = toy_service(argv, reactor, kernel_dir)
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.addSystemEventTrigger("after", "shutdown", shutil.rmtree, kernel_dir, True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
