"""What a runbook's `platform` block is: any block that hands out an execution backend.

Example:
    >>> from opsflow.blocks import OpsPlatform
    >>> issubclass(OpsPlatform, ExecutionBackendBlock)
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from opsflow.blocks.strict import StrictBlock
from opsflow.opsapi.backend import ExecutionBackend


class ExecutionBackendBlock(StrictBlock, ABC):
    """A block for an ops system that runs commands on hosts (abstract: no block type)."""

    @abstractmethod
    def get_client(self) -> ExecutionBackend:
        """A ready client of the system."""
