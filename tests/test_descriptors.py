"""Slowloris and descriptor exhaustion against the real service: it keeps serving.

Issue 10: about 1,000 connections trickling header lines used up the file
descriptors and every new client failed. Scaled down here: a few dozen
connections against a service with a small per-address cap, or a small
RLIMIT_NOFILE. Loopback only; every socket has a timeout; waiting for the
service to notice closed connections is a bounded retry, not a sleep.
"""

import socket

import pytest
from twisted.trial.unittest import SynchronousTestCase

from tests.service import ServiceProcess

pytestmark = pytest.mark.integration   # real processes and sockets (tests/README.md)

WAIT = 10
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def open_slow(port, count):
    """*count* connections that each sent half a request."""
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            pass   # refused at once
        sockets.append(s)
    return sockets


def probe(port, source="127.0.0.1"):
    """The first bytes of the answer to a GET from *source*, or b"" if the connection was closed."""
    s = socket.socket()
    s.settimeout(WAIT)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(REQUEST)
        return s.recv(12)
    except OSError:
        return b""
    finally:
        s.close()


def served_again(port, attempts=200):
    """True once a new client is answered (the service has processed the closes)."""
    return any(probe(port).startswith(b"HTTP/1.1 ") for _ in range(attempts))


def close_all(sockets):
    for s in sockets:
        s.close()


class DescriptorTests(SynchronousTestCase):

    def start(self, *args, nofile=None, header_timeout="600"):
        service = ServiceProcess("--no-kernels", "--token", "t", "--header-timeout", header_timeout,
                                 *args, nofile=nofile)
        self.addCleanup(service.stop)
        return service

    def test_one_address_cannot_take_every_connection(self):
        """Slowloris from 127.0.0.1 is capped at --max-connections-per-address; 127.0.0.2 is still served."""
        service = self.start("--max-connections-per-address", "20")
        attackers = open_slow(service.port, 30)
        self.addCleanup(close_all, attackers)
        self.assertEqual(probe(service.port), b"")
        self.assertTrue(probe(service.port, "127.0.0.2").startswith(b"HTTP/1.1 "))
        close_all(attackers)
        self.assertTrue(served_again(service.port))
        self.assertIn("refusing new connections from 127.0.0.1", service.log())

    def test_trickled_headers_are_cut(self):
        """Slowloris against the real service: headers still incomplete at --header-timeout get 408 and a close."""
        service = self.start(header_timeout="1")
        with socket.create_connection(("127.0.0.1", service.port), timeout=WAIT) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            answer = b""
            while True:   # until the service closes (bounded by the socket timeout)
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 408 "), answer)

    def test_default_cap_keeps_descriptors_free(self):
        """With RLIMIT_NOFILE 256 the derived cap (128) refuses the flood before accept() runs out of descriptors."""
        service = self.start(nofile=256)
        self.assertIn("at most 128 connections at once", service.log())
        attackers = open_slow(service.port, 200)
        self.addCleanup(close_all, attackers)
        self.assertEqual(probe(service.port, "127.0.0.2"), b"")
        close_all(attackers)
        self.assertTrue(served_again(service.port))
        self.assertTrue(service.alive())
        self.assertNotIn("EMFILE", service.log())
        self.assertNotIn("Traceback", service.log())

    def test_running_out_of_descriptors_is_survived(self):
        """A cap above RLIMIT_NOFILE: accept() fails with EMFILE, the service closes those and serves again."""
        service = self.start("--max-connections", "1000", "--max-connections-per-address", "1000",
                             nofile=128)
        attackers = open_slow(service.port, 160)
        self.addCleanup(close_all, attackers)
        self.assertEqual(probe(service.port), b"")
        close_all(attackers)
        self.assertTrue(served_again(service.port))
        self.assertTrue(service.alive())
        self.assertIn("EMFILE", service.log())
        self.assertNotIn("Traceback", service.log())
