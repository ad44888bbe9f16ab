"""``/api/kernels/<id>/channels``: a kernel's Jupyter WebSocket, served by a placeholder until the channels land."""


class KernelChannels:
    """Serves the kernel WebSockets and counts them per kernel."""

    def __init__(self):
        self._open = {}

    def connections(self, kernel_id):
        """How many gateway WebSockets are open on *kernel_id*."""
        return self._open.get(kernel_id, 0)

    def take_over(self, request, principal, kernel_id):
        request.setResponseCode(501)
        request.finish()
