"""One index of observations (subscriptions or registrations) and their observers.

An *observation* is a URI with a match policy (exact, prefix, wildcard) and
the sessions observing it. The broker keeps one index of subscriptions, the
dealer one of registrations. The index owns every map about them: the exact
dict, the prefix dict with the set of prefix lengths in use, the wildcard
patterns, the id map and each session's observations, so no two maps are kept
in step by convention elsewhere.

Wildcard patterns are grouped by *shape*: their number of components and the
positions of their literal ones (``a..c`` and ``x..z`` share a shape), and
within a shape found by their literal components. Matching a URI costs one
dict lookup per shape in use for its number of components, however many
patterns share each shape; each session may add only a bounded number of
wildcard patterns (:mod:`broker.router.limits`).
"""

from autobahn.util import id as new_id

from broker.router.uri import MATCH_EXACT, MATCH_PREFIX, MATCH_WILDCARD


def wildcard_shape(parts):
    """``(shape, literals)`` of a wildcard pattern split on ``.``.

    ``a1..c3`` -> ``((3, (0, 2)), ("a1", "c3"))``: the shape is the number of
    components and the positions of the literal ones.
    """
    positions = tuple(i for i, part in enumerate(parts) if part)
    return (len(parts), positions), tuple(parts[i] for i in positions)


def literal_runs(parts):
    """Lengths of the runs of literal components between wildcards.

    ``a1.b2..d4.e5`` -> ``[2, 2]``; ``a1.b2.c3..e5`` -> ``[3, 1]``.
    """
    runs, current = [], 0
    for part in parts:
        if part:
            current += 1
        else:
            runs.append(current)
            current = 0
    runs.append(current)
    return runs


class Observation:
    """A URI under a match policy, the sessions observing it, and extra state."""

    __slots__ = ("id", "uri", "match", "created", "observers", "extra", "parts")

    def __init__(self, uri, match, created, extra=None):
        self.id = new_id()
        self.uri = uri
        self.match = match
        self.created = created
        #: session -> per-observer data (insertion ordered: oldest first)
        self.observers = {}
        self.extra = extra if extra is not None else {}
        self.parts = uri.split(".") if match == MATCH_WILDCARD else None

    def describe(self):
        """The meta API's view of this observation."""
        return {
            "id": self.id,
            "created": self.created,
            "uri": self.uri,
            "match": self.match,
            **self.extra.get("describe", {}),
        }


