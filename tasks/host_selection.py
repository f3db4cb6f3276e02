"""Which hosts a selector picks from the inventory, said so that a typo is never "all healthy".

Every runbook that selects hosts goes through `select`: a host named explicitly (the selector's
`hostnames`, `--host`) that the inventory lacks is refused with the closest names it has
(`UnknownHosts`), before anything else happens; the counts say what the selector really
selected ("40 hosts listed, 0 selected by tag nosuchtag"); and a selector that picks nothing
has words of its own (`nothing_matched`), distinct from a healthy fleet.

Example:
    >>> web = Host(id="1", hostname="lab-web-01", ip="127.10.0.2", tags=["web"])
    >>> picked = select([web], HostSelector(tags=["wbe"]))
    >>> picked.counted
    '1 host listed, 0 selected by tag wbe'
    >>> picked.nothing_matched
    'tag wbe selected none of the 1 host listed; no host is tagged wbe (did you mean web?)'
    >>> select([web], HostSelector(hostnames=["lab-web-1"]))
    Traceback (most recent call last):
    ...
    opsflow.opsapi.errors.UnknownHosts: selector.hostnames: 'lab-web-1' is not in the inventory of 1 host (did you mean lab-web-01?); nothing was done
"""

from __future__ import annotations

import difflib
import re

from pydantic import BaseModel, Field

from opsflow.opsapi.errors import UnknownHosts
from opsflow.opsapi.models import Host, HostSelector
from opsflow.tasks.wording import plural

CLOSEST = 3  # names suggested for each unknown one
SIMILAR = 0.6  # difflib's ratio from which a name counts as close (its default)


class HostSelection(BaseModel):
    """The inventory as listed, the hosts the selector picked from it, and how to say both.

    Example:
        >>> HostSelection(selector=HostSelector(hostname_pattern="db-*")).counted
        "0 hosts listed, 0 selected by hostname pattern 'db-*'"
    """

    selector: HostSelector = Field(default_factory=HostSelector)
    inventory: list[Host] = Field(default_factory=list, description="Every host listed.")
    selected: list[Host] = Field(default_factory=list, description="Those the selector picked.")

    @property
    def counted(self) -> str:
        """ "40 hosts listed, 0 selected by tag nosuchtag"; "40 hosts listed, 40 selected"."""
        by = describe(self.selector)
        listed = plural(len(self.inventory), "host")
        return f"{listed} listed, {len(self.selected)} selected{f' by {by}' if by else ''}"

    @property
    def nothing_matched(self) -> str:
        """Why nothing was selected, with the tags no host carries and their closest ones.

        Example:
            >>> HostSelection().nothing_matched
            'the inventory is empty: 0 hosts listed'
        """
        listed = plural(len(self.inventory), "host")
        by = describe(self.selector)
        if not by:
            return f"the inventory is empty: {listed} listed"
        known = sorted({tag for host in self.inventory for tag in host.tags})
        hints = [
            f"no host is tagged {tag}{_did_you_mean(tag, known)}"
            for tag in self.selector.tags
            if tag not in known
        ]
        return "; ".join([f"{by} selected none of the {listed} listed", *hints])


def select(inventory: list[Host], selector: HostSelector) -> HostSelection:
    """The hosts of `inventory` that `selector` picks.

    Raises:
        UnknownHosts: a host named in `selector.hostnames` is not in `inventory`; the message
            is one line naming each with the closest names the inventory has.
    """
    check_named_hosts(selector, [host.hostname for host in inventory])
    chosen = [host for host in inventory if selector.matches(host)]
    return HostSelection(selector=selector, inventory=inventory, selected=chosen)


def check_named_hosts(selector: HostSelector, hostnames: list[str]) -> None:
    """Refuse the hosts `selector` names that are not among `hostnames` (the inventory's).

    Example:
        >>> check_named_hosts(HostSelector(hostnames=["web-01"]), ["web-01", "web-02"])

    Raises:
        UnknownHosts: one line: each unknown name, the closest known ones, the inventory's size.
    """
    known = set(hostnames)
    unknown = [name for name in dict.fromkeys(selector.hostnames or ()) if name not in known]
    if not unknown:
        return
    ordered, inventory = sorted(known), plural(len(known), "host")
    if len(unknown) == 1:
        [name] = unknown
        said = f"{name!r} is not in the inventory of {inventory}{_did_you_mean(name, ordered)}"
    else:
        each = [f"{n!r}{_did_you_mean(n, ordered, none=' (no similar name)')}" for n in unknown]
        said = f"{', '.join(each[:-1])} and {each[-1]} are not in the inventory of {inventory}"
    raise UnknownHosts(f"selector.hostnames: {said}; nothing was done")


def describe(selector: HostSelector) -> str:
    """The selector in words, empty when it picks every host.

    Example:
        >>> describe(HostSelector(tags=["web", "prod"], hostname_pattern="web-*"))
        "tags web and prod and hostname pattern 'web-*'"
        >>> describe(HostSelector(hostnames=[]))
        'an empty host list'
    """
    parts = []
    if selector.tags:
        parts.append(f"{'tag' if len(selector.tags) == 1 else 'tags'} {_listed(selector.tags)}")
    if selector.hostname_pattern:
        parts.append(f"hostname pattern {selector.hostname_pattern!r}")
    if selector.hostnames is not None:
        names = selector.hostnames
        if not names:
            parts.append("an empty host list")
        else:
            parts.append(f"{'host' if len(names) == 1 else 'hosts'} {_listed(names, 5)}")
    return " and ".join(parts)


def _listed(words: list[str], most: int = 10) -> str:
    shown = words[:most] + ([f"{len(words) - most} more"] if len(words) > most else [])
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def closest(word: str, known: list[str]) -> list[str]:
    """The names of `known` closest to `word`, closest first; a name with the same numbers
    comes first (fleets number their hosts: difflib alone rates lab-web-31 as close to
    lab-web-1 as lab-web-01).

    Example:
        >>> closest("lab-web-1", ["lab-web-01", "lab-web-11", "lab-web-21", "lab-web-31"])
        ['lab-web-01', 'lab-web-31', 'lab-web-21']
    """
    similar = difflib.get_close_matches(word, known, n=len(known), cutoff=SIMILAR)
    numbers = _numbers(word)
    # sorted() is stable: among the same numbers, difflib's order (most similar first) stays.
    return sorted(similar, key=lambda name: _numbers(name) != numbers)[:CLOSEST]


def _numbers(name: str) -> list[int]:
    return [int(digits) for digits in re.findall(r"\d+", name)]


def _did_you_mean(word: str, known: list[str], none: str = "") -> str:
    close = closest(word, known)
    if not close:
        return none
    said = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
    return f" (did you mean {said}?)"
