"""``twistd webkernel``: command-line options and the wiring of the service.

``makeService`` only wires parts together: a router with one realm, and one
listening service per ``--listen`` endpoint, each serving HTTP, WAMP over
WebSocket (``/ws``) and WAMP over RawSocket on the same port.

This is the one module that knows every part. The services that run
in-process sessions (kernel host, notebooks, JSON-RPC, the Jupyter gateway) are handed
``attach(app_session, principal)`` (:func:`broker.router.local.attacher`)
and, for JSON-RPC, the router's ``authenticate``; none of them imports the
router.
"""

import functools

import os
import secrets

import txaio
from jupyter_client.kernelspec import KernelSpecManager
from twisted.application import service
from twisted.plugin import getPlugins
from twisted.internet import defer, endpoints
from twisted.application import strports
from twisted.logger import Logger
from twisted.python import usage

from broker import errors
from broker.auth import DefaultAuthorizer, IAuthorizerFactory, Principal
from broker.classroom import roles
from broker.classroom.authorizer import confined_to_kernel
from broker.classroom.notebooks import UserFolders
from broker.classroom.owners import KernelOwners, OwnerTracker
from broker.classroom.policy import DEFAULT_MAX_KERNELS_PER_USER, ClassroomPolicy
from broker.connection_limits import DEFAULT_PER_ADDRESS, LimitedFactory, default_max_connections
from broker.kernel.capacity import TooFewDescriptors, raise_descriptor_limit
from broker.hosts import HostAllowList, listening_interfaces
from broker.http_guard import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_BODY, HttpLimits
from broker.gateway import GatewayApi, KernelspecFiles
from broker.gateway.channels import KernelChannels
from broker.gateway.sessions import GatewaySessions
from broker.jsonrpc import JsonRpcResource
from broker.kernel import accounts as kernel_accounts
from broker.kernel import confinement as kernel_confinement
from broker.kernel import isolation_checks
from broker.kernel.backlog_policy import KernelOutputPolicy
from broker.kernel.kernelspecs import DEFAULT_KERNEL_NAME
from broker.kernel.logs import DEFAULT_MAX_BYTES as DEFAULT_LOG_BYTES
from broker.kernel.pool import parse_sizes as parse_pool_sizes
from broker.kernel.records import KernelDirNotOurs, check_kernel_dir_owner
from broker.kernel.service import (
    DEFAULT_ROUTER_PING,
    DEFAULT_ROUTER_PING_TIMEOUT,
    KernelHostService,
    RemoteKernelHostService,
    default_kernel_dir,
)
from broker.notebook.service import NotebookService, RemoteNotebookService
from broker.teaching.page import ClassPage
from broker.teaching.service import ClassService
from broker.classroom.crossbar import CrossbarAuthorizerService
from broker.metrics import Metrics, metrics_site
from broker.router.local import attacher
from broker.notebook import workers as notebook_workers
from broker.notebook.store import DEFAULT_MAX_NOTEBOOK_SIZE
from broker.router.router import Router
from broker.router.session import RouterSession
from broker.router.backpressure import DEFAULT_COALESCE_ABOVE, DEFAULT_GAP_ABOVE
from broker.router.limits import (
    DEFAULT_MAX_PENDING_CALLS,
    DEFAULT_MAX_REGISTRATIONS,
    DEFAULT_MAX_SUBSCRIPTIONS,
    DEFAULT_MAX_WILDCARDS,
    SessionLimits,
)
from broker.users import store as users_store
from broker.users.directory import UserDirectory
from broker.transport import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_OUTPUT,
    OutputLimits,
    UniversalFactory,
    WampRawSocketFactory,
    WampWebSocketFactory,
)
from broker.cleartext import sends_in_clear
from broker.web import make_front_site, make_site

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"


def _positive_int(value):
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be a positive number, not {value}")
    return number


def _kernel_factory(value):
    if value not in ("spawn", "fork"):
        raise ValueError(f"must be spawn or fork, not {value!r}")
    return value


def _positive_float(value):
    number = float(value)
    if not number > 0:
        raise ValueError(f"must be a positive number, not {value}")
    return number


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def _size(value):
    """Bytes from ``2GiB``, ``512M``, ``1048576`` (K, M, G, T: powers of 1024)."""
    text = str(value).strip().lower().removesuffix("ib").removesuffix("b")
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    try:
        number = float(text[:len(text) - len(unit)])
    except ValueError:
        raise ValueError(f"not a size: {value!r} (e.g. 2GiB, 512MiB, 1048576)") from None
    if not number > 0:
        raise ValueError(f"must be a positive size, not {value}")
    return int(number * _SIZE_UNITS[unit])


