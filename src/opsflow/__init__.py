"""opsflow: ops runbooks as Prefect flows over REST APIs.

The installed package is this root and five subpackages, each mapped from a top-level folder
of the repository (see ``[tool.setuptools.package-dir]`` in pyproject.toml):

    opsflow.opsapi   plain clients (no Prefect)
    opsflow.blocks   Prefect blocks (also the ``prefect.collections`` entry point)
    opsflow.tasks    one Prefect task per API operation
    opsflow.flows    the runbooks and the ``opsflow`` command line
    opsflow.lab      the local lab (a separate program; product code never imports it)

Example:
    >>> import opsflow
    >>> opsflow.__version__.count(".") >= 1
    True
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("opsflow")
except PackageNotFoundError:  # pragma: no cover - running from a checkout that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
