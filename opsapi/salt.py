"""SaltStack through salt-api (rest_cherrypy): hosts are minions, jobs are Salt jobs.

What a runbook relies on, done the way Salt really behaves:

- **Exit codes** come from the master's job cache, `GET /jobs/<jid>` -> `info[0].Result.<minion>`,
  with `cmd.run_all` so stdout and stderr stay apart (the `return` half drops the retcode, and
  the `jobs.exit_success` runner ignores it: neither is used).
- **Unknown minions** are silently left out of a target; a target of only unknown minions
  answers `{}`. What was asked for is kept in the job's metadata and compared with what was
  targeted: the difference is reported ("not known to the Salt master"). A minion that has not
  returned by the job's timeout (plus a grace) is failed ("minion did not return"), never a
  success, and never holds the run.
- **No duplicate jobs**: the jid is derived once per submission from the idempotency key
  (`<20-digit time>_<key>`; a `/` in a jid crashes the job on the minion) and the key rides in
  the job's metadata. After a lost answer the jid is looked up, and the job submitted again
  only when the master has no such job.
- **Cancel** is `saltutil.kill_job` through the synchronous local client. A killed job leaves no
  result, so the job returned by `cancel_job` says "cancelled by the runbook" for those minions.
- **The token expires**: a 401 logs in again, once. The password is a registered secret: it is
  masked wherever it could appear.

Example:
    >>> salt = SaltAPIClient("http://127.0.0.1:8000", "opsflow", "...")      # doctest: +SKIP
    >>> [h.hostname for h in salt.list_hosts(tag="web")]                      # doctest: +SKIP
    ['lab-web-01', 'lab-web-03']
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from opsflow.opsapi.backend import FollowsJobs
from opsflow.opsapi.errors import (
    AuthFailed,
    BadResponse,
    ConfigurationError,
    ConnectionFailed,
    InvalidInput,
    NotFound,
    RequestTimedOut,
    ServerError,
)
from opsflow.opsapi.http import JSONClient
from opsflow.opsapi.models import Host, HostSpec, Job, JobResult, JobStatus
from opsflow.opsapi.redaction import register_secret
from opsflow.opsapi.transport import Transport

logger = logging.getLogger("opsflow.salt")

EAUTH = ("file", "sharedsecret", "ldap", "pam", "auto")
JID = re.compile(r"^\d{20}_[A-Za-z0-9-]+$")
RUNNER = "cmd.run_all"
# A minion that has not returned this long after the job's own timeout is not coming back.
RETURN_GRACE_SECONDS = 10
NOT_TARGETED = "not known to the Salt master (no accepted key): the command was not sent"
NO_RETURN = "minion did not return within the job timeout"
CANCELLED = "minion did not return within the job timeout: cancelled by the runbook"


def jid_for(key: str, now: datetime | None = None) -> str:
    """A Salt jid for an idempotency key: Salt's 20-digit time, then the key made safe.

    Example:
        >>> jid_for("run-7:restart:1", datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc))
        '20261125063000000000_run-7-restart-1'
    """
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S%f")
    suffix = re.sub(r"[^A-Za-z0-9-]+", "-", key).strip("-")[:80] or "opsflow"
    jid = f"{stamp}_{suffix}"
    assert JID.match(jid)
    return jid


class SaltAPIClient(FollowsJobs, JSONClient):
    """Minions as hosts and Salt jobs as jobs, through salt-api's REST interface.

    Args:
        base_url: salt-api's root, e.g. ``http://127.0.0.1:8000``.
        username: the eauth user.
        password: its password (or the shared secret, for `sharedsecret`).
        eauth: `file`, `sharedsecret`, `ldap` or `pam`, as the master's external_auth has it.
        address_grain: the grain holding each minion's address, joined with Prometheus'
            `instance` (`ipv4`, or the lab's `opsflow_ip`); a list grain gives its first
            address that is not loopback, else its first.
        tags_grain: the grain holding a minion's roles, used as its tags.
        transport: timeout, TLS, retries, pool, proxy and audit log.
    """

    name = "salt-api"

    # A token outlives the client that got it (salt-api's last 12 h): every client of this
    # process for the same salt-api and user reuses it, instead of a login per task.
    _tokens: dict[tuple[str, str, str, str], str] = {}
    _tokens_lock = threading.Lock()

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        eauth: str = "file",
        address_grain: str = "ipv4",
        tags_grain: str = "roles",
        transport: Transport | None = None,
    ) -> None:
        if eauth not in EAUTH:
            raise ConfigurationError(f"eauth {eauth!r} is not one of {', '.join(EAUTH)}")
        if not username or not password:
            raise ConfigurationError(
                "salt-api needs a username and a password: set them on the block"
            )
        register_secret(password)
        super().__init__(base_url, transport=transport)
        self.username, self.eauth = username, eauth
        self._password = password
        self.address_grain, self.tags_grain = address_grain, tags_grain
        self._lock = threading.Lock()
        self.logins = 0
        with self._tokens_lock:
            self._token: str | None = self._tokens.get(self._token_key)
        if self._token:
            self.session.headers["X-Auth-Token"] = self._token

    @property
    def _token_key(self) -> tuple[str, str, str, str]:
        # The password's hash too: a block with another password never borrows a token.
        digest = hashlib.sha256(self._password.encode()).hexdigest()
        return (self.base_url, self.username, self.eauth, digest)

    # the session ------------------------------------------------------------------------

    def login(self) -> None:
        """POST: /login — a token for the eauth user; refused credentials name the fields."""
        with self._lock:
            try:
                answer = self.request(
                    "POST",
                    "/login",
                    json={
                        "username": self.username,
                        "password": self._password,
                        "eauth": self.eauth,
                    },
                )
            except AuthFailed as exc:
                raise AuthFailed(
                    f"salt-api refused the login of {self.username!r} with eauth {self.eauth!r}: "
                    "check the block's username and password (and the master's external_auth)",
                    exc.method,
                    exc.url,
                    exc.status,
                ) from None
            token = _first(answer, "login").get("token")
            if not token:
                raise BadResponse("salt-api answered the login without a token", "POST", "/login")
            register_secret(token)
            self._token = token
            self.session.headers["X-Auth-Token"] = token
            self.logins += 1
            with self._tokens_lock:
                self._tokens[self._token_key] = token

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request with the token; a 401 (expired token) logs in again, once."""
        if self._token is None:
            self.login()
        try:
            return self.request(method, path, **kwargs)
        except AuthFailed as exc:
            if exc.status != 401:
                raise
            self.login()
            return self.request(method, path, **kwargs)

    def _lowstate(self, chunk: dict[str, Any]) -> Any:
        """POST: / — one lowstate chunk; its return."""
        return _first(self._call("POST", "/", json=[chunk]), chunk.get("fun", "call"))

    # hosts ------------------------------------------------------------------------------

    def list_hosts(
        self, hostname: str | None = None, ip: str | None = None, tag: str | None = None
    ) -> list[Host]:
        """Every minion with an accepted key, as a host (id and name: the minion id).

        Runner `cache.grains`: the grains the master keeps, so a minion that is down is still a
        host (a job on it then ends "minion did not return") rather than silently missing.
        """
        minions = self._lowstate({"client": "runner", "fun": "cache.grains", "tgt": "*"}) or {}
        hosts = []
        for minion, grains in sorted(minions.items()):
            if not isinstance(grains, dict) or self.address_grain not in grains:
                # Accepted, but its grains have not reached the master yet (it has not
                # started since): no address to join on, so no host yet.
                logger.warning(
                    "minion %s has no %r grain yet: not listed", minion, self.address_grain
                )
                continue
            host = self._host(minion, grains)
            if hostname and host.hostname != hostname:
                continue
            if ip and host.ip != ip:
                continue
            if tag and tag not in host.tags:
                continue
            hosts.append(host)
        return hosts

    def get_host(self, host_id: str | int) -> Host:
        """One minion by id, from the master's grains cache."""
        grains = (
            self._lowstate({"client": "runner", "fun": "cache.grains", "tgt": str(host_id)}) or {}
        ).get(str(host_id))
        if not isinstance(grains, dict):
            raise NotFound(
                f"no minion {host_id!r} answers the Salt master", "GET", f"/minions/{host_id}"
            )
        return self._host(str(host_id), grains)

    def get_hosts(self, host_ids: Sequence[str | int], workers: int = 8) -> list[Host]:
        wanted = {str(h) for h in host_ids}
        return [h for h in self.list_hosts() if h.id in wanted]

    def _host(self, minion: str, grains: dict[str, Any]) -> Host:
        address = grains.get(self.address_grain)
        if isinstance(address, list):
            address = next((a for a in address if not str(a).startswith("127.")), None) or (
                address[0] if address else None
            )
        if not address:
            raise BadResponse(
                f"minion {minion!r} has no {self.address_grain!r} grain: set address_grain on "
                "the Salt block to a grain holding its address"
            )
        tags = grains.get(self.tags_grain) or []
        return Host(
            id=minion,
            hostname=minion,
            ip=str(address),
            os=" ".join(str(grains.get(k, "")) for k in ("os", "osrelease")).strip() or None,
            tags=[str(t) for t in (tags if isinstance(tags, list) else [tags])],
        )

    def create_host(self, spec: HostSpec) -> Host:
        """Registering a Salt host is accepting its minion's pending key (wheel key.accept)."""
        pending = self._keys().get("minions_pre", [])
        if spec.hostname not in pending:
            raise NotFound(
                f"no pending key for minion {spec.hostname!r}: start its salt-minion pointed "
                "at this master first (registering on Salt accepts a waiting minion)",
                "POST",
                "/ wheel key.accept",
            )
        self._lowstate({"client": "wheel", "fun": "key.accept", "match": spec.hostname})
        return Host(id=spec.hostname, hostname=spec.hostname, ip=spec.ip, tags=spec.tags)

    def replace_host(self, host_id: str | int, spec: HostSpec) -> Host:
        raise InvalidInput(
            "a Salt minion's grains are set on the minion, not through salt-api: "
            "--update-existing has no meaning for a Salt backend",
            "PUT",
            f"/minions/{host_id}",
        )

    def accepted_and_pending(self) -> tuple[list[str], list[str]]:
        """(minions with accepted keys, minions waiting for acceptance)."""
        keys = self._keys()
        return list(keys.get("minions", [])), list(keys.get("minions_pre", []))

    def _keys(self) -> dict[str, list[str]]:
        answer = self._lowstate({"client": "wheel", "fun": "key.list_all"})
        return answer.get("data", {}).get("return", {}) if isinstance(answer, dict) else {}

    # jobs -------------------------------------------------------------------------------

    def execute_job(
        self,
        host_ids: Sequence[str | int],
        command: str,
        timeout: int = 60,
        idempotency_key: str | None = None,
    ) -> str:
        """Start `command` with `cmd.run_all` on the minions; the jid.

        POST: / {"client": "local_async", "jid": <from the key>, "metadata": {...}}. After a
        lost answer the jid is looked up first: a job the master has is never sent again.
        """
        if not host_ids:
            raise ConfigurationError("execute_job needs at least one minion")
        requested = [str(h) for h in host_ids]
        jid = jid_for(idempotency_key or f"adhoc-{time.time_ns()}")
        chunk = {
            "client": "local_async",
            "tgt": requested,
            "tgt_type": "list",
            "fun": RUNNER,
            "arg": [command],
            "kwarg": {"timeout": timeout, "python_shell": True},
            "jid": jid,
            "metadata": {
                "opsflow_key": idempotency_key or jid,
                "opsflow_requested": requested,
                "opsflow_timeout": timeout,
            },
        }
        for attempt in range(self.retries + 1):
            try:
                answer = self._lowstate(chunk)
            except (ConnectionFailed, RequestTimedOut, ServerError):
                if self._known(jid):  # the master took it; only the answer was lost
                    return jid
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
                continue
            if not answer:  # `{}`: the master knows none of these minions
                raise NotFound(
                    f"none of the minions {', '.join(requested[:10])} is known to the Salt "
                    "master: nothing was sent",
                    "POST",
                    f"{self.base_url}/",
                )
            if answer.get("jid") != jid:
                raise BadResponse(f"salt-api answered job submission with {answer!r}"[:200])
            return jid
        raise AssertionError("unreachable")

    def _known(self, jid: str) -> bool:
        """Whether the master's job cache has this jid (a lookup that cannot start anything)."""
        try:
            info = self._job_info(jid)
        except NotFound:
            return False
        return bool(info.get("Minions") or info.get("Function"))

    def _job_info(self, jid: str) -> dict[str, Any]:
        answer = self._call("GET", f"/jobs/{jid}")
        info = (answer or {}).get("info") or [{}]
        if not isinstance(info, list) or not isinstance(info[0], dict) or info[0].get("Error"):
            raise NotFound(f"the Salt master has no job {jid}", "GET", f"/jobs/{jid}")
        return info[0]

    def get_job(self, job_id: str) -> Job:
        """GET: /jobs/{jid} — each minion's result from the master's job cache."""
        return self._job(job_id, self._job_info(job_id), cancelled=False)

    def cancel_job(self, job_id: str) -> Job:
        """saltutil.kill_job on the minions still running it (synchronous local client)."""
        info = self._job_info(job_id)
        running = [m for m in info.get("Minions", []) if m not in (info.get("Result") or {})]
        if running:
            self._lowstate(
                {
                    "client": "local",
                    "tgt": running,
                    "tgt_type": "list",
                    "fun": "saltutil.kill_job",
                    "arg": [job_id],
                }
            )
        return self._job(job_id, self._job_info(job_id), cancelled=True)

    def _job(self, jid: str, info: dict[str, Any], cancelled: bool) -> Job:
        metadata = info.get("Metadata") or {}
        targeted = [str(m) for m in info.get("Minions") or []]
        requested = [str(m) for m in metadata.get("opsflow_requested") or targeted]
        timeout = float(metadata.get("opsflow_timeout") or 60)
        started = _jid_time(jid)
        overdue = (
            started is not None
            and time.time() > started.timestamp() + timeout + RETURN_GRACE_SECONDS
        )
        returned = info.get("Result") or {}
        results = []
        for minion in requested:
            if minion not in targeted:
                results.append(_result(minion, JobStatus.failed, None, "", NOT_TARGETED))
            elif minion in returned:
                results.append(_returned(minion, returned[minion]))
            elif cancelled:
                results.append(_result(minion, JobStatus.cancelled, None, "", CANCELLED))
            elif overdue:
                results.append(_result(minion, JobStatus.timeout, None, "", NO_RETURN))
            else:
                results.append(JobResult(host_id=minion, hostname=minion, status=JobStatus.running))
        arguments = info.get("Arguments") or [""]
        return Job(
            job_id=jid,
            status=_overall(results),
            command=str(arguments[0]) if arguments else None,
            hosts=requested,
            results=results,
            created_at=started,
        )

    def list_jobs(
        self,
        host_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        command: str | None = None,
    ) -> list[Job]:
        """Jobs of `cmd.run_all` the master's job cache has from `since` (UNIX time) on, each
        with its results: a restart made through Salt by another tool counts too.

        Runner `jobs.list_jobs` names them with their arguments; only those of `command` (when
        given) are looked up, several at a time (each lookup is a runner call, ~0.3 s).
        """
        chunk: dict[str, Any] = {
            "client": "runner",
            "fun": "jobs.list_jobs",
            "search_function": RUNNER,
        }
        if since:
            start = datetime.fromtimestamp(float(since), timezone.utc)
            chunk["start_time"] = start.strftime("%Y, %b %d %H:%M:%S")
        listed = self._lowstate(chunk) or {}
        wanted = [
            jid
            for jid, summary in sorted(listed.items())
            if command is None or _command_of(summary) == command
        ]
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(wanted)))) as pool:
            found = list(pool.map(self._job_or_none, wanted))
        return [
            job
            for job in found
            if job is not None
            and (not host_id or str(host_id) in job.hosts)
            and (not status or job.status.value == status)
        ]

    def _job_or_none(self, jid: str) -> Job | None:
        try:
            return self.get_job(jid)
        except NotFound:
            return None


