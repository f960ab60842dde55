"""A file-backed keyring for tests: ``PYTHON_KEYRING_BACKEND=file_keyring.FileKeyring`` with
``FILE_KEYRING_PATH`` naming a JSON file ``{service: {username: password}}``.

Like pip's keyring use, it answers ``get_credential(service, None)`` with the first
credential stored for the service (the system backends here need a desktop session).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.credentials import SimpleCredential


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def _data(self) -> dict[str, dict[str, str]]:
        path = Path(os.environ["FILE_KEYRING_PATH"])
        return json.loads(path.read_text()) if path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._data().get(service, {}).get(username)

    def get_credential(self, service: str, username: str | None) -> SimpleCredential | None:
        entries = self._data().get(service, {})
        if username is not None:
            secret = entries.get(username)
            return SimpleCredential(username, secret) if secret else None
        for user, secret in entries.items():
            return SimpleCredential(user, secret)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._data()
        data.setdefault(service, {})[username] = password
        Path(os.environ["FILE_KEYRING_PATH"]).write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._data()
        data.get(service, {}).pop(username, None)
        Path(os.environ["FILE_KEYRING_PATH"]).write_text(json.dumps(data))
