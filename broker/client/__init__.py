"""Python clients of webkernel's kernel API (``docs/kernels.md``, ``docs/clients.md``).

Blocking, for scripts and the REPL::

    from broker.client import connect
    k = connect("http://127.0.0.1:8080/?token=…").start_kernel()
    k.eval_cell("2+3")          # '5'

Twisted-native, every method returning a Deferred: :func:`connect_async`.
Errors are the exceptions of :mod:`broker.client.errors`, all
:class:`KernelError`, each keeping its WAMP error URI. Both flavours
reconnect by themselves after a dropped connection (``reconnect=False`` to
not), resuming watches and executions in flight without losing or repeating
an output.
"""

from broker.client.asynchronous import AsyncClient, AsyncKernel, connect_async
from broker.client.blocking import Client, Kernel, connect
from broker.client.errors import (
    Canceled,
    ConnectionFailed,
    ConnectionLost,
    ExecutionFailed,
    InvalidArgument,
    KernelDied,
    KernelError,
    KernelLimit,
    KernelNotReady,
    KernelStartFailed,
    NoPendingInput,
    NoSuchKernel,
    NoSuchKernelSpec,
    NoSuchProcedure,
    NoSuchRequest,
    NotAuthorized,
    Timeout,
)

__all__ = [
    "connect", "connect_async", "Client", "Kernel", "AsyncClient", "AsyncKernel",
    "KernelError", "ExecutionFailed", "NoSuchKernel", "NoSuchKernelSpec", "KernelLimit",
    "KernelNotReady", "KernelStartFailed", "KernelDied", "NoPendingInput", "NoSuchRequest",
    "InvalidArgument",
    "NotAuthorized", "NoSuchProcedure", "Timeout", "Canceled", "ConnectionFailed",
    "ConnectionLost",
]
