"""The dealer role: registrations and the routing of calls to callees.

Features: exact, prefix and wildcard registrations; shared registrations
(single, roundrobin, random, first, last); progressive call results; call
canceling (skip, kill, killnowait); dealer-side call timeouts (the caller gets
``wamp.error.timeout``, the callee an INTERRUPT); caller identification (when
the authorizer discloses); the registration meta events. Calls in flight live
in one :class:`InvocationTable`.
"""

import random

from autobahn.wamp import message

from broker import errors
from broker.router.index import ObservationIndex
from broker.router.limits import check_calls, check_observations
from broker.router.uri import MATCH_EXACT, MATCH_WILDCARD, check_uri

INVOKE_POLICIES = ("single", "roundrobin", "random", "first", "last")
CANCEL_MODES = ("skip", "kill", "killnowait")


class Invocation:
    """One call in flight: who called, which callee runs it, how it may end."""

    __slots__ = (
        "id", "caller", "call_request", "callee", "registration",
        "receive_progress", "timer", "cancel_mode",
    )

    def __init__(self, id, caller, call_request, callee, registration, receive_progress):
        self.id = id
        self.caller = caller
        self.call_request = call_request
        self.callee = callee
        self.registration = registration
        self.receive_progress = receive_progress
        self.timer = None
        self.cancel_mode = None


class InvocationTable:
    """Calls in flight, found by the callee's request id, the caller's, or a session."""

    def __init__(self):
        self._by_callee = {}  # (callee session, invocation id) -> Invocation
        self._by_caller = {}  # (caller session, call request id) -> Invocation
        self._of_session = {}  # session -> {Invocation: None}: calls it makes or answers
        self._made = {}  # caller session -> how many of its calls are in flight

    def __len__(self):
        return len(self._by_callee)

    def add(self, invocation):
        self._by_callee[(invocation.callee, invocation.id)] = invocation
        self._by_caller[(invocation.caller, invocation.call_request)] = invocation
        for session in (invocation.caller, invocation.callee):
            self._of_session.setdefault(session, {})[invocation] = None
        self._made[invocation.caller] = self._made.get(invocation.caller, 0) + 1

    def by_callee(self, callee, invocation_id):
        return self._by_callee.get((callee, invocation_id))

    def by_caller(self, caller, call_request):
        return self._by_caller.get((caller, call_request))

    def made_by(self, caller):
        """How many calls *caller* has in flight."""
        return self._made.get(caller, 0)

    def remove(self, invocation):
        """Forget a call; stop its timer. False if it was already gone."""
        if self._by_callee.pop((invocation.callee, invocation.id), None) is None:
            return False
        if self._by_caller.get((invocation.caller, invocation.call_request)) is invocation:
            del self._by_caller[(invocation.caller, invocation.call_request)]
        for session in (invocation.caller, invocation.callee):
            calls = self._of_session.get(session)
            if calls is not None:
                calls.pop(invocation, None)
                if not calls:
                    del self._of_session[session]
        left = self._made[invocation.caller] - 1
        if left:
            self._made[invocation.caller] = left
        else:
            del self._made[invocation.caller]
        if invocation.timer is not None and invocation.timer.active():
            invocation.timer.cancel()
        return True

    def involving(self, session):
        """Calls where *session* is the caller or the callee."""
        return list(self._of_session.get(session, ()))


