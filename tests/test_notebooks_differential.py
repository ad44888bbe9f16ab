"""Notebooks run through webkernel give the outputs nbclient gives.

Each notebook is made here with nbformat and run twice on real ipykernel
kernels: cell by cell through the real service (``webkernel.kernel.<id>.execute``
from an Autobahn client on Twisted), its outputs turned into nbformat outputs
by :class:`NotebookOutputs` the way nbclient builds them, and by nbclient's
``NotebookClient`` talking to its own kernel directly. The two are compared
cell by cell after normalizing what legitimately differs between two kernel
processes (ANSI colours and memory addresses in tracebacks, how a stream was
split into messages).

:class:`NotebookOutputsTests` checks the converter alone on made-up output
messages, with no kernel.
"""

import base64
import copy
import json
import re
import struct
import zlib

import pytest
import nbformat
from autobahn.wamp.types import CallOptions
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from broker.kernel.results import seq_range
from tests.service import ServicePerClass
from tests.twisted_wamp import joined, leave

REALM = "webkernel"
KERNEL_TIMEOUT = 60
CELL_TIMEOUT = 60


# -- webkernel output messages to nbformat outputs ---------------------------------


class NotebookOutputs:
    """The outputs of a notebook's cells, built from webkernel output messages as nbclient builds them.

    ``start_cell(i)`` before a cell runs, then ``add(i, output)`` for each
    output message of its ``execute`` in order. Consecutive stream outputs of
    the same name are merged (as notebook front ends show them);
    ``clear_output`` clears at once, or with ``wait`` just before the cell's
    next output; a ``display_data``/``update_display_data``/``execute_result``
    with a ``display_id`` replaces the data of every earlier output with that
    id, in any cell, and ``update_display_data`` adds no output of its own.
    """

    def __init__(self):
        self.cells = {}
        self._displays = {}  # display_id -> {cell index: [output index]}
        self._clear_before_next = False

    def start_cell(self, index):
        self.cells[index] = []
        self._clear_before_next = False

    def add(self, index, output):
        msg_type, content = output["msg_type"], output["content"]
        display_id = (content.get("transient") or {}).get("display_id")
        if display_id and msg_type in ("display_data", "update_display_data", "execute_result"):
            self._update_display(display_id, content)
        if msg_type == "clear_output":
            self._clear(index, content.get("wait"))
            return
        made = to_nbformat(msg_type, content)
        if made is not None:
            self._append(index, made, display_id)

    def _append(self, index, made, display_id):
        outputs = self.cells[index]
        if self._clear_before_next:
            self._clear(index, wait=False)
        if display_id:
            self._displays.setdefault(display_id, {}).setdefault(index, []).append(len(outputs))
        last = outputs[-1] if outputs else None
        if (made.output_type == "stream" and last is not None and last.output_type == "stream"
                and last.name == made.name):
            last.text += made.text
        else:
            outputs.append(made)

    def _clear(self, index, wait):
        if wait:
            self._clear_before_next = True
            return
        self._clear_before_next = False
        self.cells[index][:] = []
        for by_cell in self._displays.values():
            if index in by_cell:
                by_cell[index] = []

    def _update_display(self, display_id, content):
        for index, positions in self._displays.get(display_id, {}).items():
            for position in positions:
                self.cells[index][position]["data"] = content.get("data", {})
                self.cells[index][position]["metadata"] = content.get("metadata", {})


def to_nbformat(msg_type, content):
    """The nbformat output for one output message (None for those that make no output)."""
    if msg_type == "stream":
        return new_output("stream", name=content["name"], text=content["text"])
    if msg_type == "display_data":
        return new_output("display_data", data=content.get("data", {}),
                          metadata=content.get("metadata", {}))
    if msg_type == "execute_result":
        return new_output("execute_result", data=content.get("data", {}),
                          metadata=content.get("metadata", {}),
                          execution_count=content.get("execution_count"))
    if msg_type == "error":
        return new_output("error", ename=content["ename"], evalue=content["evalue"],
                          traceback=content["traceback"])
    return None  # status, execute_input, update_display_data, input_request, comm_*, …


