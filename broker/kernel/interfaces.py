"""The seams between the kernel host and kernels: a launcher and a channel set."""

from zope.interface import Attribute, Interface

#: the channels a client sends requests on (iopub and the heartbeat carry none)
REQUEST_CHANNELS = ("shell", "control", "stdin")
#: the signals a launched kernel's ``signal(name)`` sends
SIGNALS = ("INT", "TERM", "KILL")


class IKernelLauncher(Interface):
    """Starts kernel processes from kernelspecs."""

    def launch(kernel_name, kernel_id, owner=None):
        """Start a kernel of kernelspec *kernel_name*, known as *kernel_id*, for user *owner*.

        A launcher may run it as *owner*'s OS account (multi-user mode) and
        then fail with :class:`~broker.kernel.accounts.NoAccount`.

        Return a Deferred firing with a
        :class:`~broker.kernel.launcher.LaunchedKernel`, or failing with
        :class:`~broker.kernel.errors.NoSuchKernelSpec`,
        :class:`~broker.kernel.errors.InvalidKernelId` or
        :class:`~broker.kernel.errors.KernelCommandNotFound`.
        """

    def adopt(kernel_name, kernel_id, pid, poll_interval=1.0):
        """Take over kernel *kernel_id*, started by an earlier service, running as *pid*.

        Return a Deferred firing with an object like ``LaunchedKernel`` (an
        :class:`~broker.kernel.adoption.AdoptedKernel`: ``exited`` fires when a
        poll every *poll_interval* seconds finds the process gone), or failing
        with :class:`~broker.kernel.errors.KernelGone`.
        """

    def kernelspecs():
        """The kernelspecs this launcher can start, in Jupyter Server's REST shape.

        ``{"default": name, "kernelspecs": {name: {"name": name, "spec": {...}}}}``
        """


class IKernelChannels(Interface):
    """The messaging channels of one running kernel.

    Replies on shell, control and stdin, and every iopub message, reach the
    single ``on_message(channel, msg)`` callback given at construction;
    *msg* is the message dict of ``jupyter_client.session.Session.deserialize``
    (``header``, ``parent_header``, ``metadata``, ``content``, ``buffers``,
    ``msg_id``, ``msg_type``). Messages that fail HMAC verification are dropped.
    """

    closed = Attribute("True once close() was called.")

    def send(channel, msg_type, content, metadata=None, parent=None, buffers=None):
        """Send a request on ``shell``, ``control`` or ``stdin``; return the message dict sent.

        The returned dict's ``msg_id`` is the ``parent_header.msg_id`` of the
        kernel's reply and of the iopub messages it causes.
        """

    def nudge(timeout=30.0, interval=0.5, channel="shell"):
        """Wait until the kernel answers ``kernel_info_request`` on *channel* and iopub is subscribed.

        Return a Deferred firing with the ``kernel_info_reply`` content, or
        failing with :class:`~broker.kernel.errors.KernelNotReady` after
        *timeout* seconds. ``channel="control"`` reaches a kernel that is busy
        running code (ipykernel answers control requests on a thread of their own).
        """

    def ping():
        """Send one heartbeat; return a Deferred that fires when the kernel echoes it.

        The Deferred is cancellable (a timeout cancels it).
        """

    def close():
        """Close every socket; pending nudges and pings fail with ChannelsClosed."""
