"""A real Crossbar.io router for the scale-out tests, with webkernel's roles.

Crossbar.io lives in a virtualenv of its own, ``bench/.venv-crossbar``, made
by ``bench/side_venv.sh`` (``./run-tests`` makes it; so does
``bench/run_router_bench.sh``). Its node configuration is written by the
router benchmark's :func:`routers.crossbar_config`, given here the realm
``webkernel`` and three roles: ``webkernel_host`` (ticket principal, may do
everything, callers disclosed to it) for kernel hosts, ``webkernel_notebooks``
(ticket principal, registers ``webkernel.notebooks.*`` only) for notebook
services, and ``anonymous`` for clients (call and subscribe under
``webkernel.``, disclosed to the callee). The classroom node instead
admits users on ``/ws`` through the users file (``webkernel.authenticate``,
Crossbar.io's dynamic authenticator) and services on ``/ws-services``.
"""

import json
import os
import sys
import tempfile

from tests.service import ROOT, ServiceProcess

sys.path.insert(0, str(ROOT / "bench"))
import routers  # noqa: E402  (bench/routers.py: the one place a Crossbar.io config is made)

CROSSBAR_BIN = os.environ.get("CROSSBAR_BIN", str(ROOT / "bench" / ".venv-crossbar" / "bin" / "crossbar"))
REALM = "webkernel"
HOST_TOKEN = "crossbar-host-secret-for-tests"
NOTEBOOKS_TOKEN = "crossbar-notebooks-secret-for-tests"
_READY = r"Ok, local node configuration ran successfully"


def missing():
    """Why Crossbar.io cannot run here (None if it can): for a skip's reason."""
    if not os.access(CROSSBAR_BIN, os.X_OK):
        return (f"no Crossbar.io at {CROSSBAR_BIN}: ./run-tests installs it "
                "(bench/side_venv.sh), or set CROSSBAR_BIN")
    return None


def _permission(uri, disclose=True, match="prefix", **allow):
    return {"uri": uri, "match": match, "allow": allow,
            "disclose": {"caller": disclose, "publisher": disclose}, "cache": True}


def webkernel_roles():
    """Kernel hosts may do everything; clients call and subscribe under ``webkernel.``
    but not the hosts' own ``webkernel.host.*``."""
    host = {"name": "webkernel_host", "permissions": [
        _permission("", call=True, register=True, publish=True, subscribe=True)]}
    client = {"name": "anonymous", "permissions": [
        _permission("webkernel.", call=True, register=False, publish=False, subscribe=True),
        _permission("webkernel.host.", call=False, register=False, publish=False,
                    subscribe=False)]}
    return [host, notebooks_role(), client]


def notebooks_role():
    """The notebook service (``--notebooks-only``) may register the notebook procedures, nothing else."""
    return {"name": "webkernel_notebooks", "permissions": [
        _permission("webkernel.notebooks.", call=False, register=True, publish=False,
                    subscribe=False)]}


def service_principals():
    """The static ticket principals of webkernel's own services (kernel hosts, notebook services)."""
    return {"webkernel_host": {"ticket": HOST_TOKEN, "role": "webkernel_host"},
            "webkernel_notebooks": {"ticket": NOTEBOOKS_TOKEN, "role": "webkernel_notebooks"}}


def webkernel_auth():
    return {"ticket": {"type": "static", "principals": service_principals()},
            "anonymous": {"type": "static", "role": "anonymous"}}


class CrossbarNode:
    """One Crossbar.io node in *work_dir*: started, stopped and started again on one port.

    It listens on 127.0.0.1 and on each of *interfaces* (one transport each,
    the same port). *auto_ping* is ``(interval, timeout)`` in milliseconds:
    Crossbar.io then pings each WebSocket peer and drops one whose pong does
    not come in time (its ``auto_ping_interval`` and ``auto_ping_timeout``
    options); by default it does not ping.
    """

    def __init__(self, work_dir, classroom=False, interfaces=(), auto_ping=None):
        self.cbdir = os.path.join(work_dir, "crossbar-node")
        os.makedirs(self.cbdir, exist_ok=True)
        self.port = routers.free_port()
        roles, auth = ((classroom_roles(), classroom_auth()) if classroom
                       else (webkernel_roles(), webkernel_auth()))
        config = routers.crossbar_config(self.port, realm=REALM, roles=roles, auth=auth)
        transports = config["workers"][0]["transports"]
        paths = transports[0]["paths"]
        if classroom:  # services join on a path of their own; users on /ws, by the users file
            paths[SERVICES_PATH] = dict(paths["ws"], auth=services_auth())
        if auto_ping is not None:
            interval, timeout = auto_ping
            for path in ("ws", SERVICES_PATH):
                if path in paths:
                    paths[path]["options"] = {"auto_ping_interval": interval,
                                              "auto_ping_timeout": timeout}
        for interface in interfaces:
            transports.append(dict(transports[0], endpoint=dict(
                transports[0]["endpoint"], interface=interface)))
        self.classroom = classroom
        with open(os.path.join(self.cbdir, "config.json"), "w") as out:
            json.dump(config, out, indent=2)
        self.process = None

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def services_url(self):
        """Where kernel hosts and the authorizer join (/ws itself without the classroom)."""
        return (f"ws://127.0.0.1:{self.port}/{SERVICES_PATH}" if self.classroom
                else self.ws_url)

    def start(self):
        self.process = ServiceProcess(
            command=[CROSSBAR_BIN, "start", "--cbdir", self.cbdir, "--loglevel", "info",
                     "--color", "false"], ready=_READY, timeout=60, cwd=self.cbdir)
        return self

    def stop(self):
        if self.process is not None:
            self.process.stop()

    def log(self):
        return self.process.log() if self.process else ""