def output(msg_type, content):
    """An output message as webkernel delivers it (the fields the converter reads)."""
    return {"msg_type": msg_type, "content": content, "metadata": {}}


def stream(text, name="stdout"):
    return output("stream", {"name": name, "text": text})


def html(text, display_id=None, msg_type="display_data"):
    content = {"data": {"text/html": text}, "metadata": {}}
    if display_id:
        content["transient"] = {"display_id": display_id}
    return output(msg_type, content)


class NotebookOutputsTests(SynchronousTestCase):
    """The converter alone, on made-up output messages."""

    def build(self, *cells):
        outputs = NotebookOutputs()
        for index, messages in enumerate(cells):
            outputs.start_cell(index)
            for msg in messages:
                outputs.add(index, msg)
        return [[dict(o) for o in outputs.cells[i]] for i in range(len(cells))]

    def test_consecutive_streams_of_one_name_merge(self):
        """stdout, stdout, stderr, stdout becomes three stream outputs."""
        cells = self.build([stream("a"), stream("b"), stream("e", "stderr"), stream("c")])
        self.assertEqual([(o["name"], o["text"]) for o in cells[0]],
                         [("stdout", "ab"), ("stderr", "e"), ("stdout", "c")])

    def test_messages_that_make_no_output_are_skipped(self):
        """status, execute_input and input_request add nothing."""
        cells = self.build([output("status", {"execution_state": "busy"}),
                            output("execute_input", {"code": "1", "execution_count": 1}),
                            output("input_request", {"prompt": "", "password": False})])
        self.assertEqual(cells, [[]])

    def test_execute_result_and_error(self):
        """execute_result keeps its execution_count; error keeps ename, evalue, traceback."""
        cells = self.build([output("execute_result", {"data": {"text/plain": "42"}, "metadata": {},
                                                      "execution_count": 3}),
                            output("error", {"ename": "E", "evalue": "v", "traceback": ["t"]})])
        self.assertEqual(cells[0][0]["execution_count"], 3)
        self.assertEqual((cells[0][1]["output_type"], cells[0][1]["traceback"]), ("error", ["t"]))

    def test_clear_output_now_and_with_wait(self):
        """clear_output clears at once; with wait, only when the next output comes."""
        cells = self.build([stream("gone"), output("clear_output", {"wait": False}), stream("kept")],
                           [stream("a"), output("clear_output", {"wait": True}), stream("b")],
                           [stream("x"), output("clear_output", {"wait": True})])
        self.assertEqual([[o["text"] for o in cell] for cell in cells], [["kept"], ["b"], ["x"]])

    def test_display_updates_reach_earlier_cells(self):
        """update_display_data replaces the data of every output with its id, in any cell."""
        cells = self.build([html("v1", "d"), stream("s")],
                           [html("v2", "d", "update_display_data")],
                           [html("v3", "d")])
        self.assertEqual(cells[0][0]["data"], {"text/html": "v3"})
        self.assertEqual(cells[1], [])
        self.assertEqual(cells[2][0]["data"], {"text/html": "v3"})

    def test_cleared_displays_are_not_updated(self):
        """After clear_output the cleared display's id no longer points into the cell."""
        cells = self.build([html("v1", "d"), output("clear_output", {"wait": False}), stream("s"),
                            html("v2", "d", "update_display_data")])
        self.assertEqual([o["output_type"] for o in cells[0]], ["stream"])


# -- the notebooks ------------------------------------------------------------------


