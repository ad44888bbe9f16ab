"""webkernel: run code in Jupyter kernels from the web, through a WAMP router.

webkernel is built on Twisted; Autobahn's framework shim (txaio) is told so
here, once, so every module (serializers included) works on import.
"""

import txaio

txaio.use_twisted()

__version__ = "0.1.0"
