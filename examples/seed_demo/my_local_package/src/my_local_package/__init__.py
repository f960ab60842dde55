"""A stand-in for the user's own package: it turns an API response into a result.

It reports where it ran, so the demo can show the work happened on a worker.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import httpx

__version__ = "0.3.0"


def process(response: httpx.Response) -> dict[str, Any]:
    """Sum the ``values`` of a JSON response, tagged with the process that did it."""
    response.raise_for_status()
    values = [float(v) for v in response.json()["values"]]
    return {
        "count": len(values),
        "sum": sum(values),
        "processed_by": f"my_local_package {__version__}",
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
