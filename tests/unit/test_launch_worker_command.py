"""Which indexes a job must authenticate to itself (packsync.launch.worker_command)."""

from __future__ import annotations

import pytest

from packsync.launch.worker_command import job_indexes
from packsync.scan.index_config import Index
from packsync.scan.indexes import IndexSettings


def test_job_indexes_are_those_that_needed_credentials_named_as_uv_names_them() -> None:
    settings = IndexSettings(
        indexes=(
            Index(url="https://pypi.org/simple", role="default", origin="default"),
            Index(url="https://bob:s3cret@pkgs.example.com/simple/", role="extra",
                  origin="pip.conf"),
            Index(url="https://ann:pw@pkgs.example.com:8443/other/", role="extra",
                  origin="pip.conf"),
            Index(url="https://corp.example/simple/", role="extra", origin="$UV_INDEX",
                  name="corp.v2"),
            Index(url="https://kim:pw@links.example/", role="find-links", origin="pip.conf"),
        ),
        environ={"HOME": "/nonexistent", "NETRC": "/nonexistent",
                 "UV_INDEX_CORP_V2_USERNAME": "u", "UV_INDEX_CORP_V2_PASSWORD": "p"},
    )
    found = job_indexes(settings)
    assert [(i.name, i.url) for i in found] == [
        ("pkgs-example-com", "https://pkgs.example.com/simple/"),
        ("pkgs-example-com-2", "https://pkgs.example.com:8443/other/"),
        ("corp.v2", "https://corp.example/simple/"),
    ]
    assert found[0].variables == ("UV_INDEX_PKGS_EXAMPLE_COM_USERNAME",
                                  "UV_INDEX_PKGS_EXAMPLE_COM_PASSWORD")
    assert found[2].variables == ("UV_INDEX_CORP_V2_USERNAME", "UV_INDEX_CORP_V2_PASSWORD")
    assert "s3cret" not in repr(found) and "pw" not in "".join(i.url for i in found)


@pytest.mark.attack("secret echoed in an error")
def test_a_failed_job_reports_where_and_why_without_its_secrets(tmp_path) -> None:
    from packsync.hostside import jobreport
    from packsync.launch.worker_command import job_error, read_failures

    environ = {"SLURM_JOB_ID": "4242", "UV_INDEX_PRIVATE_PASSWORD": "hunter2-secret",
               "UV_INDEX_PRIVATE_USERNAME": "alice-the-user", "HOME": "/home/alice"}
    log = ("GET https://alice-the-user:hunter2-secret@pkgs.example/simple/x/ -> 401\n"
           "password was hunter2-secret")
    path = jobreport.write_failure(
        str(tmp_path), "key1", kind="store", message="lock sha256:ab is missing in /shared",
        log=log, args=["-m", "distributed.cli.dask_worker", "tcp://s:1", "--name", "w-3"],
        environ=environ)
    assert path and "hunter2" not in open(path).read() and "alice-the-user" not in open(path).read()
    (tmp_path / "jobs" / "key1" / "failed-other-1.json").write_text('{"format": 9}')  # skipped
    [failure] = read_failures(tmp_path / "jobs" / "key1")
    assert (failure.job, failure.worker, failure.kind) == ("4242", "w-3", "store")
    assert "https://***@pkgs.example/" in failure.log and "/home/alice" not in failure.log
    error = job_error([failure])
    assert "job 4242 (worker w-3) on " in str(error) and failure.host == error.host
    assert "mounted" in error.hint and error.log_tail == failure.log
    (tmp_path / "not-a-directory").write_text("")
    assert jobreport.write_failure(str(tmp_path / "not-a-directory"), "k", kind="disk",
                                   message="", log="", args=[], environ={}) == ""  # stderr only


def test_job_ids_and_worker_names_as_batch_systems_give_them() -> None:
    from packsync.hostside import jobreport

    assert jobreport.job_id({"PBS_JOBID": "17.server"}) == "17.server"
    assert jobreport.job_id({}) == ""
    assert jobreport.worker_name(["--nthreads", "2", "--name=SLURMCluster-0"]) == "SLURMCluster-0"
    assert jobreport.worker_name(["--name"]) == ""


def test_a_job_that_cannot_read_the_store_says_so_on_stderr_which_the_client_reads(
        tmp_path) -> None:
    import socket
    import subprocess
    import sys

    from packsync.hostside import loader
    from packsync.launch.jobqueue import failures_in_logs

    missing = str(tmp_path / "not-mounted" / "sha256" / "ab" / "ab")
    job = subprocess.run([sys.executable, "-I", "-c", loader.BOOTSTRAP, missing, "ab", "worker"],
                         capture_output=True, text=True, timeout=60)
    assert job.returncode == 1 and "is the shared store mounted" in job.stderr
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "dask-worker-17.err").write_text(job.stderr)
    (logs / "dask-worker-18.err").write_text("distributed.worker - INFO - Start worker\n")
    [failure] = failures_in_logs(str(logs), {"SLURMCluster-0": "17", "SLURMCluster-1": "18",
                                             "SLURMCluster-2": "19"})
    assert (failure.job, failure.worker, failure.host) == ("17", "SLURMCluster-0",
                                                          socket.gethostname())
    assert failure.message.startswith(missing + " is not there")