class Dealer:
    """RPC for one realm."""

    def __init__(self, realm):
        self.realm = realm
        self.index = ObservationIndex()
        self.calls = InvocationTable()

    # -- register / unregister ----------------------------------------------

    def register(self, session, msg):
        match = msg.match or MATCH_EXACT
        invoke = msg.invoke or "single"
        check_uri(msg.procedure, match, "procedure")
        if invoke not in INVOKE_POLICIES:
            raise errors.InvalidArgument(
                f"unknown invocation policy {invoke!r}: use one of {INVOKE_POLICIES}"
            )
        self.realm.authorize(
            session, msg, msg.procedure, "register", {"match": match},
            lambda _disclose: self._register(session, msg, match, invoke),
        )

    def _register(self, session, msg, match, invoke):
        observation = self.index.lookup(msg.procedure, match)
        if observation is not None:
            self._check_shareable(session, msg.procedure, observation, invoke)
        check_observations(session, "registrations", *self.index.held_by(session),
                           match == MATCH_WILDCARD)
        created = observation is None
        if created:
            observation = self.index.create(
                msg.procedure, match, self.realm.meta.now(),
                {"invoke": invoke, "next": 0, "describe": {"invoke": invoke}},
            )
        self.index.add_observer(observation, session)
        session.send(message.Registered(msg.request, observation.id))
        if created:
            self.realm.meta.registration_created(session, observation)
        self.realm.meta.registered(session, observation)

    @staticmethod
    def _check_shareable(session, procedure, observation, invoke):
        held = observation.extra["invoke"]
        if session in observation.observers or held == "single" == invoke:
            raise errors.ProcedureAlreadyExists(
                f"procedure {procedure!r} is already registered"
            )
        if held != invoke:
            raise errors.InvocationPolicyConflict(
                f"procedure {procedure!r} is registered with invocation policy "
                f"{held!r}, not {invoke!r}"
            )

    def unregister(self, session, msg):
        observation = self.index.observed(msg.registration, session)
        if observation is None:
            raise errors.NoSuchRegistration(
                f"session {session.id} has no registration {msg.registration}"
            )
        self._remove(session, observation)
        session.send(message.Unregistered(msg.request))

    def _remove(self, session, observation):
        meta = self.realm.meta
        self.index.withdraw(observation, session, meta.unregistered, meta.registration_deleted)

    # -- call -----------------------------------------------------------------

    def call(self, session, msg):
        check_uri(msg.procedure, MATCH_EXACT, "procedure")
        local = self.realm.meta.procedures.get(msg.procedure)
        if local is not None:
            return self.realm.authorize(
                session, msg, msg.procedure, "call", {},
                lambda _disclose: self._call_local(session, msg, local),
            )
        self.realm.authorize(
            session, msg, msg.procedure, "call", {},
            lambda disclose: self._call(session, msg, disclose),
        )

    def _call_local(self, session, msg, procedure):
        try:
            result = procedure(*(msg.args or ()), **(msg.kwargs or {}))
        except TypeError as e:
            raise errors.InvalidArgument(f"bad arguments for {msg.procedure}: {e}")
        session.send(message.Result(msg.request, args=[result]))

    def _call(self, session, msg, disclose):
        observation = self.index.best_match(msg.procedure)
        if observation is None:
            raise errors.NoSuchProcedure(f"no callee registered procedure {msg.procedure!r}")
        check_calls(session, self.calls.made_by(session))
        callee = self._pick_callee(observation)
        invocation = Invocation(
            callee.next_request_id(), session, msg.request, callee, observation,
            bool(msg.receive_progress),
        )
        self.calls.add(invocation)
        if msg.timeout:
            invocation.timer = self.realm.clock.callLater(
                msg.timeout / 1000.0, self._timed_out, invocation
            )
        request = message.Invocation(
            invocation.id,
            observation.id,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            receive_progress=msg.receive_progress or None,
            caller=session.id if disclose else None,
            caller_authid=session.authid if disclose else None,
            caller_authrole=session.authrole if disclose else None,
            procedure=None if observation.match == MATCH_EXACT else msg.procedure,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
        )
        try:
            callee.send(request)
        except errors.RouterError:  # the callee cannot receive it: the caller gets the error
            self.calls.remove(invocation)
            raise

    @staticmethod
    def _pick_callee(observation):
        callees = observation.observers
        invoke = observation.extra["invoke"]
        if invoke in ("single", "first"):
            return next(iter(callees))
        ordered = list(callees)
        if invoke == "last":
            return ordered[-1]
        if invoke == "random":
            return random.choice(ordered)
        turn = observation.extra["next"] % len(ordered)
        observation.extra["next"] = turn + 1
        return ordered[turn]

    # -- results from callees ------------------------------------------------

    def yield_(self, session, msg):
        invocation = self.calls.by_callee(session, msg.request)
        if invocation is None:
            return  # a late answer to a canceled or timed-out call: dropped
        if msg.progress:
            if invocation.receive_progress:
                invocation.caller.send(self._result(invocation, msg, progress=True))
            return
        self.calls.remove(invocation)
        invocation.caller.send(self._result(invocation, msg, progress=None))

    @staticmethod
    def _result(invocation, msg, progress):
        return message.Result(
            invocation.call_request,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            progress=progress,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
        )

    def invocation_error(self, session, msg):
        invocation = self.calls.by_callee(session, msg.request)
        if invocation is None:
            return
        self.calls.remove(invocation)
        invocation.caller.send(
            message.Error(
                message.Call.MESSAGE_TYPE,
                invocation.call_request,
                msg.error,
                args=msg.args,
                kwargs=msg.kwargs,
                payload=msg.payload,
                enc_algo=msg.enc_algo,
                enc_key=msg.enc_key,
                enc_serializer=msg.enc_serializer,
            )
        )

    # -- cancel, timeout, departure ------------------------------------------

    def cancel(self, session, msg):
        invocation = self.calls.by_caller(session, msg.request)
        if invocation is None or invocation.cancel_mode is not None:
            return  # already answered: nothing to cancel
        mode = msg.mode or "killnowait"
        if mode not in CANCEL_MODES:
            raise errors.InvalidArgument(f"unknown cancel mode {mode!r}: use one of {CANCEL_MODES}")
        self._stop(invocation, mode, errors.CANCELED, "the call was canceled by the caller")

    def _timed_out(self, invocation):
        invocation.timer = None
        self._stop(
            invocation, "killnowait", errors.TIMEOUT,
            "the call's timeout expired before the callee answered",
        )

    def _stop(self, invocation, mode, uri, reason):
        """End a call early by *mode*; the caller gets *uri* unless mode is kill."""
        if not invocation.callee.supports("callee", "call_canceling"):
            mode = "skip"
        invocation.cancel_mode = mode
        if mode != "kill":
            self.calls.remove(invocation)
            invocation.caller.send(
                message.Error(message.Call.MESSAGE_TYPE, invocation.call_request, uri, args=[reason])
            )
        if mode != "skip":
            invocation.callee.send(message.Interrupt(invocation.id, mode=mode, reason=uri))

    def session_left(self, session):
        """Forget a departed session's calls.

        Calls it was answering fail for their callers with ``canceled``. Calls
        it made are forgotten but not interrupted: a caller that merely lost
        its connection (a browser tab reconnecting) did not ask to stop the
        work, whose results may be observable elsewhere (a kernel's output
        topics). A caller that wants the work stopped sends CANCEL or uses a
        call timeout.
        """
        for invocation in self.calls.involving(session):
            self.calls.remove(invocation)
            if invocation.callee is session and invocation.caller is not session:
                invocation.caller.send(
                    message.Error(
                        message.Call.MESSAGE_TYPE, invocation.call_request, errors.CANCELED,
                        args=["the callee left before answering the call"],
                    )
                )
        for observation in self.index.observed_by(session):
            self._remove(session, observation)
