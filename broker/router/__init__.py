"""The embedded WAMP router: realms, sessions, a broker (pub/sub) and a dealer (RPC).

The core is message in, messages out: :class:`~broker.router.realm.Realm`
takes Autobahn message objects from a :class:`~broker.router.session.RouterSession`
and sends messages through sessions; nothing here touches a socket.
"""
