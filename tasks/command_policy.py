"""Which commands a runbook may send: an allowlist that shell syntax cannot get around.

With an allowlist, a command must be one plain command (no `;`, `&`, `|`, `$`, backquotes,
redirections, sub-shells, globs, newlines or other control characters) and match one pattern
completely.

Example:
    >>> check_command("systemctl restart nginx", [r"systemctl (restart|status) [\\w@.-]+"])
    'systemctl restart nginx'
"""

from __future__ import annotations

import re

from opsflow.opsapi.errors import CommandNotAllowed, ConfigurationError

SHELL_SYNTAX = re.compile(r"[;&|$`<>(){}\\\n\r*?\[\]~!#'\"]")


def check_command(command: str, allowlist: list[str] | None) -> str:
    """Return the command if allowed; raise `CommandNotAllowed` naming it otherwise."""
    command = command.strip()
    if not command:
        raise ConfigurationError("command is empty")
    if not allowlist:
        return command
    shell = SHELL_SYNTAX.search(command)
    if shell:
        raise CommandNotAllowed(
            f"command {command!r} uses shell syntax {shell.group()!r}, which an allowlist "
            "forbids: send one plain command"
        )
    hidden = next((ch for ch in command if not (ch.isprintable() or ch == "\t")), None)
    if hidden is not None:
        raise CommandNotAllowed(
            f"command {command!r} contains the control character U+{ord(hidden):04X}, which "
            "an allowlist forbids: type the command as plain text"
        )
    if not any(re.fullmatch(pattern, command) for pattern in allowlist):
        raise CommandNotAllowed(f"command {command!r} matches no allowlist pattern {allowlist}")
    return command


def check_patterns(allowlist: list[str] | None) -> list[str] | None:
    """Return the allowlist if every pattern compiles; raise `CommandNotAllowed` naming the bad
    one otherwise (a broken pattern must not surface mid-run as a Python traceback)."""
    for pattern in allowlist or []:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise CommandNotAllowed(
                f"allowlist pattern {pattern!r} is not a valid regular expression ({exc})"
            ) from None
    return allowlist
