"""What kernel output means to a slow peer's backlog: the kernel package's IBacklogPolicy.

Kernel output is an EVENT published by the kernel host (publisher role
``webkernel_host``) whose keyword arguments are an output message (``seq``,
``msg_type``, ``content``, …). For a peer that does not read fast enough the
router may, through this policy:

* merge consecutive ``stream`` text of one subscription, stream name and parent
  into one output carrying ``coalesced: [first_seq, last_seq]`` (up to
  :data:`MERGED_TEXT_LIMIT` characters);
* drop an ``update_display_data`` waiting behind a newer one for the same
  ``display_id`` (the newer one lists it in ``superseded``, up to
  :data:`MAX_SUPERSEDED` seqs);
* replace a subscription's waiting output with one *gap* output,
  ``{msg_type: "gap", from_seq, to_seq}``: the peer fetches the missing
  outputs with ``outputs(since=from_seq - 1)``.

Events of any other publisher are never touched.
"""

from autobahn.wamp import message
from zope.interface import implementer

from broker.auth import KERNEL_HOST_ROLE
from broker.backlog_policy import IBacklogPolicy

#: a merged stream output grows to this many characters, then a new one starts
#: (each merge re-encodes the merged output, so this bounds that work)
MERGED_TEXT_LIMIT = 64 * 1024
#: an update lists at most this many superseded seqs; then the next one starts a
#: new list (each replacement copies and re-encodes the list, so this bounds that work)
MAX_SUPERSEDED = 1024


def kernel_output(event):
    """The output message an EVENT carries, if it is kernel output; else None."""
    if type(event) is not message.Event or event.publisher_authrole != KERNEL_HOST_ROLE:
        return None
    kwargs = event.kwargs
    if not kwargs or "seq" not in kwargs or "msg_type" not in kwargs:
        return None
    return kwargs


@implementer(IBacklogPolicy)
class KernelOutputPolicy:
    """Coalesce streams, drop superseded display updates, summarize as gaps."""

    def concerns(self, event):
        return kernel_output(event) is not None

    def merged(self, waiting, newer):
        before, output = waiting.kwargs, newer.kwargs
        if before["msg_type"] != "stream" or output["msg_type"] != "stream":
            return None
        if before.get("parent_msg_id") != output.get("parent_msg_id"):
            return None
        if before["content"].get("name") != output["content"].get("name"):
            return None
        text = before["content"].get("text", "") + output["content"].get("text", "")
        if len(text) > MERGED_TEXT_LIMIT:
            return None
        first_seq = before.get("coalesced", [before["seq"]])[0]
        return _with_kwargs(newer, dict(output, content=dict(output["content"], text=text),
                                        coalesced=[first_seq, output["seq"]]))

    def supersession_key(self, event):
        output = event.kwargs
        if output["msg_type"] != "update_display_data":
            return None
        return (output["content"].get("transient") or {}).get("display_id")

    def superseding(self, waiting, newer):
        older, output = waiting.kwargs, newer.kwargs
        dropped = older.get("superseded", []) + [older["seq"]] + output.get("superseded", [])
        if len(dropped) > MAX_SUPERSEDED:
            return None
        return _with_kwargs(newer, dict(output, superseded=sorted(dropped)))

    def gap(self, summary, event):
        first, last = _seq_range(event.kwargs)
        if summary is None:
            return _with_kwargs(event, {"msg_type": "gap", "from_seq": first, "to_seq": last,
                                        "seq": None, "content": {}})
        kwargs = summary.kwargs
        return _with_kwargs(summary, dict(kwargs, from_seq=min(kwargs["from_seq"], first),
                                          to_seq=max(kwargs["to_seq"], last)))


def _seq_range(output):
    """The first and last seq an output accounts for (a gap, a merged stream, or one)."""
    if output["msg_type"] == "gap":
        return output["from_seq"], output["to_seq"]
    seqs = output.get("coalesced") or [output["seq"]] * 2
    return seqs[0], seqs[-1]


def _with_kwargs(event, kwargs):
    """A copy of *event* carrying *kwargs* (the original's are shared with other peers)."""
    return message.Event(event.subscription, event.publication, args=event.args, kwargs=kwargs,
                         publisher=event.publisher, publisher_authid=event.publisher_authid,
                         publisher_authrole=event.publisher_authrole, topic=event.topic)