def _nice(value):
    number = int(value)
    if not 0 <= number <= 19:
        raise ValueError(f"a nice value is 0 to 19, not {value}")
    return number


def _front_auth(value):
    if value not in ("anonymous", "ticket"):
        raise ValueError("--front-auth is anonymous or ticket")
    return value


def _log_format(value):
    if value not in ("text", "json"):
        raise ValueError("--log-format is text or json")
    return value


class Options(usage.Options):
    """Options of ``twistd webkernel``."""

    synopsis = "[options]"
    longdesc = (
        "Serve WAMP (RPC and pub/sub) over WebSocket at /ws and RawSocket on the "
        "same port. By default the service listens on loopback only and requires "
        "the token it logs (in a URL) at start."
    )
    optFlags = [
        ["anonymous", None, "Open realm: anyone may join without the token (development and tests)."],
        ["no-kernels", None, "Run the router only: kernels come from hosts joining with --host-token."],
        ["keep-kernels", None, "On a clean stop leave kernels running, to be re-attached by the next start with this --kernel-dir."],
        ["classroom", None, "With --router: this kernel host joins a router running --users, and applies its rules (listing, --max-kernels-per-user, event eligibility); with --notebooks-only, each user's notebooks are in --home-root/<user>, by the caller the router discloses."],
        ["crossbar-authorizer", None, "With --router (Crossbar.io): run the classroom rules as Crossbar.io's dynamic authorizer webkernel.authorize (joins as webkernel_classroom with --token) instead of a kernel host; with --users also its dynamic authenticator webkernel.authenticate (users sign in with the users file). See docs/scaling.md"],
        ["notebooks-only", None, "With --router (Crossbar.io): serve only the notebook procedures webkernel.notebooks.* (joins as webkernel_notebooks with --token; --notebook-dir, or with --classroom each user's folder under --home-root) instead of a kernel host. See docs/scaling.md"],
        ["front-allow-plain-ws", None, "With --front-auth ticket and a ws:// --front URL to a host that is not loopback: let the page send users' passwords unencrypted. Default: the page refuses to sign in and says why (use wss://)."],
        ["unsafe-shared-account", None, "With --users: run every kernel as the service's own OS account (no root needed; students' code can reach each other's kernels and files). Logged as a warning at every start."],
    ]
    optParameters = [
        ["realm", None, "webkernel", "The WAMP realm to serve."],
        ["metrics", None, None, "Serve Prometheus metrics at /metrics on this endpoint (e.g. tcp:9100:interface=127.0.0.1); no token: keep it on loopback or a private network. See docs/scaling.md"],
        ["log-format", None, "text", "text, or json: one JSON object per event (twisted.logger's jsonFileLogObserver), for log collectors.", _log_format],
        ["token", None, None, "The token clients must present (WAMP ticket). Default: a random one, logged at start."],
        ["max-message-size", None, DEFAULT_MAX_MESSAGE_SIZE, "Largest incoming WAMP message, in bytes.", _positive_int],
        ["max-output", None, DEFAULT_MAX_OUTPUT, "Unsent output a session may have queued before it is closed, in bytes.", _positive_int],
        ["coalesce-above", None, DEFAULT_COALESCE_ABOVE, "Unsent bytes above which a slow peer's kernel output is coalesced.", _positive_int],
        ["gap-above", None, DEFAULT_GAP_ABOVE, "Unsent bytes above which a slow peer's kernel output is replaced by gap markers.", _positive_int],
        ["max-pending-calls", None, DEFAULT_MAX_PENDING_CALLS, "Calls a session may have waiting for an answer.", _positive_int],
        ["max-subscriptions", None, DEFAULT_MAX_SUBSCRIPTIONS, "Subscriptions a session may hold.", _positive_int],
        ["max-registrations", None, DEFAULT_MAX_REGISTRATIONS, "Registrations a session may hold.", _positive_int],
        ["max-wildcards", None, DEFAULT_MAX_WILDCARDS, "Wildcard subscriptions (and wildcard registrations) a session may hold.", _positive_int],
        ["router", None, None, "Join this external router (ws://HOST:PORT/ws) as a kernel host instead of running a router; --token is the router's --host-token (or, with --notebooks-only or --crossbar-authorizer, that service's ticket)."],
        ["router-ping", None, DEFAULT_ROUTER_PING, "With --router: seconds between this kernel host's (or notebook service's) WebSocket pings to the router.", _positive_float],
        ["router-ping-timeout", None, DEFAULT_ROUTER_PING_TIMEOUT, "With --router: seconds without the pong after which the host drops its connection to the router and makes a new one (a network partition leaves it half-open). See docs/scaling.md", _positive_float],
        ["host-token", None, None, "Let kernel hosts in other processes join (authid webkernel_host, this ticket)."],
        ["kernel-dir", None, None, "Directory for kernels' connection files (mode 0700, an existing one of ours is tightened to it, one of another user refused; files 0600). Default: <jupyter runtime dir>/webkernel"],
        ["max-kernels", None, 20, "Most kernels running at once.", _positive_int],
        ["kernel-factory", None, "spawn", "How kernels are started: spawn (a new process each) or fork (ipykernel kernels forked from a template that has imported ipykernel and the --preload modules; others spawned). See docs/kernels.md", _kernel_factory],
        ["kernel-ready-timeout", None, 60, "Seconds a kernel may take to become ready.", _positive_int],
        ["history-messages", None, 10000, "Output messages kept per kernel for outputs(since=...).", _positive_int],
        ["history-bytes", None, 32 * 1024 * 1024, "Bytes of output kept per kernel.", _positive_int],
        ["kernel-log-bytes", None, DEFAULT_LOG_BYTES, "Size at which a kernel's .log in the kernel directory is rotated (one older part, .log.1, is kept).", _positive_int],
        ["heartbeat-interval", None, 3.0, "Seconds between heartbeats to each kernel; three missed in a row and it is declared dead.", _positive_float],
        ["front", None, None, "Serve only the notebook page (and its assets); the page joins the Crossbar.io realm at this WebSocket URL (ws:// or wss://) itself (anonymously, or see --front-auth). No router, no kernels. See docs/scaling.md"],
        ["front-auth", None, "anonymous", "With --front: how the page joins the router: anonymous, or ticket (a classroom Crossbar.io whose dynamic authenticator is --crossbar-authorizer --users: the page's sign-in form sends the user's name and password as a WAMP ticket). See docs/scaling.md", _front_auth],
        ["users", None, None, "Multi-user mode: the users file (made with webkernel-users); the service token admits no one. See docs/classroom.md"],
        ["max-body", None, DEFAULT_MAX_BODY, "Largest HTTP request body (JSON-RPC), in bytes; larger ones are refused (413) before they are read.", _positive_int],
        ["header-timeout", None, DEFAULT_HEADER_TIMEOUT, "Seconds an HTTP request's line and headers may take to arrive (from the connection's first byte, or the previous response); then 408 and closed.", _positive_float],
        ["max-connections", None, None, "Connections open at once; past it new ones are closed at once. Default: the soft RLIMIT_NOFILE less 128 and 16 per --max-kernels kernel (at least 64).", _positive_int],
        ["max-connections-per-address", None, DEFAULT_PER_ADDRESS, "Connections one remote address (IPv6: one /64) may have open at once; past it its new ones are closed at once.", _positive_int],
        ["cull-idle", None, None, "With --users: shut down kernels no cell ran in and no one watched for this many seconds (docs/classroom.md). Default: never.", _positive_float],
        ["max-kernels-per-user", None, DEFAULT_MAX_KERNELS_PER_USER, "With --users: most kernels one student may have at once.", _positive_int],
        ["home-root", None, "/var/lib/webkernel/home", "With --users (or --notebooks-only --classroom): each user's kernels run in <home-root>/<user> (0700, the user's account); the root is made 0711."],
        ["user-prefix", None, kernel_accounts.DEFAULT_PREFIX, "With --users: OS accounts made for users are named <prefix><user>."],
        ["uid-range", None, "%d-%d" % kernel_accounts.DEFAULT_UID_RANGE, "With --users: uids (and gids) of the OS accounts made for users, LOW-HIGH.", kernel_accounts.parse_uid_range],
        ["kernel-memory", None, kernel_confinement.DEFAULT_MEMORY, "With --users: each kernel's address space (RLIMIT_AS), e.g. 2GiB; past it allocations raise MemoryError.", _size],
        ["kernel-processes", None, kernel_confinement.DEFAULT_PROCESSES, "With --users: processes and threads of one user's account, all their kernels together (RLIMIT_NPROC).", _positive_int],
        ["kernel-open-files", None, kernel_confinement.DEFAULT_OPEN_FILES, "With --users: open files of one kernel (RLIMIT_NOFILE).", _positive_int],
        ["kernel-file-size", None, kernel_confinement.DEFAULT_FILE_SIZE, "With --users: largest file a kernel may write (RLIMIT_FSIZE), e.g. 1GiB.", _size],
        ["kernel-nice", None, kernel_confinement.DEFAULT_NICE, "With --users: kernels' nice value, 0 to 19 (CPU priority below the service's).", _nice],
        ["notebook-dir", None, None, "Directory of the .ipynb files the notebook page opens and saves. Default: the current directory."],
        ["max-notebook-size", None, DEFAULT_MAX_NOTEBOOK_SIZE, "Largest .ipynb file webkernel.notebooks.get opens, in bytes.", _positive_int],
        ["notebook-threads", None, notebook_workers.DEFAULT_THREADS, "Threads reading, validating and writing notebooks at once.", _positive_int],
        ["notebook-queue", None, notebook_workers.DEFAULT_LIMIT, "Notebook requests admitted at once, running or waiting; more are refused with webkernel.error.notebooks_busy.", _positive_int],
    ]

    def __init__(self):
        super().__init__()
        self["listen"] = []
        self["allowed-origin"] = []
        self["allowed-host"] = []
        self["pool"] = []
        self["preload"] = []

    def opt_listen(self, endpoint):
        """Twisted endpoint string to listen on (repeatable). Default: tcp:8080:interface=127.0.0.1"""
        self["listen"].append(endpoint)

    def opt_allowed_origin(self, origin):
        """A browser Origin allowed to open the WebSocket besides the service's own (repeatable; * allows all)."""
        self["allowed-origin"].append(origin)

    def opt_allowed_host(self, name):
        """A host name HTTP requests may name in Host besides loopback and the listening addresses (repeatable; * allows all)."""
        self["allowed-host"].append(name)

    def opt_preload(self, module):
        """With --kernel-factory fork: a module the fork template imports, shared by every forked kernel (repeatable; e.g. numpy)."""
        self["preload"].append(module)

    def opt_pool(self, item):
        """KERNELSPEC=N: keep N kernels of that kernelspec started and ready ahead of demand (repeatable; not with --users). See docs/kernels.md"""
        self["pool"].append(item)

    def postOptions(self):
        if self["log-format"] == "json" and self.parent is not None:
            self.parent["logger"] = "broker.logformat.json_observer"  # read by twistd's AppLogger
        try:
            self["pool-sizes"] = parse_pool_sizes(self["pool"])
        except ValueError as e:
            raise usage.UsageError(str(e))
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        if self["token"] == "":
            raise usage.UsageError("--token must not be empty")
        if self["router"]:
            if not self["router"].startswith(("ws://", "wss://")):
                raise usage.UsageError("--router takes a WebSocket URL: ws://HOST:PORT/ws")
            if self["token"] is None:
                raise usage.UsageError("--router needs --token: the router's --host-token")
        if self["kernel-dir"]:
            try:
                check_kernel_dir_owner(self["kernel-dir"])
            except KernelDirNotOurs as e:
                raise usage.UsageError(f"--kernel-dir: {e}")
        if self["classroom"] and self["pool"]:
            raise usage.UsageError("--pool is not available with --classroom (multi-user "
                                   "kernels are not pooled: see docs/classroom.md)")
        if self["front"]:
            self._check_front()
        self._check_front_auth()
        if self["notebooks-only"]:
            self._check_notebooks_only()
        if self["crossbar-authorizer"] and not self["router"]:
            raise usage.UsageError("--crossbar-authorizer joins Crossbar.io: give --router too")
        if self["classroom"] and not self["router"]:
            raise usage.UsageError("--classroom is for a kernel host joining with --router; "
                                   "the service itself takes --users")
        if self["notebook-dir"] and not os.path.isdir(self["notebook-dir"]):
            raise usage.UsageError(f"--notebook-dir {self['notebook-dir']}: no such directory")
        if self["cull-idle"] and not self["users"]:
            raise usage.UsageError("--cull-idle is for multi-user mode: give --users too")
        if self["users"]:
            self._check_users()
        elif self["token"] is None:
            self["token"] = secrets.token_urlsafe(24)
            self["token-generated"] = True
        self._check_descriptors()

    def _check_descriptors(self):
        """A service that holds kernels: room for them in RLIMIT_NOFILE, or a clear refusal."""
        self["descriptor-limit"] = None
        if self["front"] or self["crossbar-authorizer"] or self["no-kernels"] \
                or self["notebooks-only"]:
            return
        try:
            self["descriptor-limit"] = raise_descriptor_limit(_kernels_held(self))
        except TooFewDescriptors as e:
            raise usage.UsageError(str(e))

    def _check_front(self):
        url = self["front"]
        if not url.startswith(("ws://", "wss://")) or any(c in url for c in " \t\n;,'\""):
            raise usage.UsageError("--front takes the router's WebSocket URL: ws://HOST:PORT/ws")
        for flag in ("router", "users", "crossbar-authorizer"):
            if self[flag]:
                raise usage.UsageError(f"--front serves the page only: not with --{flag}")

    def _check_notebooks_only(self):
        if not self["router"]:
            raise usage.UsageError("--notebooks-only joins Crossbar.io: give --router too")
        for flag in ("crossbar-authorizer", "users", "pool"):
            if self[flag]:
                raise usage.UsageError(f"--notebooks-only serves notebooks only: not with --{flag}")
        if self["classroom"] and self["notebook-dir"]:
            raise usage.UsageError("--notebook-dir is not used with --classroom: each user's "
                                   "notebooks are in --home-root/<user>")

    def _check_front_auth(self):
        if self["front-auth"] != "anonymous" and not self["front"]:
            raise usage.UsageError("--front-auth is for a front: give --front too")
        if self["front-allow-plain-ws"] and self["front-auth"] != "ticket":
            raise usage.UsageError("--front-allow-plain-ws is for --front-auth ticket")

    def _check_users(self):
        if self["pool"] and self["kernel-factory"] != "fork":
            raise usage.UsageError(
                "--pool with --users needs --kernel-factory fork: a spawned kernel runs as "
                "its owner's OS account from its first instruction, so it cannot start "
                "before its owner is known; a forked pooled kernel waits unassigned and "
                "takes its owner's account when handed out (see docs/classroom.md)")
        if self["crossbar-authorizer"]:  # the users file as Crossbar.io's authenticator
            self._check_users_file()
            return
        for flag in ("anonymous", "router", "token"):
            if self[flag]:
                raise usage.UsageError(
                    f"--users and --{flag} exclude each other: in multi-user mode everyone "
                    "signs in as a user (kernel hosts with --host-token)")
        self._check_users_file()
        self._check_isolation()

    def _check_users_file(self):
        if not os.path.isfile(self["users"]):
            raise usage.UsageError(
                f"--users {self['users']}: no such file; create it with "
                f"webkernel-users {self['users']} add NAME --role teacher")
        try:
            users_store.load(self["users"])
        except users_store.UsersFileError as e:
            raise usage.UsageError(f"--users: {e}")

    def _check_isolation(self):
        """Refuse multi-user mode where kernels could not run as their users' accounts."""
        if isinstance(self["uid-range"], str):  # the default is not coerced
            self["uid-range"] = kernel_accounts.parse_uid_range(self["uid-range"])
        if not kernel_accounts.PREFIX.fullmatch(self["user-prefix"]):
            raise usage.UsageError(f"--user-prefix {self['user-prefix']!r}: use 1 to 16 of "
                                   f"a-z, 0-9, _ and -, starting with a letter or _")
        if self["kernel-file-size"] <= self["kernel-log-bytes"]:
            raise usage.UsageError("--kernel-file-size must be larger than --kernel-log-bytes "
                                   "(a kernel's own log is a file it writes)")
        if self["unsafe-shared-account"]:
            return
        why = isolation_checks.cannot_switch_accounts()
        if why:
            raise usage.UsageError(why)
        try:
            isolation_checks.prepare_home_root(self["home-root"])
        except (isolation_checks.IsolationUnavailable, OSError) as e:
            raise usage.UsageError(str(e))
        if not self["no-kernels"]:
            why = isolation_checks.kernelspec_problem(KernelSpecManager(), DEFAULT_KERNEL_NAME)
            if why:
                raise usage.UsageError(why)