def _first(answer: Any, what: str) -> Any:
    """The first element of salt-api's `{"return": [...]}`."""
    if not isinstance(answer, dict) or not isinstance(answer.get("return"), list):
        raise BadResponse(f"salt-api answered {what} without a return list: {str(answer)[:100]}")
    return answer["return"][0] if answer["return"] else {}


def _command_of(summary: Any) -> str | None:
    """The command of a `jobs.list_jobs` entry (its first argument)."""
    arguments = summary.get("Arguments") if isinstance(summary, dict) else None
    return str(arguments[0]) if arguments else None


def _jid_time(jid: str) -> datetime | None:
    try:
        return datetime.strptime(jid[:20], "%Y%m%d%H%M%S%f").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _result(minion: str, status: JobStatus, code: int | None, out: str, err: str) -> JobResult:
    return JobResult(
        host_id=minion, hostname=minion, status=status, exit_code=code, stdout=out, stderr=err
    )


def _returned(minion: str, entry: Any) -> JobResult:
    """One minion's entry of `info[0].Result`: `{"return": {...run_all...}, "retcode": n}`."""
    ret = entry.get("return") if isinstance(entry, dict) else entry
    if isinstance(ret, dict) and "retcode" in ret:
        code = int(ret["retcode"])
        out, err = str(ret.get("stdout", "")), str(ret.get("stderr", ""))
    else:  # the function did not run (an exception on the minion, a bad argument)
        code = int(entry.get("retcode", 1)) if isinstance(entry, dict) else 1
        out, err = "", str(ret)
    status = JobStatus.success if code == 0 else JobStatus.failed
    return _result(minion, status, code, out, err)


def _overall(results: list[JobResult]) -> JobStatus:
    if any(not r.status.is_final for r in results):
        return JobStatus.running
    if all(r.status == JobStatus.success for r in results):
        return JobStatus.success
    if any(r.status == JobStatus.cancelled for r in results):
        return JobStatus.cancelled
    if any(r.status == JobStatus.success for r in results):
        return JobStatus.partial
    return JobStatus.failed
