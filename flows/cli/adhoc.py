"""`opsflow run NAME ...`: one runbook now, checked up front, quiet, with a one-line verdict.

The order matters for a tired operator: everything that can be checked without a Prefect
server (flag values, files, regular expressions, whether an approval can be answered) is
checked first; then the blocks are loaded, and a host named with --host is looked up in the
inventory (a typo is refused with the closest names); only then does anything run. Input
refused before any work exits 2, a run that failed exits 1, a selector that picked no host 3,
success 0. An expected error is one line naming the flag and the fix; `opsflow --verbose`
adds the traceback.
"""

from __future__ import annotations

import getpass
import logging
import os
import select
import socket
import sys
from contextlib import nullcontext
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table
from rich.traceback import Traceback
from typer._click.core import ParameterSource
from typer._click.globals import get_current_context

from opsflow.flows.cli.common import check_prefect_api, console
from opsflow.flows.cli.options import (
    flag,
    flag_of,
    say_in_flags,
    values_from_flags,
)
from opsflow.flows.runbooks.approval import NOBODY, Approval, approvals_from
from opsflow.flows.runbooks.registry import Runbook, load_runbook
from opsflow.flows.services.local_server import MARK, LocalServer, ServerError, ready
from opsflow.opsapi.errors import OpsAPIError, UnknownHosts
from opsflow.opsapi.models import HostSelector
from opsflow.tasks.host_selection import check_named_hosts
from opsflow.tasks.parameters import block_fields
from opsflow.tasks.wording import minutes_ago

TABLE_ROWS = 50  # rows shown on a terminal; the artifact and CSV have every one
CELL_WIDTH = 60


# `opsflow run`'s exit codes (README, "At the controls").
SUCCESS, FAILED, REFUSED, NOTHING_MATCHED = 0, 1, 2, 3


class Refused(Exception):
    """Input refused before any work: exit 2."""


def run_typed(name: str, given: dict[str, Any]) -> NoReturn:
    """`opsflow run NAME` with the flags typed: only those (a flag's default is the model's, and
    a field left out keeps what a preset, remediate's `--preset`, gives it)."""
    context = get_current_context()
    typed = {
        flag_name: value
        for flag_name, value in given.items()
        if context.get_parameter_source(flag_name) is not ParameterSource.DEFAULT
    }
    run_adhoc(load_runbook(name), typed)


def run_adhoc(runbook: Runbook, given: dict[str, Any]) -> NoReturn:
    """Check, load, run, report; exit with 0, 1 or 2."""
    verbose = bool(os.environ.get("OPSFLOW_VERBOSE"))
    try:
        values = values_from_flags(runbook.params, given)
        check_without_server(runbook.params, values)
        approver = approval_mode(values)
        operator_console(verbose)
        if os.environ.get(MARK):
            ready(LocalServer())
        else:
            check_prefect_api(f"opsflow run {runbook.name}")
        params = with_blocks(runbook.params, values)
        named_hosts_checked(params)
    except Refused as refused:
        console.print(f"[red]{runbook.name}: {refused}[/]", soft_wrap=True)
        raise SystemExit(REFUSED) from None
    except ServerError as exc:
        console.print(f"[red]{runbook.name}: {exc}[/]", soft_wrap=True)
        raise SystemExit(FAILED) from None
    except (OSError, RuntimeError) as exc:  # the Prefect API itself: unreachable, refusing
        if verbose:
            raise
        api = os.environ.get("PREFECT_API_URL")
        console.print(
            f"[red]{runbook.name}: could not load the blocks from the Prefect API ({api}): {exc}[/]"
        )
        raise SystemExit(FAILED) from None
    with approvals_from(approver) if approver else nullcontext():
        state = runbook.flow(**{runbook.param_name: params}, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, UnknownHosts):  # the inventory changed since the check above
        message = say_in_flags(str(result), runbook.params)
        console.print(f"[red]{runbook.name}: {message}[/]", soft_wrap=True)
        raise SystemExit(REFUSED)
    if isinstance(result, BaseException):
        if verbose:
            console.print(Traceback.from_exception(type(result), result, result.__traceback__))
        message = say_in_flags(str(result), runbook.params)
        console.print(f"[red bold]{runbook.name} failed[/]: {message}", soft_wrap=True)
        raise SystemExit(FAILED)
    show_result(runbook.name, result)
    if getattr(result, "outcome", None) == "nothing_matched":
        raise SystemExit(NOTHING_MATCHED)
    raise SystemExit(FAILED if state.is_failed() else SUCCESS)


