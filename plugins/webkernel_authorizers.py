"""Drop-in authorizers: ``classroom``, the rules of multi-user mode (``--users``)."""

from twisted.plugin import IPlugin
from zope.interface import provider

from broker.auth import IAuthorizerFactory
from broker.classroom.authorizer import ClassroomAuthorizer


@provider(IPlugin, IAuthorizerFactory)
class classroom:
    """Roles student, teacher, observer; kernels belong to who started them.

    ``config["kernel_owners"]`` is the :class:`~broker.classroom.owners.KernelOwners`
    the wiring keeps up to date.
    """

    name = "classroom"

    @staticmethod
    def build(config):
        return ClassroomAuthorizer(config["kernel_owners"])