class UsersService(service.Service):
    """Multi-user mode: watches the users file; a removed or changed user's sessions end."""

    log = Logger()

    def __init__(self, directory):
        self.directory = directory

    def startService(self):
        super().startService()
        self.directory.start()

    def stopService(self):
        self.directory.stop()
        return super().stopService()


def _announce_users(options, directory):
    log = Logger(namespace="webkernel")
    path = options["users"]
    log.info("multi-user mode: {count} users from {path}; everyone signs in with their own "
             "name and password (see docs/classroom.md)", count=len(directory.users), path=path)
    if options["unsafe-shared-account"]:
        log.critical("--unsafe-shared-account: EVERY KERNEL RUNS AS THIS SERVICE'S OWN OS "
                     "ACCOUNT. A user's code can read other users' files and kernels' "
                     "connection files, take over their kernels, and read the users file. "
                     "Use this only where every user is trusted (docs/classroom.md)")
    else:
        low, high = options["uid-range"]
        log.info("kernels run as each user's own OS account ({prefix}<user>, uids {low}-{high}) "
                 "in {home_root}/<user>, at most {memory} bytes each",
                 prefix=options["user-prefix"], low=low, high=high,
                 home_root=options["home-root"], memory=options["kernel-memory"])
    if os.stat(path).st_mode & 0o077:
        log.warn("the users file {path} is readable by other accounts: chmod 600 it",
                 path=path)
    if os.stat(path).st_mode & 0o077:
        log.warn("the users file {path} is readable by other accounts: chmod 600 it",
                 path=path)


