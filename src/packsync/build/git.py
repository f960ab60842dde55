"""Git sources, fetched on the client with the user's own credentials, never with a prompt.

A Git install is built from a checkout of its recorded commit; when the server or the
commit is out of reach, ``Unreachable`` says which, and the build decides what to do.

The snapshot keeps no userinfo of an HTTP(S) Git URL (a token is often its username). The
credentials the install's own URL held are read again here, on the client, from its
``direct_url.json``, and reach git through its environment as a credential helper that
answers for that URL's origin only: never on a command line, where ``ps`` shows them.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packsync.errors import BuildError
from packsync.model import Decision
from packsync.progress import Reporter
from packsync.redact import userinfo_span
from packsync.scan.dists import without_password
from packsync.sources import VcsSource

logger = logging.getLogger(__name__)


class Unreachable(Exception):
    """The Git server or the commit cannot be had; the message says which."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True, kw_only=True, slots=True)
class GitCredentials:
    """The userinfo of the URL a package was installed from, for that URL's origin only."""

    protocol: str
    host: str  # with its port, as git names it to a credential helper
    username: str = field(repr=False)
    password: str = field(repr=False)

    def environment(self, environ: dict[str, str]) -> dict[str, str]:
        """``environ`` plus a credential helper (the user's are set aside) that gives these
        credentials to git when it asks for this origin, and nothing for any other."""
        count = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
        helper = _HELPER.format(protocol=shlex.quote(self.protocol),
                                host=shlex.quote(self.host))
        return {
            **environ,
            "GIT_CONFIG_COUNT": str(count + 2),
            f"GIT_CONFIG_KEY_{count}": "credential.helper",
            f"GIT_CONFIG_VALUE_{count}": "",  # an empty helper resets the list
            f"GIT_CONFIG_KEY_{count + 1}": "credential.helper",
            f"GIT_CONFIG_VALUE_{count + 1}": helper,
            "PACKSYNC_GIT_USERNAME": self.username,
            "PACKSYNC_GIT_PASSWORD": self.password,
        }


# Runs in git's shell; the secrets stay in variables, expanded by builtins only.
_HELPER = (
    '!f() {{ test "$1" = get || return 0; p=; h=; '
    'while IFS= read -r line && test -n "$line"; do case "$line" in '
    'protocol=*) p="${{line#protocol=}}";; host=*) h="${{line#host=}}";; esac; done; '
    'test "$p" = {protocol} && test "$h" = {host} || return 0; '
    'printf "username=%s\\npassword=%s\\n" "$PACKSYNC_GIT_USERNAME" "$PACKSYNC_GIT_PASSWORD"; '
    '}}; f'
)


def installed_credentials(dist_info: Path | None, url: str) -> GitCredentials | None:
    """The credentials the HTTP(S) URL a package was installed from held, when that URL
    is ``url`` (the snapshot's, without them)."""
    if dist_info is None:
        return None
    try:
        recorded = json.loads((dist_info / "direct_url.json").read_text(encoding="utf-8"))
        raw = recorded["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(raw, str) or without_password(raw) != url:
        return None
    span = userinfo_span(raw)
    parts = urlsplit(raw)
    protocol = parts.scheme.removeprefix("git+")
    if span is None or protocol not in ("http", "https"):
        return None
    user, _, password = raw[span[0]:span[1]].partition(":")
    host = raw[span[1] + 1:].split("/", 1)[0]
    return GitCredentials(protocol=protocol, host=host, username=unquote(user),
                          password=unquote(password))


def _git(args: list[str], cwd: Path | None = None,
         credentials: GitCredentials | None = None) -> subprocess.CompletedProcess[str]:
    """Git with the user's own configuration and credentials, but never a prompt."""
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    if credentials is not None:
        env = credentials.environment(env)
    try:
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False, timeout=900)
    except FileNotFoundError:
        return subprocess.CompletedProcess(["git"], 127, "", "git is not installed")
    except subprocess.TimeoutExpired as error:
        return subprocess.CompletedProcess(["git"], 124, "", f"git timed out: {error}")


def _require_git(decision: Decision, source: VcsSource) -> None:
    if source.vcs != "git":
        raise BuildError(
            f"{decision.name} comes from {source.vcs} ({source.url}), and only Git sources "
            "can be built",
            package=decision.name,
            path=source.url,
            hint=f"reinstall {decision.name} from Git or an index, or ignore it",
        )


def resolve_revision(decision: Decision, source: VcsSource, reporter: Reporter,
                     credentials: GitCredentials | None = None) -> str:
    """The commit to build when the installer recorded none (old installers)."""
    _require_git(decision, source)
    revision = source.requested_revision
    logger.warning(
        "%s: no commit was recorded at install (an old installer); building %s of %s",
        decision.name, revision or "the default branch", source.url,
    )
    reporter.step("build", f"{decision.name}: no recorded commit, using "
                  f"{revision or 'the default branch'}")
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision.lower()):
        return revision.lower()
    listed = _git(["ls-remote", "--", source.url, revision or "HEAD"], credentials=credentials)
    if listed.returncode != 0:
        return f"unresolved:{revision}"  # fails again at checkout, where the fallback lives
    refs: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        refs[ref] = commit
    peeled = [c for r, c in refs.items() if r.endswith("^{}")]
    return (peeled or list(refs.values()) or [f"unresolved:{revision}"])[0]


def checkout(decision: Decision, source: VcsSource, into: Path,
             credentials: GitCredentials | None = None) -> None:
    """A work tree of the installed commit (submodules included) in ``into``."""
    _require_git(decision, source)
    revision = source.commit or source.requested_revision
    cloned = _git(["clone", "--quiet", "--no-checkout", "--", source.url, str(into)],
                  credentials=credentials)
    if cloned.returncode != 0:
        raise Unreachable("the Git repository cannot be reached", cloned.stderr)
    if revision:
        checked = _git(["checkout", "--quiet", "--detach", revision], cwd=into)
        if checked.returncode != 0:
            raise Unreachable(f"the commit {revision} is not in the repository", checked.stderr)
    else:
        checked = _git(["checkout", "--quiet"], cwd=into)
        if checked.returncode != 0:
            raise Unreachable("the repository has nothing to check out", checked.stderr)
    if (into / ".gitmodules").exists():
        modules = _git(["submodule", "update", "--init", "--recursive", "--quiet"], cwd=into,
                       credentials=credentials)
        if modules.returncode != 0:
            raise Unreachable("its Git submodules cannot be fetched", modules.stderr)