class ObservationIndex:
    """All observations of one kind, indexed for lookup and matching."""

    def __init__(self):
        self._exact = {}
        self._prefix = {}
        self._prefix_lengths = {}  # length -> number of prefixes of that length
        #: number of components -> {literal positions: {literals: observation}}
        self._wildcard = {}
        self._by_id = {}
        self._by_session = {}  # session -> {observation id: observation}
        self._wildcards_of = {}  # session -> how many wildcard observations it observes

    def __len__(self):
        return len(self._by_id)

    def __iter__(self):
        return iter(list(self._by_id.values()))

    def get(self, observation_id):
        """The observation with this id, or None."""
        return self._by_id.get(observation_id)

    def lookup(self, uri, match=MATCH_EXACT):
        """The observation for exactly this URI and policy, or None."""
        if match == MATCH_EXACT:
            return self._exact.get(uri)
        if match == MATCH_PREFIX:
            return self._prefix.get(uri)
        (size, positions), literals = wildcard_shape(uri.split("."))
        return self._wildcard.get(size, {}).get(positions, {}).get(literals)

    def create(self, uri, match, created, extra=None):
        """Add and return a new observation (the caller checked it is absent)."""
        observation = Observation(uri, match, created, extra)
        if match == MATCH_EXACT:
            self._exact[uri] = observation
        elif match == MATCH_PREFIX:
            self._prefix[uri] = observation
            self._prefix_lengths[len(uri)] = self._prefix_lengths.get(len(uri), 0) + 1
        else:
            (size, positions), literals = wildcard_shape(observation.parts)
            shapes = self._wildcard.setdefault(size, {})
            shapes.setdefault(positions, {})[literals] = observation
        self._by_id[observation.id] = observation
        return observation

    def delete(self, observation):
        """Remove an observation."""
        del self._by_id[observation.id]
        uri = observation.uri
        if observation.match == MATCH_EXACT:
            del self._exact[uri]
        elif observation.match == MATCH_PREFIX:
            del self._prefix[uri]
            left = self._prefix_lengths[len(uri)] - 1
            if left:
                self._prefix_lengths[len(uri)] = left
            else:
                del self._prefix_lengths[len(uri)]
        else:
            (size, positions), literals = wildcard_shape(observation.parts)
            shapes = self._wildcard[size]
            del shapes[positions][literals]
            if not shapes[positions]:
                del shapes[positions]
            if not shapes:
                del self._wildcard[size]

    def matching(self, uri):
        """Every observation matching *uri*: exact, then prefixes, then wildcards."""
        found = []
        exact = self._exact.get(uri)
        if exact is not None:
            found.append(exact)
        if self._prefix_lengths:
            found.extend(self._matching_prefixes(uri))
        if self._wildcard:
            found.extend(self._matching_wildcards(uri))
        return found

    def best_match(self, uri):
        """The one observation a call to *uri* goes to, by the spec's precedence.

        Exact beats prefix, a longer prefix beats a shorter one, and a prefix
        beats a wildcard. Among wildcards, the spec's rule: the pattern with
        the longest run of literal components before its first wildcard wins,
        then the longest second run, and so on (``a1.b2.c3..e5`` beats
        ``a1.b2..d4.e5``); the lexically first pattern breaks a full tie.
        """
        exact = self._exact.get(uri)
        if exact is not None:
            return exact
        prefixes = self._matching_prefixes(uri)
        if prefixes:
            return max(prefixes, key=lambda o: len(o.uri))
        wildcards = self._matching_wildcards(uri)
        if wildcards:
            best = max(literal_runs(o.parts) for o in wildcards)
            return min((o for o in wildcards if literal_runs(o.parts) == best), key=lambda o: o.uri)
        return None

    def _matching_prefixes(self, uri):
        found = []
        for length in self._prefix_lengths:
            if length <= len(uri):
                observation = self._prefix.get(uri[:length])
                if observation is not None:
                    found.append(observation)
        return found

    def _matching_wildcards(self, uri):
        parts = uri.split(".")
        shapes = self._wildcard.get(len(parts))
        if not shapes:
            return []
        found = []
        for positions, patterns in shapes.items():
            observation = patterns.get(tuple(parts[i] for i in positions))
            if observation is not None:
                found.append(observation)
        return found

    def add_observer(self, observation, session, data=None):
        """Make *session* an observer of *observation*."""
        observation.observers[session] = data
        self._by_session.setdefault(session, {})[observation.id] = observation
        if observation.match == MATCH_WILDCARD:
            self._wildcards_of[session] = self._wildcards_of.get(session, 0) + 1

    def observed(self, observation_id, session):
        """The observation with this id if *session* observes it, else None."""
        observation = self._by_id.get(observation_id)
        if observation is None or session not in observation.observers:
            return None
        return observation

    def withdraw(self, observation, session, removed, deleted):
        """Remove *session* from *observation*; the last observer out deletes it.

        ``removed(session, observation)`` is called once the session is off
        it, then, if none is left, ``deleted(session, observation)`` once it
        is out of the index (the role's meta events).
        """
        empty = self.remove_observer(observation, session)
        removed(session, observation)
        if empty:
            self.delete(observation)
            deleted(session, observation)

    def remove_observer(self, observation, session):
        """Remove *session* from *observation*; True if none is left."""
        del observation.observers[session]
        mine = self._by_session.get(session)
        if mine is not None:
            mine.pop(observation.id, None)
            if not mine:
                del self._by_session[session]
        if observation.match == MATCH_WILDCARD:
            left = self._wildcards_of[session] - 1
            if left:
                self._wildcards_of[session] = left
            else:
                del self._wildcards_of[session]
        return not observation.observers

    def held_by(self, session):
        """``(observations, wildcard observations)`` *session* observes: how many."""
        return len(self._by_session.get(session, ())), self._wildcards_of.get(session, 0)

    def is_empty(self):
        """True if the index holds nothing at all (every map empty)."""
        return not (self._exact or self._prefix or self._prefix_lengths or self._wildcard
                    or self._by_id or self._by_session or self._wildcards_of)

    def observed_by(self, session):
        """The observations *session* observes."""
        return list(self._by_session.get(session, {}).values())

    def uris_by_match(self):
        """Ids of all observations grouped by match policy (for ``*.list``)."""
        grouped = {MATCH_EXACT: [], MATCH_PREFIX: [], MATCH_WILDCARD: []}
        for observation in self._by_id.values():
            grouped[observation.match].append(observation.id)
        return grouped
