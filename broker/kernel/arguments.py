"""Checking a caller's arguments before anything reaches a kernel.

A kernel that gets a request it cannot handle (a ``cursor_pos`` that is not a
number, an unknown ``history_request`` field) logs an exception and never
replies, so the call would wait forever. Every procedure therefore checks its
arguments here first; a bad one is ERROR ``wamp.error.invalid_argument`` with
a message saying which argument and what it must be. :func:`checked` does the
same for the arguments a procedure does not take (Python's ``TypeError`` would
otherwise reach the caller as ``wamp.error.runtime_error``), and through
:func:`broker.errors.answering` turns every condition a procedure raises into
the WAMP error of its URI.
"""

import json
from inspect import Signature, signature

from broker import errors

#: the widest integer a kernel's request fields take (a C int: IPython's history is SQLite)
INT32 = 2**31 - 1
#: the widest integer a seq or count may be (WAMP's ids are bounded the same: 2**53)
SAFE_INT = 2**53


def refuse(text):
    """An ``invalid_argument`` error for the caller."""
    return errors.InvalidArgument(text)


def _kind(value):
    return "null" if value is None else type(value).__name__


def text(name, value, optional=False):
    """*value* must be a string of Unicode text (or None if *optional*)."""
    if optional and value is None:
        return
    if not isinstance(value, str):
        raise refuse(f"{name} must be a string, not {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise refuse(f"{name} is not Unicode text: {e.reason} at position {e.start}") from None


def flag(name, value, optional=False):
    """*value* must be true or false (or None if *optional*)."""
    if not (type(value) is bool or (optional and value is None)):
        raise refuse(f"{name} must be true or false{' (or null)' if optional else ''}, "
                     f"not {_kind(value)}")


def integer(name, value, low, high, optional=False):
    """*value* must be an integer from *low* to *high* (or None if *optional*); a bool is not."""
    if optional and value is None:
        return
    if type(value) is not int:
        raise refuse(f"{name} must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise refuse(f"{name} must be from {low} to {high}")


def choice(name, value, allowed):
    """*value* must be one of *allowed* (strings)."""
    if type(value) is not str or value not in allowed:
        raise refuse(f"{name} must be one of {list(allowed)}")


def text_map(name, value, optional=False):
    """*value* must be an object of strings to strings (or None if *optional*)."""
    if optional and value is None:
        return
    if type(value) is not dict:
        raise refuse(f"{name} must be an object of strings, not {_kind(value)}")
    for key, item in value.items():
        text(f"a key of {name}", key)
        text(f"{name}[{key!r}]", item)


def json_object(name, value, optional=False):
    """*value* must be a JSON object a Jupyter message can carry (or None if *optional*):
    nothing but JSON's types, no NaN or infinity, Unicode text (as jupyter_client packs it)."""
    if optional and value is None:
        return
    if type(value) is not dict:
        raise refuse(f"{name} must be an object, not {_kind(value)}")
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise refuse(f"{name} is not JSON a kernel takes: {e}") from None


def byte_strings(name, value, most, optional=False):
    """*value* must be a list of at most *most* byte strings (or None if *optional*)."""
    if optional and value is None:
        return
    if type(value) is not list or len(value) > most:
        raise refuse(f"{name} must be a list of at most {most} binary values")
    for item in value:
        if type(item) is not bytes:
            raise refuse(f"{name} must hold binary values, not {_kind(item)}")


def checked(function, name, *bound, **injected):
    """*function* with *bound* arguments first and *injected* keywords, as a procedure.

    The caller's arguments are bound to the parameters *function* leaves to
    the caller (not *bound*, *injected* or ``details``) before it runs; ones it
    does not take are ``wamp.error.invalid_argument`` naming *name*.
    ``details`` (Autobahn's call details) is passed on if *function* takes it.
    A :class:`~broker.errors.Condition` it raises (or fails with) is the
    caller's WAMP error (:func:`broker.errors.answering`).
    """
    parameters = list(signature(function).parameters.values())[len(bound):]
    takes_details = any(p.name == "details" for p in parameters)
    public = Signature([p for p in parameters if p.name != "details" and p.name not in injected])

    def procedure(*args, **kwargs):
        details = kwargs.pop("details", None) if takes_details else None
        try:
            arguments = public.bind(*args, **kwargs).arguments
        except TypeError as e:
            raise refuse(f"{name}: {e}") from None
        if takes_details:
            arguments["details"] = details
        return function(*bound, **arguments, **injected)
    return errors.answering(procedure)