def named_hosts_checked(params: BaseModel) -> None:
    """Refuse a --host the inventory lacks, with the closest names, before the run starts.

    The runbook checks it again (a deployment's run has no command line); an inventory that
    cannot be read is left to the run, which reports it as its failure.

    Raises:
        Refused: one line naming --host, each unknown name and the closest known ones.
    """
    selector, platform = getattr(params, "selector", None), getattr(params, "platform", None)
    if not isinstance(selector, HostSelector) or not selector.hostnames or platform is None:
        return
    try:
        with platform.get_client() as client:
            hostnames = [host.hostname for host in client.list_hosts()]
    except OpsAPIError:
        return
    try:
        check_named_hosts(selector, hostnames)
    except UnknownHosts as exc:
        raise Refused(say_in_flags(str(exc), type(params))) from None


def check_without_server(model: type[BaseModel], values: dict[str, Any]) -> None:
    """Every check that needs no Prefect server and no block: the model without its blocks."""
    blocks = block_fields(model)
    try:
        made = model.model_validate({k: v for k, v in values.items() if k not in blocks})
        if callable(checked := getattr(made, "checked", None)):
            checked()  # rules across fields a deployment's run may complete (remediate)
    except ValidationError as exc:
        raise Refused(_first_error(exc, model)) from None
    except ValueError as exc:
        raise Refused(say_in_flags(str(exc), model)) from None


def approval_mode(values: dict[str, Any]) -> TerminalApprover | None:
    """Who answers `--approval`: this terminal (an ad hoc run on opsflow's local server), the
    Prefect UI (a server in PREFECT_API_URL), or nobody, which is refused before anything
    runs."""
    if not values.get("approval"):
        return None
    if not os.environ.get(MARK):
        console.print(
            "approval: the run will pause; approve or reject it on the run's page in the "
            "Prefect UI (its link is printed when it starts)"
        )
        return None
    if sys.stdin.isatty():
        return TerminalApprover(console)
    raise Refused(
        "--approval needs someone to answer and there is no terminal here: run it on a "
        "terminal, or against a Prefect server named in PREFECT_API_URL (opsflow's local one "
        f"is {os.environ['PREFECT_API_URL']}) and approve in its UI"
    )


