"""The gateway's translations between the kernel API and Jupyter's REST shapes, without a service."""

import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from broker.gateway import models
from broker.gateway.ids import dashed, wamp_id


class KernelIdTests(SynchronousTestCase):
    """One kernel, two spellings."""

    def test_both_ways(self):
        """A hex id is dashed 8-4-4-4-12 and back; upper case and undashed are accepted."""
        hex_id = "0123456789abcdef0123456789abcdef"
        self.assertEqual(dashed(hex_id), "01234567-89ab-cdef-0123-456789abcdef")
        self.assertEqual(wamp_id(dashed(hex_id)), hex_id)
        self.assertEqual(wamp_id(dashed(hex_id).upper()), hex_id)
        self.assertEqual(wamp_id(hex_id), hex_id)

    def test_not_an_id(self):
        """Anything else is no kernel id (so never part of a WAMP URI)."""
        for text in ("", "x" * 32, "0123-4567", "0123456789abcdef0123456789abcde.", "a.b"):
            self.assertIsNone(wamp_id(text))


class KernelModelTests(SynchronousTestCase):
    """Jupyter Server parses last_activity with %Y-%m-%dT%H:%M:%S.%fZ and needs connections."""

    def test_model(self):
        """The model has the dashed id, microseconds in last_activity and an integer connections."""
        model = models.kernel_model({"id": "0" * 32, "name": "python3", "execution_state": "idle",
                                     "last_activity": "2026-11-25T15:38:09.983Z"}, 2)
        self.assertEqual(model, {"id": "00000000-0000-0000-0000-000000000000", "name": "python3",
                                 "last_activity": "2026-11-25T15:38:09.983000Z",
                                 "execution_state": "idle", "connections": 2})


class KernelspecTests(SynchronousTestCase):
    """Every kernelspec entry has resources naming only its logo files."""

    def test_resources(self):
        """Logos are listed under /kernelspecs/<name>/; other files and unknown dirs give none."""
        directory = tempfile.mkdtemp()
        self.addCleanup(lambda: [os.remove(os.path.join(directory, f)) for f in os.listdir(directory)])
        for name in ("logo-64x64.png", "logo-svg.svg", "kernel.json", "kernel.js"):
            open(os.path.join(directory, name), "w").close()
        listing = {"default": "a", "kernelspecs": {"a": {"name": "a", "spec": {}},
                                                   "b": {"name": "b", "spec": {}}}}
        found = models.kernelspecs(listing, {"a": directory})
        self.assertEqual(found["kernelspecs"]["a"]["resources"],
                         {"logo-64x64": "/kernelspecs/a/logo-64x64.png",
                          "logo-svg": "/kernelspecs/a/logo-svg.svg"})
        self.assertEqual(found["kernelspecs"]["b"]["resources"], {})
        self.assertEqual(found["kernelspecs"]["a"]["spec"], {"argv": [], "env": {}})  # JupyterLab needs argv


class StartArgumentTests(SynchronousTestCase):
    """The body of POST /api/kernels, read as Kernel Gateway reads it."""

    def test_name_and_launch_timeout(self):
        """name picks the kernelspec; KERNEL_LAUNCH_TIMEOUT bounds the start; KERNEL_USERNAME changes nothing."""
        self.assertEqual(models.start_arguments({}, 60), (None, 60))
        self.assertEqual(models.start_arguments(
            {"name": "python3", "env": {"KERNEL_LAUNCH_TIMEOUT": "40", "KERNEL_USERNAME": "eve"}},
            60), ("python3", 40.0))

    def test_bad_bodies(self):
        """Wrong types, a bad or huge KERNEL_LAUNCH_TIMEOUT and oversized env are refused."""
        for body in ([], {"name": 3}, {"env": []}, {"env": {"A": 1}},
                     {"env": {"KERNEL_LAUNCH_TIMEOUT": "soon"}},
                     {"env": {"KERNEL_LAUNCH_TIMEOUT": "100000"}},
                     {"env": {str(i): "" for i in range(models.MAX_ENV_ENTRIES + 1)}}):
            self.assertRaises(models.BadRequest, models.start_arguments, body, 60)
