"""Every runbook opsflow ships, loaded: its flow and parameter model, with the catalog's data.

Example:
    >>> load_runbook("load-report").param_name
    'params'
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from prefect import Flow
from pydantic import BaseModel

from opsflow.flows.runbooks.catalog import CATALOG, Entry


@dataclass(frozen=True)
class Runbook:
    """A runbook as the command line and the deployments see it."""

    entry: Entry
    flow: Flow
    params: type[BaseModel]

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def param_name(self) -> str:
        return self.entry.param_name

    @property
    def cron(self) -> str | None:
        return self.entry.cron

    @property
    def why_this_schedule(self) -> str:
        return self.entry.why_this_schedule

    @property
    def summary(self) -> str:
        return self.entry.summary


def load_runbook(name: str) -> Runbook:
    """Import one runbook's module (and only that one)."""
    entry = CATALOG[name]
    module = importlib.import_module(entry.module)
    return Runbook(entry, getattr(module, entry.flow), getattr(module, entry.params))