def _users_changed(router, names):
    Logger(namespace="webkernel").info(
        "users removed or changed: {names}; their sessions end", names=", ".join(names))
    router.end_sessions(names, errors.USER_CHANGED, errors.USER_CHANGED_MESSAGE)


class RouterService(service.Service):
    """The router's lifecycle: on stop, every session is told the service is going."""

    log = Logger()

    def __init__(self, router):
        self.router = router

    def stopService(self):
        self.router.shutdown()
        return super().stopService()


class ListeningService(service.Service):
    """Listens on one endpoint string and logs the URL to open."""

    log = Logger()

    def __init__(self, reactor, description, factory, url_query):
        self.reactor = reactor
        self.description = description
        self.factory = factory
        self.url_query = url_query
        self.port = None

    def startService(self):
        super().startService()
        endpoint = endpoints.serverFromString(self.reactor, self.description)
        d = endpoint.listen(self.factory)
        d.addCallbacks(self._listening, self._failed)

    def _listening(self, port):
        self.port = port
        address = port.getHost()
        host = getattr(address, "host", "127.0.0.1")
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if ":" in host:
            host = f"[{host}]"
        base = f"http://{host}:{address.port}" if hasattr(address, "port") else str(address)
        self.log.info(
            "webkernel is serving at {url}  (WAMP WebSocket: {ws}, RawSocket on the same port)",
            url=f"{base}/{self.url_query}", ws=base.replace("http", "ws", 1) + "/ws",
        )

    def _failed(self, failure):
        self.log.failure("cannot listen on {endpoint}", failure, endpoint=self.description)
        self.reactor.stop()

    def stopService(self):
        super().stopService()
        if self.port is not None:
            return defer.maybeDeferred(self.port.stopListening)


