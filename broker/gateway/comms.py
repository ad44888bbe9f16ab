"""Output widgets through the gateway: the request id in their state, as each side knows it.

ipywidgets' Output widget (and so ``interact``) captures the outputs of one
request: its comm state names that request's ``msg_id``, and the client
routes each iopub message whose parent is that id into the widget. The
kernel names its own request id, which the gateway's client never sees: the
gateway addresses outputs to the client's request (:mod:`broker.gateway.requests`).
So an Output widget's ``msg_id`` is rewritten both ways, with the
:class:`~broker.gateway.replay.SessionTrail` that maps one to the other: in
the kernel's comm messages to the client's id, in the client's to the
kernel's. Ids the trail does not know (another client's request) are left
as they are. Copies are made; outputs are shared with other sockets.
"""

COMM_TYPES = ("comm_open", "comm_msg")


def _msg_id(content):
    data = content.get("data") if isinstance(content, dict) else None
    state = data.get("state") if isinstance(data, dict) else None
    if isinstance(state, dict) and isinstance(state.get("msg_id"), str) and state["msg_id"]:
        return state["msg_id"]
    return None


def _with_msg_id(content, msg_id):
    data = content["data"]
    return {**content, "data": {**data, "state": {**data["state"], "msg_id": msg_id}}}


def to_client(msg_type, content, trail):
    """*content* of a kernel's *msg_type* message, an Output widget's request id the client's."""
    kernel_id = _msg_id(content) if msg_type in COMM_TYPES else None
    header = trail.parents.get(kernel_id) if kernel_id else None
    client_id = header.get("msg_id") if isinstance(header, dict) else None
    return _with_msg_id(content, client_id) if isinstance(client_id, str) else content


def to_kernel(content, trail):
    """*content* of a client's comm message, an Output widget's request id the kernel's."""
    client_id = _msg_id(content)
    if client_id is None:
        return content
    for kernel_id, header in trail.parents.items():
        if isinstance(header, dict) and header.get("msg_id") == client_id:
            return _with_msg_id(content, kernel_id)
    return content