def tiny_png():
    """A valid 1x1 red PNG, made without any imaging library."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


PNG_BASE64 = base64.b64encode(tiny_png()).decode("ascii")

STREAMS_AND_ERRORS = [
    "print('hello', flush=True)\n"
    "import sys\n"
    "print('oops', file=sys.stderr, flush=True)\n"
    "print('again', flush=True)",
    "for i in range(5):\n    print(i, flush=True)",
    new_markdown_cell("# A heading\nSome *markdown* between code cells."),
    "x = 20",
    "x * 2 + 2",
    "print('before the error', flush=True)\n1 / 0",
    "def fail():\n    raise ValueError(f'bad value {object()!r}')\nfail()",
    "",
    "{'a': [1, 2], 'b': None}",
]

RICH_DISPLAY = [
    "import base64\n"
    "from IPython.display import HTML, JSON, Image, Markdown, display",
    "display(HTML('<b>bold</b>'))\ndisplay(Markdown('# Title\\n\\n*emphasis*'))",
    "display(JSON({'a': [1, 2], 'b': {'c': None}}))",
    f"display(Image(data=base64.b64decode('{PNG_BASE64}')))",
    "HTML('<i>a result with html</i>')",
    "print('text between', flush=True)\ndisplay(HTML('<p>after text</p>'))\nprint('more', flush=True)",
]

UPDATES_AND_CLEARS = [
    "from IPython.display import HTML, clear_output, display, update_display\n"
    "handle = display(HTML('<p>v1</p>'), display_id='progress')\n"
    "handle.update(HTML('<p>v2</p>'))\n"
    "print('after the display', flush=True)",
    "handle.update(HTML('<p>v3 from another cell</p>'))",
    "display(HTML('<p>shown again</p>'), display_id='progress')",
    "print('gone', flush=True)\nclear_output()\nprint('kept', flush=True)",
    "print('a', flush=True)\nclear_output(wait=True)\nprint('b', flush=True)",
    "for i in range(4):\n    clear_output(wait=True)\n    print(f'step {i}', flush=True)",
    "print('stays', flush=True)\nclear_output(wait=True)",
    "display(HTML('x'), display_id='cleared')\nclear_output()\n"
    "update_display(HTML('y'), display_id='cleared')\nprint('only this', flush=True)",
]


def notebook(cells):
    """A Python notebook of *cells*: a string is a code cell's source, other cells are kept."""
    cells = [new_code_cell(c) if isinstance(c, str) else c for c in cells]
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


# -- normalizing ---------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_KERNEL_FILE = re.compile(r"\S*ipykernel_\d+/\d+\.py")


def _scrub(value):
    if isinstance(value, str):
        return _KERNEL_FILE.sub("<cell file>", _ADDRESS.sub("0x…", _ANSI.sub("", value)))
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


def normalized(outputs):
    """Plain, comparable outputs: consecutive streams merged, tracebacks and addresses scrubbed."""
    merged = []
    for out in json.loads(json.dumps(outputs)):
        last = merged[-1] if merged else None
        if (out["output_type"] == "stream" and last and last["output_type"] == "stream"
                and last["name"] == out["name"]):
            last["text"] += out["text"]
        else:
            merged.append(out)
    return _scrub(merged)