def _metrics(options, reactor, top):
    """With --metrics: the Metrics, served at /metrics on that endpoint by a service of *top*."""
    if not options["metrics"]:
        return None
    metrics = Metrics()
    site = metrics_site(metrics, reactor)
    strports.service(options["metrics"], site, reactor=reactor).setServiceParent(top)
    return metrics


def _kernel_options(options):
    return dict(max_kernels=options["max-kernels"], ready_timeout=options["kernel-ready-timeout"],
                history_messages=options["history-messages"],
                history_bytes=options["history-bytes"],
                heartbeat_interval=options["heartbeat-interval"],
                kernel_log_bytes=options["kernel-log-bytes"],
                keep_kernels=options["keep-kernels"], pool=options.get("pool-sizes"),
                kernel_factory=options["kernel-factory"], preload=tuple(options["preload"]))


def _isolation(options, reactor, directory):
    """Multi-user mode: the launcher's accounts and confinement (nothing without --users)."""
    if directory is None:
        return {}
    limits = kernel_confinement.Limits(
        memory=options["kernel-memory"], processes=options["kernel-processes"],
        open_files=options["kernel-open-files"], file_size=options["kernel-file-size"],
        nice=options["kernel-nice"])
    if options["unsafe-shared-account"]:
        return {"accounts": kernel_accounts.SharedAccount(options["home-root"]),
                "confinement": kernel_confinement.Confinement(limits, switch_accounts=False)}
    accounts = kernel_accounts.UserAccounts(
        options["home-root"], options["user-prefix"], options["uid-range"],
        mapped=lambda user: getattr(directory.users.get(user), "account", None),
        run_blocking=kernel_accounts.thread_runner(reactor))
    return {"accounts": accounts, "confinement": kernel_confinement.Confinement(limits)}


