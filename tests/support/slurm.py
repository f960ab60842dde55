"""A real one-node SLURM cluster for tests: munged, slurmctld and slurmd as daemons.

Nothing is installed here: the project's set-up (``make system-packages``) installs
Debian's ``slurm-wlm`` and ``munge``. Everything the daemons write (key, socket, state,
spool, logs, pid files) is under a directory of this run, on ports of its own, so a
machine's own SLURM (if any) is left alone. Clients (``sbatch``, ``squeue``, dask-jobqueue)
find this cluster through ``SLURM_CONF`` (``Slurm.env``). When the ``with`` block ends every
job is cancelled and every daemon is stopped by the PID it wrote.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .servers import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo")


def missing() -> list[str]:
    """The SLURM and munge programs this machine lacks (none after ``make system-packages``)."""
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
             for name in (*DAEMONS, *CLIENTS)}
    return sorted(name for name, path in found.items() if path is None)


@dataclass(frozen=True)
class Slurm:
    """A running cluster: its configuration file and the directory it lives in."""

    root: Path
    conf: Path
    node: str
    partition: str = "debug"

    @property
    def env(self) -> dict[str, str]:
        """What a SLURM client needs in its environment to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def squeue(self) -> list[str]:
        """The ids of the jobs queued or running."""
        out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                             check=True, env={**os.environ, **self.env}, timeout=30).stdout
        return out.split()

    def cancel_all(self) -> None:
        subprocess.run(["scancel", "--user", pwd.getpwuid(os.getuid()).pw_name],
                       env={**os.environ, **self.env}, capture_output=True, timeout=30)

    def wait_empty(self, timeout: float = 60) -> list[str]:
        """Wait until no job is left; the ids still there at ``timeout``."""
        deadline = time.monotonic() + timeout
        while (jobs := self.squeue()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return jobs


def _sbin(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError(f"{name} is not installed (make system-packages installs it)")
    return found


def _chown(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _real_memory() -> int:
    """95 % of what ``slurmd -C`` sees, in MB (a node that claims more is drained)."""
    out = subprocess.run([_sbin("slurmd"), "-C"], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"RealMemory=(\d+)", out)
    return int(int(match.group(1)) * 0.95) if match else 1000


def _config(root: Path, node: str, socket_path: Path) -> str:
    return "\n".join([
        "ClusterName=packsync-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        "SlurmUser=slurm",
        "SlurmdUser=root",
        f"SlurmctldPort={free_port()}",
        f"SlurmdPort={free_port()}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={socket_path}",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "ReturnToService=2",
        "SchedulerType=sched/builtin",
        "InactiveLimit=0",
        "KillWait=5",
        "MinJobAge=2",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} "
        f"RealMemory={_real_memory()} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stop(pid_file: Path, timeout: float = 15) -> None:
    """End the daemon whose pid ``pid_file`` holds: SIGTERM, then SIGKILL."""
    pid = _pid(pid_file)
    if pid is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _log_tail(root: Path) -> str:
    parts = []
    for log in sorted((root / "log").glob("*.log")):
        parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace")
                                                     .splitlines()[-20:]))
    return "\n".join(parts)


@contextmanager
def slurm_cluster(timeout: float = 60) -> Iterator[Slurm]:
    """A one-node SLURM cluster, idle and ready for jobs; stopped when the block ends."""
    if os.geteuid() != 0:
        raise RuntimeError("the test SLURM cluster runs its daemons as root (munged as munge)")
    # the daemons run as munge and slurm: a directory they may enter, outside pytest's 0700 ones
    root = Path(tempfile.mkdtemp(prefix="packsync-slurm-"))
    root.chmod(0o755)
    node = socket.gethostname().split(".")[0]
    munge = root / "munge"  # munged wants its socket's directory open to all
    munge.mkdir(mode=0o755)
    (munge / "key").mkdir(mode=0o700)
    key = munge / "key" / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o400)
    for path in (munge, munge / "key", key):
        _chown(path, "munge")
    for name in ("state", "log"):
        (root / name).mkdir()
        _chown(root / name, "slurm")
    (root / "spool").mkdir()
    socket_path = munge / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(_config(root, node, socket_path))
    conf.chmod(0o644)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Slurm(root=root, conf=conf, node=node)
    try:
        subprocess.run(
            ["runuser", "-u", "munge", "--", _sbin("munged"), f"--key-file={key}",
             f"--socket={socket_path}", f"--pid-file={munge / 'munged.pid'}",
             f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"],
            check=True, capture_output=True, timeout=30)
        for daemon in ("slurmctld", "slurmd"):  # both fork into the background
            subprocess.run([_sbin(daemon)], check=True, capture_output=True, env=env, timeout=30)
        deadline = time.monotonic() + timeout
        while True:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                   env=env, timeout=30).stdout.strip()
            if state == "idle":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"SLURM node not idle after {timeout} s (state {state!r}):\n"
                                   + _log_tail(root))
            time.sleep(0.2)
        yield cluster
    finally:
        try:
            if (root / "slurmctld.pid").exists():
                cluster.cancel_all()
                cluster.wait_empty(30)
        finally:
            for pid_file in (root / "slurmd.pid", root / "slurmctld.pid",
                             munge / "munged.pid"):
                _stop(pid_file)
            shutil.rmtree(root, ignore_errors=True)
