"""The configuration reference page, generated from ``packsync.yaml``.

``packsync.yaml`` documents each key with the comment right above it, as
``distributed.yaml`` does; this module turns those comments, the defaults and the
declared environment variables into ``docs/reference/configuration.md``, so the page
cannot drift from what packsync loads::

    python -m packsync.config_reference docs/reference/configuration.md
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from packsync.config import DECLARATIONS, DEFAULTS, VARIABLES
from packsync.errors import PacksyncError

PAGE = "docs/reference/configuration.md"

_INTRO = """\
# Configuration reference

<!-- Generated from src/packsync/packsync.yaml by
     `python -m packsync.config_reference docs/reference/configuration.md`:
     edit the YAML, not this page. -->

packsync reads its settings from Dask's configuration, under `packsync.`: every key below
has its default there as soon as packsync is imported. Set a key the Dask way:

- in a YAML file in `~/.config/dask/` (or the directory `DASK_CONFIG` names):

  ```yaml
  packsync:
    strict: true
  ```

- in Python: `dask.config.set({"packsync.strict": True})`;
- in the environment: `DASK_PACKSYNC__STRICT=true` (the key in capitals, `_` for `-`).

A few keys also have a `PACKSYNC_*` environment variable of their own, which wins over
Dask's configuration when it is set and not empty. An argument given in Python
(`packsync.Cluster(strict=True)`) or on the command line, where there is one, wins over
them all.
"""


def key_comments(text: str) -> dict[str, str]:
    """Each key of the ``packsync:`` section of ``text`` and the comment right above it."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.startswith(" "):
            inside = line.rstrip() == "packsync:" or (inside and not line.strip())
            pending = []
        elif inside and line.startswith("  # "):
            pending.append(line[4:].strip())
        elif inside and line.startswith("  ") and not line[2].isspace():
            key = line[2:].split(":", 1)[0]
            if not pending:
                raise PacksyncError(
                    f"packsync.{key} has no comment above it",
                    path=f"{DECLARATIONS}:{number}",
                    hint="describe every key in a comment right above it",
                )
            comments[key] = " ".join(pending)
            pending = []
    return comments


def markdown() -> str:
    """The reference page: every key (default, variables, meaning), then every variable."""
    meanings = key_comments(DECLARATIONS.read_text(encoding="utf-8"))
    undocumented = sorted(set(DEFAULTS) - set(meanings))
    if undocumented:
        raise PacksyncError(f"keys without a comment: {', '.join(undocumented)}",
                            path=str(DECLARATIONS), hint="keep each default on its key's line")
    overriding = {spec["overrides"]: name for name, spec in VARIABLES.items()
                  if "overrides" in spec}
    lines = [_INTRO, "## Keys", ""]
    for key, default in DEFAULTS.items():
        variables = [f"`{overriding[key]}`"] if key in overriding else []
        variables.append(f"`DASK_PACKSYNC__{key.upper().replace('-', '_')}`")
        lines += [
            f"### `packsync.{key}`", "",
            meanings[key], "",
            f"- Default: `{_flow(default)}`",
            f"- Environment: {', '.join(variables)}", "",
        ]
    lines += ["## Environment variables", "",
              "| Variable | Overrides | Default | Meaning |", "|---|---|---|---|"]
    for name, spec in VARIABLES.items():
        if not spec.get("internal"):
            overrides = spec.get("overrides")
            target = f"`packsync.{overrides}`" if overrides else "no key"
            default = "the key's default" if overrides else spec["default"]
            lines.append(f"| `{name}` | {target} | {default} | {spec['meaning']} |")
    lines += ["", "### Set by packsync", "",
              "packsync sets these for its own processes; they are not settings.", "",
              "| Variable | Meaning |", "|---|---|"]
    lines += [f"| `{name}` | {spec['meaning']} |"
              for name, spec in VARIABLES.items() if spec.get("internal")]
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    """A default as it is written in YAML (``null``, ``[]``, ``24h``...)."""
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


if __name__ == "__main__":
    page = markdown()
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)
