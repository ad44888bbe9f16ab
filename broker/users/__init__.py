"""Users of a multi-user (classroom) service: the users file and its command.

``store`` reads and writes the users file (``twistd webkernel --users FILE``),
``command`` is the ``webkernel-users`` console script that manages it, and
``directory`` is what the running service asks: who is this user, is this
their password, and how long must this address wait after failed attempts.
"""