def _user_folders(options, isolation, log):
    """Multi-user mode: each user's notebooks in their own folder, ``--home-root/<user>`` (else None)."""
    if "accounts" not in isolation:
        return None
    if options["notebook-dir"]:
        log.warn("--notebook-dir is not used with --users: each user's notebooks are in "
                 "{home_root}/<user>", home_root=options["home-root"])
    accounts = isolation["accounts"]
    return UserFolders(options["home-root"], options["max-notebook-size"],
                       ensure_home=accounts.account_for)


def _remote_notebooks(options, reactor):
    """``--router … --notebooks-only``: the notebook procedures served on Crossbar.io's realm.

    With ``--classroom`` each caller has their own folder under ``--home-root``
    (the folder of the caller's disclosed authid and authrole); else everyone
    has ``--notebook-dir``.
    """
    folders = None
    if options["classroom"]:
        folders = UserFolders(options["home-root"], options["max-notebook-size"])
    return RemoteNotebookService(
        options["router"], options["realm"], options["token"], reactor,
        options["notebook-dir"] or os.getcwd(), max_size=options["max-notebook-size"],
        threads=options["notebook-threads"], limit=options["notebook-queue"], folders=folders,
        ping_interval=options["router-ping"], ping_timeout=options["router-ping-timeout"])


