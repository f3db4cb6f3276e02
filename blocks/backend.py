"""What a runbook's `platform` block is: any block that hands out an execution backend, the
two opsflow ships and any a user's package adds.

A backend block of your own subclasses `ExecutionBackendBlock`; the package that holds it names
its module under the `prefect.collections` entry point (as opsflow does), so every process
that loads a block by its type (the command line, a worker, the alert receiver) finds it.

Example:
    >>> from opsflow.blocks import OpsPlatform
    >>> issubclass(OpsPlatform, ExecutionBackendBlock)
    True
    >>> [t.get_block_type_slug() for t in backend_block_types()][:2]
    ['ops-platform', 'salt-api']
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from prefect.blocks.core import Block
from prefect.plugins import load_prefect_collections
from prefect.utilities.dispatch import get_registry_for_type

from opsflow.blocks.strict import StrictBlock
from opsflow.blocks.transport import client_transport
from opsflow.blocks.vault import credential
from opsflow.opsapi.backend import ExecutionBackend
from opsflow.opsapi.redaction import register_secret
from opsflow.opsapi.transport import Transport


class ExecutionBackendBlock(StrictBlock, ABC):
    """A block for an ops system that runs commands on hosts (abstract: no block type).

    A backend of your own declares its fields (a secret beside its `<field>_from_vault`, and a
    `transport`), and its `get_client` hands them to its client (an `opsflow.opsapi.JSONClient`)
    through `secret` and `checked_transport`: Vault, redaction, TLS, retries and the audit log
    come with them (docs/backends.md, "Add your own backend"; examples/inhouse_backend).

    Example:
        >>> from opsflow.blocks import OpsPlatform
        >>> platform = OpsPlatform(url="https://ops.example", token="token-123456")
        >>> platform.resolve_secret("token"), platform.checked_transport().timeout
        ('token-123456', 30.0)
    """

    @abstractmethod
    def get_client(self) -> ExecutionBackend:
        """A ready client of the system."""

    def resolve_secret(self, field: str) -> str:
        """The credential `field`: stored on the block, else read from Vault through its
        `<field>_from_vault` (once per flow run); kept out of every log line and artifact.

        Raises:
            ConfigurationError: neither is set, saying which fields to set.
        """
        value = credential(self, field)
        register_secret(value)
        return str(value)

    def checked_transport(self) -> Transport:
        """The block's `transport`, checked (a missing CA bundle is refused), a disabled TLS
        verification logged loudly."""
        return client_transport(self.get_block_type_name(), getattr(self, "transport", Transport()))


def backend_block_types(load: bool = True) -> tuple[type[ExecutionBackendBlock], ...]:
    """Every execution backend block type of this process: opsflow's first (the seed-style
    platform, then Salt: a bare block name is looked up in this order), then the others by
    slug. With `load`, installed packages' `prefect.collections` entry points are imported
    first, which is how a user's backend becomes known."""
    if load:
        load_prefect_collections()
    registered = (get_registry_for_type(Block) or {}).values()
    found = {
        t.get_block_type_slug(): t
        for t in registered
        if issubclass(t, ExecutionBackendBlock) and ABC not in t.__bases__
    }
    return tuple(
        sorted(
            found.values(),
            key=lambda t: (not t.__module__.startswith("opsflow."), t.get_block_type_slug()),
        )
    )
