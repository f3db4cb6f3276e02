"""Property-based tests (hypothesis): no string gets a second command past the allowlist."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsflow.tasks.command_policy import CommandNotAllowed, check_command

SHELL_OPERATORS = list(";&|<>()`$\n\r") + ["&&", "||", "$(", "${", ">>", "<<"]
ALLOWED = [r"uptime( -p)?", r"systemctl (restart|status|is-active) [\w@.-]+", r"df -h .*"]


@given(
    base=st.sampled_from(["uptime", "systemctl status nginx", "df -h /"]),
    operator=st.sampled_from(SHELL_OPERATORS),
    tail=st.text(max_size=30).filter(str.strip),  # a trailing newline alone is stripped
)
def test_an_allowed_command_with_any_shell_operator_added_is_refused(base, operator, tail):
    with pytest.raises(CommandNotAllowed):
        check_command(f"{base}{operator}{tail}", ALLOWED + [r".*"])


@given(command=st.text(max_size=80))
def test_whatever_is_accepted_is_one_plain_command_to_the_shell(command):
    try:
        accepted = check_command(command, [r".*"])
    except (CommandNotAllowed, ValueError):
        return

    tokens = list(shlex.shlex(accepted, posix=True, punctuation_chars=True))
    assert not any(set(token) <= set("();<>|&") for token in tokens), tokens
    assert not any(ch in accepted for ch in "$`\\\n\r\x00")
    assert all(ch.isprintable() or ch == "\t" for ch in accepted), repr(accepted)
