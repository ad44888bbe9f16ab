"""JSON-RPC 2.0 over HTTP at ``/jsonrpc``: the seed's ``eval_cell("2+3") -> '5'`` for any JSON-RPC client.

* :mod:`broker.jsonrpc.protocol`: JSON-RPC 2.0 itself (batches,
  notifications, error codes), independent of HTTP and kernels.
* :mod:`broker.jsonrpc.methods`: the methods (``eval_cell``, ``execute``,
  ``get_stdout``, …) for one principal, as calls through the router.
* :mod:`broker.jsonrpc.resource`: the Twisted Web resource: token, body
  limit, one in-process WAMP session per principal.

``docs/clients.md`` documents the methods and error codes.
"""

from broker.jsonrpc.resource import JsonRpcResource

__all__ = ["JsonRpcResource"]
