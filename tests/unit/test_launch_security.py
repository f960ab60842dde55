"""Who may connect to a cluster (launch/security.py), and start errors Dask code catches."""

from __future__ import annotations

import pickle

import dask.config
import pytest
from distributed.security import Security

from packsync.errors import LaunchError, ProcessStartError, StartTimeoutError
from packsync.launch.local import EnvWorker
from packsync.launch.security import (
    cluster_security,
    inherited_config,
    temporary,
    tls_options,
)


def test_every_cluster_gets_credentials_of_its_own_unless_told_otherwise():
    first, second = cluster_security(None), cluster_security(None)
    assert first is not None and second is not None
    assert first.require_encryption and first.tls_client_key != second.tls_client_key
    assert tls_options(first) == {"security": first, "protocol": "tls"}
    assert cluster_security(False) is None and tls_options(None) == {}
    with dask.config.set({"packsync.tls": False}):
        assert cluster_security(None) is None
        assert cluster_security(True) is not None  # the argument wins
    mine = Security()
    assert cluster_security(mine) is mine and tls_options(mine) == {"security": mine}
    with pytest.raises(TypeError, match="security="):
        cluster_security("yes")  # type: ignore[arg-type]
    with dask.config.set({"packsync.tls": "maybe"}), pytest.raises(LaunchError,
                                                                    match="packsync.tls"):
        cluster_security(None)


def test_temporary_credentials_are_an_ec_key_that_a_tls_handshake_accepts():
    import datetime
    import socket
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    made = temporary()
    key = serialization.load_pem_private_key(made.tls_worker_key.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate(made.tls_ca_file.encode())
    # valid for a host whose clock lags a little behind this machine's
    lagging = datetime.datetime.now(tz=datetime.timezone.utc) - datetime.timedelta(minutes=2)
    assert cert.not_valid_before_utc <= lagging
    server_context = made.get_listen_args("worker")["ssl_context"]
    client_context = made.get_connection_args("client")["ssl_context"]
    left, right = socket.socketpair()
    accepted: list[str] = []

    def serve() -> None:
        with server_context.wrap_socket(left, server_side=True) as tls:
            accepted.append(str(tls.version()))

    thread = threading.Thread(target=serve)
    thread.start()
    with client_context.wrap_socket(right, server_hostname="dask-internal") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    thread.join(10)
    assert accepted


@pytest.mark.parametrize(("error", "dask_type"), [(ProcessStartError, RuntimeError),
                                                   (StartTimeoutError, TimeoutError)])
def test_start_errors_are_what_dask_code_catches_and_stay_picklable(error, dask_type):
    raised = error("the Dask worker 1 exited", host="node1", log_tail="boom", hint="look")
    assert isinstance(raised, dask_type) and isinstance(raised, LaunchError)
    again = pickle.loads(pickle.dumps(raised))
    assert type(again) is error and str(again) == str(raised) and again.host == "node1"


def test_a_worker_reads_its_addresses_from_its_log():
    worker = EnvWorker("tls://127.0.0.1:8786", python="/env/bin/python", name=0, nthreads=3,
                       memory_limit="2GB")
    assert (worker.nthreads, worker.memory_limit, worker.process) == (3, "2GB", None)
    worker.read_addresses("distributed.nanny - INFO -         Start Nanny at: "
                          "'tls://127.0.0.1:40001'")
    worker.read_addresses("distributed.worker - INFO -       Start worker at: "
                          "     tls://127.0.0.1:40002")
    assert (worker.address, worker.worker_address) == ("tls://127.0.0.1:40001",
                                                       "tls://127.0.0.1:40002")
    alone = EnvWorker("tcp://127.0.0.1:8786", python="/env/bin/python", name=1, nanny=False)
    alone.read_addresses("distributed.worker - INFO -       Start worker at: "
                         "tcp://127.0.0.1:40003")
    assert alone.address == alone.worker_address == "tcp://127.0.0.1:40003"


def test_an_option_that_cannot_travel_is_named_not_a_pickling_trace():
    import threading

    worker = EnvWorker("tcp://127.0.0.1:8786", python="/env/bin/python", name=2,
                       lock=threading.Lock())
    with pytest.raises(LaunchError, match="an option of the Dask worker 2 cannot be sent"):
        worker.payload()


@pytest.mark.attack("store credentials sent to workers")
def test_workers_inherit_the_config_without_the_store_credentials():
    import dask

    options = {"key": "AKIAEXAMPLE", "secret": "store-secret-value"}
    with dask.config.set({"packsync.store-options": options,
                          "distributed.scheduler.allowed-failures": 7}):
        inherited = dask.config.deserialize(inherited_config())
        assert dask.config.get("packsync.store-options") == options  # the client keeps them
    assert "store-options" not in inherited["packsync"]
    assert "store-secret-value" not in inherited_config()
    assert inherited["distributed"]["scheduler"]["allowed-failures"] == 7  # the rest travels


def test_hosts_get_the_contents_of_the_tls_files_not_their_paths(tmp_path):
    made = Security.temporary()
    (tmp_path / "ca.pem").write_text(made.tls_ca_file)
    (tmp_path / "key.pem").write_text(made.tls_client_key)
    files = Security(require_encryption=True, tls_ca_file=str(tmp_path / "ca.pem"),
                     tls_client_key=str(tmp_path / "key.pem"),
                     tls_client_cert=made.tls_client_cert)
    here = tls_options(files)["security"]
    sent = tls_options(files, remote=True)["security"]
    assert here is files and sent is not files
    assert (sent.tls_ca_file, sent.tls_client_key) == (made.tls_ca_file, made.tls_client_key)
    assert sent.tls_client_cert == made.tls_client_cert and sent.require_encryption
    assert files.tls_ca_file == str(tmp_path / "ca.pem")  # the client's own is unchanged
    (tmp_path / "key.pem").unlink()
    with pytest.raises(LaunchError, match="tls_client_key"):
        tls_options(files, remote=True)
