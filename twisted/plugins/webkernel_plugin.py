"""Makes ``twistd webkernel`` available (the only thing this module does)."""

from twisted.application.service import ServiceMaker

webkernel = ServiceMaker(
    "webkernel",
    "broker.tap",
    "Run Jupyter kernels from the web behind an embedded WAMP router.",
    "webkernel",
)
