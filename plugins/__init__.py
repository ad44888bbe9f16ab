"""Drop-in implementations of the broker's interfaces, found with ``twisted.plugin.getPlugins``.

Add a module here whose module-level objects provide ``twisted.plugin.IPlugin``
and one of the broker's interfaces (e.g. :class:`broker.auth.IAuthenticatorFactory`)
and the service picks it up.
"""
