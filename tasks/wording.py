"""How counts are said in logs, reports and the command line.

Example:
    >>> plural(1, "host"), plural(3, "host"), plural(2, "batch")
    ('1 host', '3 hosts', '2 batches')
"""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, the noun in the plural unless the count is one."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x')) else 's'}"


def minutes_ago(minutes: float) -> str:
    """How long ago, for a person: "just now" under half a minute (never "-0 min ago", which
    a clock a second ahead would give), else whole minutes.

    Example:
        >>> minutes_ago(-0.01), minutes_ago(4.6)
        ('just now', '5 min ago')
    """
    if minutes < 0.5:
        return "just now"
    return f"{minutes:.0f} min ago"
