"""The kernel host: Jupyter kernels started from kernelspecs, reached over ZeroMQ.

The lower layer:

* :mod:`broker.kernel.launcher` starts a kernel process and writes its
  connection file (:class:`~broker.kernel.launcher.KernelLauncher`).
* :mod:`broker.kernel.zmq_channels` is the one module that imports
  ``txzmq``/``zmq``: the shell, control, stdin, iopub and heartbeat sockets of
  one kernel (:class:`~broker.kernel.zmq_channels.KernelChannels`).
* :mod:`broker.kernel.heartbeat` and :mod:`broker.kernel.nudge` are the
  timing logic (heartbeat misses, the iopub slow-joiner handshake) with the
  clock passed in.
* :mod:`broker.kernel.interfaces` holds the seams, :mod:`broker.kernel.testing`
  their test doubles.
"""
