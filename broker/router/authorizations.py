"""The authorization decisions one session keeps, so the authorizer is not asked again.

An authorizer's decision may say how far it holds (see ``docs/protocol.md``):

* ``cache: true``: for this URI, action and match policy. Such decisions are
  kept in a least-recently-used table of at most ``max_entries`` per session
  (a long-lived session touching ever new URIs, like the kernel host
  publishing on a new topic per kernel and message type, would otherwise
  grow it without end); the oldest is forgotten first and simply asked again.
* ``namespace: "ns"``: for every URI in namespace *ns* (*ns* itself or below
  it), this action and the exact match policy. One entry stands for them all,
  and is looked up with a prefix test, not per URI. At most ``max_namespaces``
  are kept per session (the oldest is forgotten first).

A decision is never kept otherwise; a denial is kept only if its authorizer
says so (the default authorizer's are never kept).
"""

from collections import OrderedDict

from broker.auth import has_prefix
from broker.router.uri import MATCH_EXACT

DEFAULT_MAX_ENTRIES = 1024
DEFAULT_MAX_NAMESPACES = 16


class AuthorizationCache:
    """One session's kept decisions: a bounded LRU by URI, and decisions held for a namespace."""

    def __init__(self, max_entries=DEFAULT_MAX_ENTRIES, max_namespaces=DEFAULT_MAX_NAMESPACES):
        self.max_entries = max_entries
        self.max_namespaces = max_namespaces
        self._by_uri = OrderedDict()      # (uri, action, match) -> decision
        self._by_namespace = OrderedDict()  # (namespace, action) -> decision (exact match)

    def __len__(self):
        return len(self._by_uri) + len(self._by_namespace)

    def get(self, uri, action, match):
        """The kept decision for *uri*, *action* and *match*, or None."""
        if match == MATCH_EXACT and self._by_namespace:
            for (namespace, kept_action), decision in self._by_namespace.items():
                if kept_action == action and has_prefix(uri, namespace):
                    return decision
        key = (uri, action, match)
        decision = self._by_uri.get(key)
        if decision is not None:
            self._by_uri.move_to_end(key)
        return decision

    def keep(self, uri, action, match, decision):
        """Keep *decision* (normalized: ``allow``, ``disclose``, ``cache``, ``namespace``) as it says."""
        namespace = decision["namespace"]
        if namespace is not None and match == MATCH_EXACT and has_prefix(uri, namespace):
            return self._keep(self._by_namespace, (namespace, action), decision,
                              self.max_namespaces)
        if decision["cache"]:
            self._keep(self._by_uri, (uri, action, match), decision, self.max_entries)

    @staticmethod
    def _keep(table, key, decision, limit):
        table[key] = decision
        table.move_to_end(key)
        while len(table) > limit:
            table.popitem(last=False)
