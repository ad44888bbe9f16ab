"""The live classroom (``--users`` mode): help requests, the class roster, broadcast cells, idle culling.

``uris`` names the procedures and the topic; ``roster`` keeps, per user, what
the teacher's page shows (signed in, kernels with state, last cell, last
error, help request), learnt from events the router and the kernel host
publish anyway; ``session`` is the in-process WAMP session serving
``webkernel.class.*``; ``culling`` shuts down idle kernels; ``service`` is
the twistd service the wiring attaches. See docs/classroom.md.
"""
