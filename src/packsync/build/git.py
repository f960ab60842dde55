"""Git sources, fetched on the client with the user's own credentials, never with a prompt.

A Git install is built from a checkout of its recorded commit; when the server or the
commit is out of reach, ``Unreachable`` says which, and the build decides what to do.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from packsync.errors import BuildError
from packsync.model import Decision
from packsync.progress import Reporter
from packsync.sources import VcsSource

logger = logging.getLogger(__name__)


class Unreachable(Exception):
    """The Git server or the commit cannot be had; the message says which."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def _git(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Git with the user's own configuration and credentials, but never a prompt."""
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
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


def resolve_revision(decision: Decision, source: VcsSource, reporter: Reporter) -> str:
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
    listed = _git(["ls-remote", "--", source.url, revision or "HEAD"])
    if listed.returncode != 0:
        return f"unresolved:{revision}"  # fails again at checkout, where the fallback lives
    refs: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        commit, _, ref = line.partition("\t")
        refs[ref] = commit
    peeled = [c for r, c in refs.items() if r.endswith("^{}")]
    return (peeled or list(refs.values()) or [f"unresolved:{revision}"])[0]


def checkout(decision: Decision, source: VcsSource, into: Path) -> None:
    """A work tree of the installed commit (submodules included) in ``into``."""
    _require_git(decision, source)
    revision = source.commit or source.requested_revision
    cloned = _git(["clone", "--quiet", "--no-checkout", "--", source.url, str(into)])
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
        modules = _git(["submodule", "update", "--init", "--recursive", "--quiet"], cwd=into)
        if modules.returncode != 0:
            raise Unreachable("its Git submodules cannot be fetched", modules.stderr)
