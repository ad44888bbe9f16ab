"""What holding many kernels takes of the service process: file descriptors.

Each kernel costs the service about :data:`~broker.connection_limits.FDS_PER_KERNEL`
descriptors (its five ZeroMQ sockets' TCP connections and their mailboxes, the
stdin monitor's pair, a spawned kernel's pipes), so ``--max-kernels 1000`` needs
about 16,000 on top of the service's own files and its connections, far past the
common soft ``RLIMIT_NOFILE`` of 1024. At start-up (:func:`raise_descriptor_limit`)
the service raises its soft limit up to the hard one if the kernels need more;
if even the hard limit is too low it refuses to start, saying how many
descriptors it needs and what to change, rather than failing kernel starts (or
accepts) with ``EMFILE`` once hundreds of kernels run.

(The ZeroMQ context's own socket limit is set where the context is made:
:func:`broker.kernel.zmq_channels.make_zmq_factory`.)
"""

import resource

from broker.connection_limits import FD_RESERVE, FDS_PER_KERNEL, MIN_TOTAL

#: the largest limit taken from an unlimited hard RLIMIT_NOFILE
UNLIMITED_AS = 1 << 20


class TooFewDescriptors(Exception):
    """The hard RLIMIT_NOFILE is below what the kernels the service may hold need."""


def descriptors_needed(kernels):
    """Descriptors for *kernels* kernels, the service's own files and the least connections."""
    return FD_RESERVE + FDS_PER_KERNEL * kernels + MIN_TOTAL


def most_kernels(limit):
    """The most kernels *limit* descriptors hold (see descriptors_needed)."""
    return max(0, (limit - FD_RESERVE - MIN_TOTAL) // FDS_PER_KERNEL)


def raise_descriptor_limit(kernels, getrlimit=resource.getrlimit, setrlimit=resource.setrlimit):
    """Make room for *kernels* kernels; return the soft RLIMIT_NOFILE (before, after).

    A soft limit below the need is raised to the hard limit (so that connections
    get the rest); TooFewDescriptors, saying what to do, if the hard limit is too low.
    """
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    need = descriptors_needed(kernels)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return soft, soft
    ceiling = UNLIMITED_AS if hard == resource.RLIM_INFINITY else hard
    if ceiling < need:
        raise TooFewDescriptors(
            f"{kernels} kernels need about {need} file descriptors ({FDS_PER_KERNEL} a kernel, "
            f"{FD_RESERVE} for the service's own files, {MIN_TOTAL} for connections), but the "
            f"hard RLIMIT_NOFILE is {hard}: raise it (ulimit -Hn, or LimitNOFILE= in a systemd "
            f"unit) or lower --max-kernels (and --pool) to at most {most_kernels(ceiling)} "
            f"kernels in all")
    setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    return soft, ceiling