def _kernels_held(options):
    """The most kernels this service holds at once: ``--max-kernels`` and the pooled ones."""
    return options["max-kernels"] + sum((options.get("pool-sizes") or {}).values())


def _announce_descriptors(options, log):
    before, after = options.get("descriptor-limit") or (None, None)
    if before != after:
        log.info("raised the soft RLIMIT_NOFILE from {before} to {after} for {kernels} kernels",
                 before=before, after=after, kernels=_kernels_held(options))


def _limited(factory, options, log):
    total = options["max-connections"] or default_max_connections(
        0 if options["no-kernels"] else _kernels_held(options))
    log.info("at most {total} connections at once, {per_address} from one address",
             total=total, per_address=options["max-connections-per-address"])
    return LimitedFactory(factory, options["max-connections-per-address"], total)


def _http_limits(options):
    hosts = HostAllowList(options["allowed-host"], listening_interfaces(options["listen"]))
    return HttpLimits(max_body=options["max-body"], header_timeout=options["header-timeout"],
                      hosts=hosts)
def authorizer_named(name, config, package=None):
    """The authorizer built by the ``IAuthorizerFactory`` plugin called *name*."""
    if package is None:
        import plugins as package
    for factory in getPlugins(IAuthorizerFactory, package):
        if factory.name == name:
            return factory.build(config)
    raise LookupError(f"no authorizer plugin named {name!r}")


def _track_owners(router, realm, owners):
    """Attach the in-process session that learns kernel owners from lifecycle events.

    Users who lose a share of a kernel lose their subscriptions to its topics.
    """
    owners.on_revoked = lambda kernel_id, users: router.drop_subscriptions(
        users, lambda uri, match: confined_to_kernel(uri, match) == kernel_id)
    tracker = OwnerTracker(owners, realm)
    principal = Principal(roles.TRACKER_AUTHID, roles.TRACKER_ROLE, "local")
    tracker.open(RouterSession(router, tracker, principal=principal))
    return tracker


def _gateway(attach, authenticate, realm, reactor, options):
    """The Jupyter gateway API's resources: ``{b"api": …, b"kernelspecs": …}`` (docs/jupyter.md)."""
    sessions = GatewaySessions(attach, authenticate, realm, reactor,
                               timeout=options["kernel-ready-timeout"] + 5)
    channels = KernelChannels(sessions, reactor, options["allowed-origin"], options["max-output"])
    return {b"api": GatewayApi(sessions, channels, options["kernel-ready-timeout"]),
            b"kernelspecs": KernelspecFiles(sessions)}


def _with_class_page(children, realm, classroom):
    """Multi-user mode: the teacher's page at ``/class`` and the collected zips at ``/class-zip/`` (docs/classroom.md)."""
    if classroom is None:
        return children
    zips = classroom.download_resource()
    return {**children, b"class": ClassPage(realm), **({b"class-zip": zips} if zips else {})}


def _announce_front(options, log):
    log.info("front: the page joins realm {realm} at {url} ({auth})", realm=options["realm"],
             url=options["front"], auth=options["front-auth"])
    if options["front-auth"] == "ticket" and sends_in_clear(options["front"]):
        if options["front-allow-plain-ws"]:
            log.warn("--front-allow-plain-ws: the page sends users' passwords unencrypted "
                     "to {url}; use wss://", url=options["front"])
        else:
            log.warn("the page will not sign in: it would send users' passwords unencrypted "
                     "to {url} (use wss://, or --front-allow-plain-ws)", url=options["front"])


