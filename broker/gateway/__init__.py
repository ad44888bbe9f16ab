"""The Jupyter gateway API: ``jupyter lab --gateway-url=…`` runs its kernels on webkernel.

The REST API of Jupyter Kernel Gateway (``/api/kernelspecs``, ``/api/kernels``,
``/kernelspecs/<name>/<file>``) and the kernel WebSocket
``/api/kernels/<id>/channels``, served on the service's port. The gateway is
a WAMP client of the kernel API (``docs/kernels.md``) attached in-process:
a kernel started here is an ordinary webkernel kernel. See ``docs/jupyter.md``.
"""

from broker.gateway.rest import GatewayApi, KernelspecFiles

__all__ = ["GatewayApi", "KernelspecFiles"]