def run_with_nbclient(nb, kernel_dir):
    """Execute *nb* with nbclient on a kernel of its own; the executed notebook."""
    executed = copy.deepcopy(nb)
    client = NotebookClient(executed, timeout=CELL_TIMEOUT, startup_timeout=KERNEL_TIMEOUT,
                            kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": kernel_dir}})
    client.execute()
    return executed


# -- the differential test --------------------------------------------------------------


@pytest.mark.integration
class NotebookDifferentialTests(ServicePerClass, TestCase):
    """Cell by cell, webkernel's outputs equal nbclient's."""

    timeout = 240
    kernel_dir_prefix = "webkernel-nb-"
    service_options = ("--anonymous",)

    def call(self, client, kernel_id, name, *args, **kwargs):
        return client.call(f"webkernel.kernel.{kernel_id}.{name}", *args, **kwargs).addTimeout(
            KERNEL_TIMEOUT, reactor)

    @defer.inlineCallbacks
    def run_with_webkernel(self, nb):
        """Execute *nb* cell by cell through webkernel; the outputs and execution counts by cell."""
        client = yield joined(self.service, realm=REALM)
        model = yield client.call("webkernel.kernels.start").addTimeout(KERNEL_TIMEOUT, reactor)
        try:
            built, counts = NotebookOutputs(), {}
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                progress = []
                result = yield self.call(
                    client, model["id"], "execute", cell.source, stop_on_error=False,
                    allow_stdin=False, options=CallOptions(on_progress=lambda **o: progress.append(o)))
                final = result.kwresults
                # lines that reached the service together may come merged (coalesced: [first, last])
                covered = [seq for o in progress for seq in range(seq_range(o)[0], seq_range(o)[1] + 1)]
                self.assertEqual(covered, [o["seq"] for o in final["outputs"]])
                built.start_cell(index)
                for out in final["outputs"]:
                    built.add(index, out)
                counts[index] = final["execution_count"]
        finally:
            yield self.call(client, model["id"], "shutdown")
            yield leave(client)
        return built, counts

    @defer.inlineCallbacks
    def assert_same_outputs(self, sources):
        nb = notebook(sources)
        expected = run_with_nbclient(nb, self.kernel_dir)  # blocks the reactor; bounded by its timeouts
        built, counts = yield self.run_with_webkernel(nb)
        ours = copy.deepcopy(nb)
        for index, cell in enumerate(ours.cells):
            if index in built.cells:
                cell.outputs = built.cells[index]
                cell.execution_count = counts[index]
        nbformat.validate(ours)
        for index, (mine, theirs) in enumerate(zip(ours.cells, expected.cells)):
            if theirs.cell_type != "code":
                continue
            label = f"cell {index}: {theirs.source!r}"
            self.assertEqual(normalized(mine.outputs), normalized(theirs.outputs), label)
            self.assertEqual(mine.execution_count, theirs.execution_count, label)
        return ours

    @defer.inlineCallbacks
    def test_streams_results_and_errors(self):
        """stdout and stderr, execute results, errors with tracebacks, markdown and empty cells."""
        ours = yield self.assert_same_outputs(STREAMS_AND_ERRORS)
        kinds = [[o.output_type for o in c.outputs] for c in ours.cells if c.cell_type == "code"]
        self.assertEqual(kinds, [["stream", "stream", "stream"], ["stream"], [], ["execute_result"],
                                 ["stream", "error"], ["error"], [], ["execute_result"]])

    @defer.inlineCallbacks
    def test_rich_display(self):
        """HTML, Markdown, JSON and PNG displays, and an execute_result with HTML."""
        ours = yield self.assert_same_outputs(RICH_DISPLAY)
        mimetypes = [sorted(o.data) for c in ours.cells[1:5] for o in c.outputs]
        self.assertEqual(mimetypes, [["text/html", "text/plain"], ["text/markdown", "text/plain"],
                                     ["application/json", "text/plain"], ["image/png", "text/plain"],
                                     ["text/html", "text/plain"]])
        self.assertEqual(ours.cells[3].outputs[0].data["image/png"].strip(), PNG_BASE64)

    @defer.inlineCallbacks
    def test_display_updates_and_clear_output(self):
        """update_display_data across cells, display_id reuse and clear_output with and without wait."""
        ours = yield self.assert_same_outputs(UPDATES_AND_CLEARS)
        self.assertEqual(ours.cells[0].outputs[0].data["text/html"], "<p>shown again</p>")
        texts = [[o.get("text") for o in c.outputs] for c in ours.cells[3:]]
        self.assertEqual(texts, [["kept\n"], ["b\n"], ["step 3\n"], ["stays\n"], ["only this\n"]])
