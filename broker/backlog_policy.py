"""The seam between the router's per-peer backlog and what an application's events mean.

The router keeps each peer's backlog of messages its socket would not take
yet, counts its bytes and enforces its marks (see
:mod:`broker.router.backpressure`). It knows nothing of what an EVENT's payload
means, so it asks an :class:`IBacklogPolicy`, registered by the service wiring
(``broker/tap.py``), whether a waiting EVENT may be merged with a newer one,
replaced by a newer one, or summarized (a *gap*). The kernel package supplies
the policy for kernel output; without one, nothing is ever merged or dropped.
"""

from zope.interface import Interface, implementer


class IBacklogPolicy(Interface):
    """How the router may shrink a slow peer's backlog of EVENTs.

    Every method is called with ``autobahn.wamp.message.Event`` objects that
    the policy :meth:`concerns`, of one subscription, and must do work
    independent of the backlog's length (the router calls them on its
    reactor thread, once per message at most). Events returned are new
    objects: an EVENT received may be shared with other peers.
    """

    def concerns(event):
        """True if this EVENT may be merged, replaced or summarized; False: deliver it as is."""

    def merged(waiting, newer):
        """One EVENT standing for *waiting* followed directly by *newer*, or None to keep both.

        Asked only above the coalescing mark. The result keeps *waiting*'s
        :meth:`supersession_key`.
        """

    def supersession_key(event):
        """A hashable key: a newer EVENT with the same key makes a waiting one superfluous.

        None if no newer event ever replaces this one.
        """

    def superseding(waiting, newer):
        """The EVENT delivered instead of *newer* once *waiting* (same key, older) is dropped.

        It may name what it replaced; it keeps *newer*'s key. None: keep
        *waiting* (and what waits before it with that key) after all.
        """

    def gap(summary, event):
        """Fold *event* into *summary* and return the new summary (an EVENT).

        *summary* is None for the first event of a subscription, else this
        method's previous result for that subscription. The peer receives the
        summary in place of every event folded into it.
        """


@implementer(IBacklogPolicy)
class DeliverEverything:
    """The policy of a router that knows no application: nothing is merged or dropped."""

    def concerns(self, event):
        return False

    def merged(self, waiting, newer):
        return None

    def supersession_key(self, event):
        return None

    def superseding(self, waiting, newer):
        return None

    def gap(self, summary, event):
        raise AssertionError("gap() is only asked for events the policy concerns")
