"""Run a notebook with nbclient and print its cells' outputs as JSON (a helper the gateway tests run).

``python -m tests.gateway_nbclient NOTEBOOK local`` runs it on a local
ipykernel; ``… NOTEBOOK gateway URL`` runs it on the kernels of the
jupyter_server (or gateway) at URL, through jupyter_server's own
``GatewayKernelManager``/``GatewayKernelClient`` (REST and kernel WebSocket).
Outputs are printed without their volatile parts (execution counts, ids).
"""

import json
import os
import sys

import nbformat
from nbclient import NotebookClient


def outputs(nb):
    """Each code cell's outputs, stripped of what differs between runs."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        found = []
        for output in cell.outputs:
            output = dict(output)
            output.pop("execution_count", None)
            if output.get("output_type") == "error":
                output.pop("traceback", None)
            found.append(output)
        cells.append(found)
    return cells


def main(path, mode, url=None):
    nb = nbformat.read(path, as_version=4)
    if mode == "gateway":
        from jupyter_server.gateway.gateway_client import GatewayClient
        from jupyter_server.gateway.managers import GatewayKernelManager
        class KernelManager(GatewayKernelManager):
            # jupyter_client's KernelClient.wait_for_ready asks its parent for
            # _async_is_alive, which GatewayKernelManager names is_alive
            async def _async_is_alive(self):
                return await self.is_alive()

        GatewayClient.instance(url=url, request_timeout=60.0)
        client = NotebookClient(nb, km=KernelManager(), timeout=60, kernel_name="python3",
                                allow_errors=True)
    else:
        client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute()
    print(json.dumps(outputs(nb)), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
    # GatewayKernelClient reads its WebSocket in a thread that is not a daemon
    # and that nbclient's clean-up leaves blocked: do not wait for it
    os._exit(0)