def with_blocks(model: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    """Load the named blocks (empty ones fall back to the block saved as "default"), then
    the whole model; a missing block is refused naming its flag."""
    from prefect.blocks.abstract import NotificationBlock
    from prefect.blocks.core import Block

    loaded = dict(values)
    for name, by_name in block_fields(model).items():
        wanted = values.get(name) or by_name.fallback
        if wanted is None:
            continue
        try:
            loaded[name] = by_name.func(wanted)
        except ValueError as exc:
            raise Refused(f"{flag(name, model)}: {exc}") from None
    notify = values.get("notify_block")
    if notify:
        try:
            if not isinstance(Block.load(notify), NotificationBlock):
                raise Refused(f"--notify-block {notify!r} is not a notification block")
        except ValueError:
            raise Refused(
                f"--notify-block: no block {notify!r} is saved; give '<block-type-slug>/<name>' "
                "of a saved notification block (prefect block ls)"
            ) from None
    try:
        return model.model_validate(loaded)
    except ValidationError as exc:
        raise Refused(_first_error(exc, model)) from None


def _first_error(exc: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for error in exc.errors():
        message = say_in_flags(str(error["msg"]).removeprefix("Value error, "), model)
        where = flag_of(error["loc"], model)
        lines.append(message if where == "parameters" else f"invalid {where}: {message}")
    return "\n".join(lines)


class TerminalApprover:
    """Asks on the operator's terminal: the plan, then its digest's first characters to approve."""

    PREFIX = 6

    def __init__(self, out: Console) -> None:
        self.out = out

    def ask(self, summary: str, digest: str, timeout_seconds: int) -> Approval:
        self.out.print(Markdown(summary))
        self.out.print(
            f"[bold]Approve plan {digest}?[/] Type [bold]{digest[: self.PREFIX]}[/] to approve; "
            f"anything else rejects (no answer within {timeout_seconds}s rejects): ",
            end="",
        )
        ready, _, _ = select.select([sys.stdin], [], [], timeout_seconds)
        if not ready:
            self.out.print()
            return Approval(
                plan_digest=digest, note=f"no answer within {timeout_seconds}s", approver=NOBODY
            )
        typed = sys.stdin.readline().strip()
        who = f"{getpass.getuser()} on the terminal of {socket.gethostname()}"
        if len(typed) >= self.PREFIX and digest.startswith(typed):
            return Approval(
                approve=True, plan_digest=digest, note="approved on the terminal", approver=who
            )
        return Approval(
            plan_digest=digest, note=f"rejected on the terminal (typed {typed!r})", approver=who
        )


def operator_console(verbose: bool) -> None:
    """From now on the console shows the runbook's own lines, without tracebacks, and none of
    Prefect's internal ones (engine bookkeeping, the temporary server, its workers);
    `--verbose` shows everything. The run's logs in Prefect keep Prefect's lines too (and a
    bug's traceback: `opsflow.tasks.expected_ends`)."""
    import prefect

    if verbose:
        return
    prefect_dir = os.path.dirname(prefect.__file__)
    for handler in logging.getLogger().handlers:
        if type(handler).__name__ == "PrefectConsoleHandler":
            handler.addFilter(_FromOutsideThePackage(prefect_dir))
            handler.setFormatter(_WithoutTraceback(handler.formatter))


class _FromOutsideThePackage(logging.Filter):
    """The run's own lines (our tasks' and flows' loggers), not Prefect's engine, nor a library's
    retry chatter (urllib3's "Retrying ..." warnings: the outcome is reported anyway)."""

    RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "opsflow")

    def __init__(self, package_dir: str) -> None:
        super().__init__()
        self.package_dir = package_dir

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.startswith(self.RUN_LOGGERS) and not record.pathname.startswith(
            self.package_dir
        )


class _WithoutTraceback(logging.Formatter):
    """The handler's own formatter, minus the traceback (which Prefect's API logs still get)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def show_result(name: str, result: Any) -> None:
    """The result's rows as a table (the first `TABLE_ROWS`, saying so), then its summary."""
    rows = next(
        (
            v
            for v in vars(result).values()
            if isinstance(v, list) and v and isinstance(v[0], BaseModel | dict)
        ),
        [],
    )
    if rows:
        dicts = [r.model_dump() if isinstance(r, BaseModel) else r for r in rows]
        columns = getattr(result, "table_columns", None) or list(dicts[0])
        titles = getattr(result, "table_titles", {})
        shown = dicts[:TABLE_ROWS]
        title = name if len(dicts) <= TABLE_ROWS else f"{name} — {len(shown)} of {len(dicts)} shown"
        total = getattr(result, "hosts", None)  # a report that keeps only its worst rows
        if isinstance(total, int) and total > len(shown):
            title = (
                f"{name} — the worst {len(shown)} of {total} hosts shown (every one: --csv-path)"
            )
        table = Table(*(titles.get(c, c.replace("_", " ")) for c in columns), title=title)
        for row in shown:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(table)
    for label in ("hosts_without_data", "series_without_host", "skipped"):
        names = getattr(result, label, None)
        if names:
            more = f" (and {len(names) - 20} more)" if len(names) > 20 else ""
            console.print(f"[yellow]{label.replace('_', ' ')}[/]: {', '.join(names[:20])}{more}")
    cooling = getattr(result, "cooling_down", None)
    if cooling:
        shown = ", ".join(f"{host} ({minutes_ago(minutes)})" for host, minutes in cooling.items())
        done = getattr(result, "done", "acted on")
        console.print(f"[yellow]skipped, {done} within the cooldown[/]: {shown}")
    approval = getattr(result, "approval", None)
    if approval is not None:
        console.print(f"approval: {approval.line}", soft_wrap=True)
    written = getattr(result, "csv_path", None)
    if written:
        console.print(f"every host written to {written}")
    console.print(getattr(result, "summary", result))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    text = " ".join(str(value).split())
    if len(text) <= CELL_WIDTH:
        return text
    cut = text[: CELL_WIDTH - 1].rsplit(" ", 1)[0]  # at a word boundary, never mid-word
    return (cut if len(cut) > CELL_WIDTH // 2 else text[: CELL_WIDTH - 1]) + "…"