def makeService(options, reactor=None):
    """Wire the router, the kernel host and the listening ports into one MultiService."""
    if reactor is None:
        from twisted.internet import reactor
    txaio.use_twisted()
    kernel_dir = options["kernel-dir"] or default_kernel_dir()
    if options["front"]:
        top = service.MultiService()
        site = make_front_site(options["front"], reactor, options["realm"], _http_limits(options),
                               auth=options["front-auth"],
                               plain_ws=options["front-allow-plain-ws"])
        for description in options["listen"]:
            ListeningService(reactor, description, site, "").setServiceParent(top)
        _announce_front(options, Logger(namespace="webkernel"))
        return top
    if options["router"] and options["crossbar-authorizer"]:
        top = service.MultiService()
        authorizer = CrossbarAuthorizerService(options["router"], options["realm"],
                                               options["token"], reactor)
        if options["users"]:  # users removed or changed are signed out through Crossbar.io
            authorizer.directory = UserDirectory(options["users"], reactor,
                                                 on_change=authorizer.sign_out)
        authorizer.setServiceParent(top)
        return top
    if options["router"] and options["notebooks-only"]:
        top = service.MultiService()
        _remote_notebooks(options, reactor).setServiceParent(top)
        return top
    _announce_descriptors(options, Logger(namespace="webkernel"))
    if options["router"]:
        top = service.MultiService()
        policy = ClassroomPolicy(options["max-kernels-per-user"]) if options["classroom"] else None
        metrics = _metrics(options, reactor, top)
        RemoteKernelHostService(options["router"], options["realm"], options["token"], reactor,
                                kernel_dir, policy=policy, metrics=metrics,
                                ping_interval=options["router-ping"],
                                ping_timeout=options["router-ping-timeout"],
                                **_kernel_options(options)).setServiceParent(top)
        return top
    txaio.set_global_log_level("info")  # Autobahn's debug logs cost time on every frame
    log = Logger(namespace="webkernel")
    if options["anonymous"]:
        log.warn("--anonymous: anyone who can reach the port may join the realm without a token")
    config = {"token": options["token"], "anonymous": options["anonymous"],
              "host_token": options["host-token"]}
    directory = policy = None
    authorizer = DefaultAuthorizer()
    if options["users"]:
        directory = config["users"] = UserDirectory(
            options["users"], reactor, on_change=lambda names: _users_changed(router, names))
        _announce_users(options, directory)
        config["kernel_owners"] = KernelOwners()
        authorizer = authorizer_named("classroom", config)
        policy = ClassroomPolicy(options["max-kernels-per-user"])
    realm = options["realm"]
    router = Router.single_realm(realm, authorizer, reactor, config)
    attach = attacher(router, reactor)
    router.use_backlog_policy(KernelOutputPolicy())
    router.use_session_limits(SessionLimits(
        calls=options["max-pending-calls"], subscriptions=options["max-subscriptions"],
        registrations=options["max-registrations"], wildcards=options["max-wildcards"]))
    top = service.MultiService()
    RouterService(router).setServiceParent(top)
    metrics = _metrics(options, reactor, top)
    if metrics is not None:
        metrics.watch_router(router.stats)
    if directory is not None:
        _track_owners(router, options["realm"], config["kernel_owners"])
        UsersService(directory).setServiceParent(top)
    isolation = _isolation(options, reactor, directory)
    folders = _user_folders(options, isolation, log)
    classroom = None
    if directory is not None:
        classroom = ClassService(attach, realm, reactor,
                                 lambda: {name: user.role for name, user in directory.users.items()},
                                 cull_idle=options["cull-idle"], folders=folders)
        classroom.setServiceParent(top)
    if not options["no-kernels"]:
        KernelHostService(attach, realm, reactor, kernel_dir, policy=policy, metrics=metrics,
                          **_kernel_options(options), **isolation).setServiceParent(top)
    NotebookService(attach, realm, reactor, options["notebook-dir"] or os.getcwd(),
                    max_size=options["max-notebook-size"], threads=options["notebook-threads"],
                    limit=options["notebook-queue"],
                    folders=folders).setServiceParent(top)
    limits = OutputLimits(coalesce_above=options["coalesce-above"],
                          gap_above=options["gap-above"], max_output=options["max-output"])
    websocket = WampWebSocketFactory(
        router, options["allowed-origin"], options["max-message-size"], limits, reactor=reactor)
    rawsocket = WampRawSocketFactory(router, options["max-message-size"], limits, reactor=reactor)
    http_limits = _http_limits(options)
    jsonrpc = JsonRpcResource(attach, functools.partial(router.authenticate, realm), realm, reactor,
                              max_body=http_limits.max_body)
    gateway = _gateway(attach, functools.partial(router.authenticate, realm), realm, reactor,
                       options)
    site = make_site(websocket, jsonrpc, reactor, realm, options["anonymous"], http_limits,
                     lambda credentials, peer: jsonrpc.admits(credentials, peer)
                     or gateway[b"api"].sessions.admits(credentials, peer),
                     children=_with_class_page(gateway, realm, classroom),
                     users=bool(options["users"]))
    factory = _limited(UniversalFactory(site, rawsocket, clock=reactor), options, log)
    query = "" if options["anonymous"] or options["users"] else f"?token={options['token']}"
    for description in options["listen"]:
        ListeningService(reactor, description, factory, query).setServiceParent(top)
    return top
