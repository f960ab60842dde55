"""A peer without a cluster's credentials, as client scripts of the tests play it.

``PEER`` is source for a client script (it runs in the client venv): ``refused(address)``
tries a Dask client without the credentials (or with ``security=`` others), and
``as_nobody(address)`` has another user of this machine (``nobody``, with the system's
Python and only the standard library) try a TLS connection without a certificate; given
the cluster's ``security``, the same with its certificate: the control showing that
nobody reaches the port and that the certificate alone makes the difference. Each says
how it was kept out, or that it was not.
"""

from __future__ import annotations

PEER = '''
import os, shutil, subprocess, tempfile

PROBE = """
import socket, ssl, sys
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
if len(sys.argv) > 3:
    context.load_cert_chain(sys.argv[3], sys.argv[4])
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            # a refused certificate arrives as an alert on the first read; an accepted
            # one, as the server's first Dask message
            print("answered" if tls.recv(1) else "closed")
except (OSError, ssl.SSLError) as error:
    print("refused", type(error).__name__)
"""


def refused(address, **kwargs):
    from distributed import Client
    try:
        with Client(address, timeout="5s", **kwargs) as peer:
            peer.submit(os.getpid).result()
    except Exception as error:
        return type(error).__name__
    return False


def as_nobody(address, security=None):
    """What user nobody gets, with the certificate and key of ``security`` if given."""
    host, port = address.split("://")[1].rsplit(":", 1)
    files = []
    readable = tempfile.mkdtemp()
    try:
        if security is not None:  # a control: the credentials, readable by nobody
            os.chmod(readable, 0o755)
            for name in ("cert", "key"):
                path = os.path.join(readable, name)
                with open(path, "w") as handle:
                    handle.write(getattr(security, f"tls_client_{name}"))
                os.chmod(path, 0o644)
                files.append(path)
        return subprocess.run(["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
                               PROBE, host, port, *files],
                              capture_output=True, text=True).stdout.strip()
    finally:
        shutil.rmtree(readable)
'''
