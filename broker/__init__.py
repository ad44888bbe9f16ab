"""webkernel: run code in Jupyter kernels from the web, through a WAMP router."""

__version__ = "0.1.0"