def kernelspec_dir(name):
    """A Jupyter data dir (for JUPYTER_PATH) with one extra kernelspec *name* (a copy of python3's)."""
    from jupyter_client.kernelspec import KernelSpecManager
    source = KernelSpecManager().get_kernel_spec("python3")
    data = tempfile.mkdtemp(prefix="webkernel-specs-")
    target = os.path.join(data, "kernels", name)
    os.makedirs(target)
    with open(os.path.join(target, "kernel.json"), "w") as out:
        json.dump({**source.to_dict(), "display_name": name,
                   "argv": [sys.executable, *source.argv[1:]]}, out)
    return data


def payload(result):
    """A call's result as plain data (a CallResult's args and kwargs)."""
    return (list(result.results), result.kwresults) if hasattr(result, "results") else result


def kernel_owner(kernel_id, *hosts):
    """The one of *hosts* (each with its ``kernel_dir``) whose kernel directory holds the kernel."""
    [host] = [h for h in hosts if os.path.exists(
        os.path.join(h.kernel_dir, f"kernel-{kernel_id}.json"))]
    return host


def kernel_host(node, kernel_dir, *args, env=None, url=None, wrapper=()):
    """``twistd webkernel --router`` joined to *node* (at *url*, default its services URL)
    as a kernel host, once it has joined; *wrapper* as for :class:`ServiceProcess`."""
    return ServiceProcess("--router", url or node.services_url, "--token", HOST_TOKEN,
                          "--realm", REALM, "--kernel-dir", kernel_dir, *args,
                          ready="kernel host joined realm", timeout=60, env=env, wrapper=wrapper)


CLASSROOM_TOKEN = "crossbar-classroom-secret-for-tests"
SERVICES_PATH = "ws-services"
STUDENTS = {"alice": "alice-pass", "bob": "bob-pass"}
TEACHERS = {"tess": "tess-pass"}
OBSERVERS = {"olga": "olga-pass"}


def write_users_file(path):
    """The users file of the classroom tests: STUDENTS, TEACHERS and OBSERVERS (few PBKDF2 rounds)."""
    from broker.users import store
    users = {name: store.User.create(name, "student", password, iterations=10)
             for name, password in STUDENTS.items()}
    users.update({name: store.User.create(name, "teacher", password, iterations=10)
                  for name, password in TEACHERS.items()})
    users.update({name: store.User.create(name, "observer", password, iterations=10)
                  for name, password in OBSERVERS.items()})
    store.save(path, users)
    return path


def classroom_roles():
    """Hosts as above; the authorizer (webkernel_classroom) registers webkernel.authorize
    and webkernel.authenticate and calls wamp.session.kill_by_authid; users' roles are
    judged by the authorizer."""
    host, _, _ = webkernel_roles()
    tracker = {"name": "webkernel_classroom", "permissions": [
        _permission("webkernel.authorize", call=False, register=True, publish=False,
                    subscribe=False),
        _permission("webkernel.authenticate", call=False, register=True, publish=False,
                    subscribe=False),
        _permission("webkernel.kernels.", call=True, register=False, publish=False,
                    subscribe=True),
        # sign out users removed or changed in the users file
        _permission("wamp.session.kill_by_authid", match="exact", call=True, register=False,
                    publish=False, subscribe=False)]}
    users = [{"name": role, "authorizer": "webkernel.authorize"}
             for role in ("student", "teacher", "observer")]
    return [host, notebooks_role(), tracker, *users]


def classroom_auth():
    """/ws: users only, by Crossbar.io's dynamic ticket authenticator (the users file)."""
    return {"ticket": {"type": "dynamic", "authenticator": "webkernel.authenticate",
                       "authenticator-realm": REALM}}


def services_auth():
    """/ws-services: the kernel hosts and the authorizer, static ticket principals."""
    return {"ticket": {"type": "static", "principals": {
        **service_principals(),
        "webkernel_classroom": {"ticket": CLASSROOM_TOKEN, "role": "webkernel_classroom"}}}}


def notebook_service(node, *args, url=None):
    """``twistd webkernel --router … --notebooks-only`` joined to *node*, once it has registered."""
    return ServiceProcess("--router", url or node.services_url, "--token", NOTEBOOKS_TOKEN,
                          "--realm", REALM, "--notebooks-only", *args,
                          ready="notebook procedures registered on realm", timeout=60)


def classroom_authorizer(node, users_file):
    """``twistd webkernel --router … --crossbar-authorizer --users FILE``, once registered."""
    return ServiceProcess("--router", node.services_url, "--token", CLASSROOM_TOKEN,
                          "--realm", REALM, "--crossbar-authorizer", "--users", users_file,
                          ready="users authenticator .* registered", timeout=60)
