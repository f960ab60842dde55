"""Every packsync setting, read in one place.

The keys and their defaults are declared once, in ``packsync.yaml`` beside this module,
and added to Dask's defaults on import (as distributed adds ``distributed.yaml``), so
``dask.config.get("packsync.strict")``, a YAML file and ``DASK_PACKSYNC__STRICT=true``
all work. A setting comes from, in order: the caller's argument, the ``PACKSYNC_*``
variable declared to override its key (when set and not empty), Dask's configuration,
the declared default. Each accessor checks the value and names the key (or variable)
of a bad one.

Two modules read a ``PACKSYNC_*`` variable themselves, because they run where packsync
is not installed: ``launch/hosts/hostside.py`` (standard library only, on hosts) and
``codesync/plugin.py`` (pickled by value to workers).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.config
import platformdirs
import yaml
from dask.utils import parse_bytes, parse_timedelta

from packsync.errors import (
    LaunchError,
    MaterializeError,
    PacksyncError,
    PlanError,
    ScanError,
    StoreError,
)
from packsync.model import ACCELERATOR, FAIL_ON_LEVELS

DECLARATIONS = Path(__file__).with_name("packsync.yaml")


def _declarations() -> dict[str, Any]:
    # the C loader when PyYAML has it: loading must not slow ``import packsync`` down
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with DECLARATIONS.open(encoding="utf-8") as file:
        declared: dict[str, Any] = yaml.load(file, Loader=loader)
    return declared


_DECLARED = _declarations()
DEFAULTS: Mapping[str, Any] = _DECLARED["packsync"]
"""Every key (without the ``packsync.`` prefix) and its default."""
VARIABLES: Mapping[str, Mapping[str, Any]] = _DECLARED["environment"]
"""Every ``PACKSYNC_*`` environment variable packsync reads, and what it is for."""
_OVERRIDES = {spec["overrides"]: name for name, spec in VARIABLES.items() if "overrides" in spec}

dask.config.update_defaults({"packsync": copy.deepcopy(dict(DEFAULTS))})


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The root of environments, locks and build records on this machine."""
    chosen = (
        explicit
        or _path("cache-dir", MaterializeError)
        or platformdirs.user_cache_dir("packsync")
    )
    return Path(chosen).expanduser().absolute()


def store_url(explicit: str | os.PathLike[str] | None, cache: Path) -> str:
    """The artifact store: the argument, the setting, or ``<cache>/store``."""
    return os.fspath(explicit or _path("store", StoreError) or cache / "store")


def store_expiry(explicit: str | float | None = None) -> float:
    """Seconds a store object is kept after its last use.

    The argument or the setting (an unset or empty one: the declared 24 hours); a number
    of seconds or a duration such as ``"36h"`` or ``"7 days"``.
    """
    if explicit is not None:
        return _duration(explicit, "the store expiry", StoreError)
    value, source = _setting("store-expiry")
    return _duration(value or DEFAULTS["store-expiry"], source, StoreError)


def cache_expiry(explicit: str | float | None = None) -> float:
    """Seconds an environment of the cache is kept after its last use (24 h declared)."""
    if explicit is not None:
        return _duration(explicit, "the cache expiry", MaterializeError)
    value, source = _setting("cache-expiry")
    return _duration(value or DEFAULTS["cache-expiry"], source, MaterializeError)


def cache_max_size(explicit: str | int | None = None) -> int | None:
    """The most bytes the cache's environments may take, or None for no cap."""
    value, source = (explicit, "the cache size cap") if explicit is not None else (
        _setting("cache-max-size"))
    if value is None or value == "":
        return None
    try:
        size = int(parse_bytes(value))
    except (ValueError, TypeError) as error:
        raise _bad(MaterializeError, source, value, "a size", "bytes or a size such as '20GB'"
                   ) from error
    if size <= 0:
        raise _bad(MaterializeError, source, value, "a positive size", "a size such as '20GB'")
    return size


def store_options() -> dict[str, Any]:
    """Options of the fsspec filesystem of a store URL (``storage_options=`` win over them)."""
    value, source = _setting("store-options")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(StoreError, source, value, "a mapping of fsspec options",
                   "{endpoint_url: 'https://...'}")
    return dict(value)


def ignore() -> tuple[str, ...]:
    """Distributions not to sync."""
    return _names("ignore", PlanError) or ()


def only() -> tuple[str, ...] | None:
    """The only distributions to sync (besides the mandatory ones), or None for all."""
    return _names("only", PlanError)


def strict() -> bool:
    """Exact versions even for another platform; dependency conflicts stop the launch."""
    return _flag("strict", PlanError)


def relax_same_platform() -> bool:
    """Whether a same-platform pin the indexes lack may become the nearest version there."""
    return _flag("relax-same-platform", PlanError)


def lock_environment() -> str:
    """The environment of the project's ``pixi.lock`` the workers get ("": this one's)."""
    value, source = _setting("lock-environment")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(PlanError, source, value, "a pixi environment name", "a name such as cuda")
    return value


def accelerator() -> str | None:
    """The workers' accelerator (``cpu``, ``cu124``, ``rocm6.2``), or None: as here."""
    value, source = _setting("accelerator")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or ACCELERATOR.fullmatch(value) is None:
        raise _bad(PlanError, source, value, "an accelerator",
                   "cpu, a CUDA version such as cu124, or a ROCm version such as rocm6.2")
    return value


def accelerator_index() -> str:
    """The index of accelerator variants, ``{accelerator}`` standing for the accelerator."""
    value, source = _setting("accelerator-index")
    if not isinstance(value, str) or "{accelerator}" not in value:
        raise _bad(PlanError, source, value, "an index URL",
                   "a URL in which {accelerator} stands for the accelerator")
    return value


def fail_on() -> str:
    """Which plan problems stop the launch."""
    value, source = _setting("fail-on")
    if not isinstance(value, str) or value not in FAIL_ON_LEVELS:
        raise _bad(PlanError, source, value, "a level packsync knows", " or ".join(FAIL_ON_LEVELS))
    return value


def include() -> tuple[str, ...]:
    """Globs of working-directory files to ship besides its importable modules."""
    return _names("include", ScanError) or ()


def exclude() -> tuple[str, ...]:
    """Globs of working-directory files never to ship."""
    return _names("exclude", ScanError) or ()


def max_code_size() -> int:
    """The most working-directory code, in bytes, that a launch ships."""
    value, source = _setting("max-code-size")
    if value is None:
        value = DEFAULTS["max-code-size"]
    try:
        return int(parse_bytes(value))
    except (ValueError, TypeError) as error:
        raise _bad(ScanError, source, value, "a size", "bytes or a size such as '100MB'") from error


def watch() -> bool:
    """Sync changed working-directory code to the running cluster on every save."""
    return _flag("watch", LaunchError)


def watch_interval() -> float:
    """Seconds between two looks for changed working-directory files."""
    value, source = _setting("watch-interval")
    return _duration(value, source, LaunchError)


def watch_method() -> str:
    """How ``watch`` sees saves: ``auto`` (inotify where it can) or ``polling``."""
    return _choice("watch-method", ("auto", "polling"), LaunchError)


def host_install() -> str:
    """How SSH hosts get the environment: ``artifact`` or ``index``."""
    return _choice("host-install", ("artifact", "index"), LaunchError)


def builder() -> str:
    """Who builds the archive SSH hosts unpack: ``client``, ``first-host`` or a host name."""
    value, source = _setting("builder")
    if not isinstance(value, str) or not value:
        raise _bad(LaunchError, source, value, "'client', 'first-host' or a host name",
                   "a string")
    return value


def scheduler_process() -> bool:
    """Run the scheduler as a process of its own in the environment."""
    return _flag("scheduler-process", LaunchError)


def shared_nannies() -> bool:
    """Run the nannies of the first local workers in one shared process."""
    return _flag("shared-nannies", LaunchError)


def tls() -> bool:
    """Authenticate and encrypt a cluster's connections with credentials of its own."""
    return _flag("tls", LaunchError)


def netrc_default() -> bool:
    """Send a netrc's ``default`` entry to the indexes that have no ``machine`` line."""
    value, _ = _setting("netrc-default")
    if isinstance(value, str):  # $PACKSYNC_NETRC_DEFAULT, read as worker commands read it
        from packsync.hostside.jobs import netrc_default_asked

        return netrc_default_asked(value)
    return _flag("netrc-default", ScanError)


# Keys that stay with the client: the store's options may hold its credentials, and only
# the client writes to the store.
CLIENT_ONLY = ("store-options",)


def inheritable() -> dict[str, Any]:
    """Dask's whole configuration as the cluster's processes inherit it: without the
    ``CLIENT_ONLY`` keys."""
    inherited: dict[str, Any] = copy.deepcopy(dask.config.global_config)
    ours = inherited.get("packsync")
    if isinstance(ours, dict):
        for key in CLIENT_ONLY:
            ours.pop(key, None)
            ours.pop(key.replace("-", "_"), None)
    return inherited


def uv_path() -> str | None:
    """The uv executable to run instead of the one the ``uv`` package ships, if any."""
    return os.environ.get("PACKSYNC_UV") or None


def _setting(key: str) -> tuple[Any, str]:
    """The value of ``packsync.<key>`` and where it came from: a variable or the key."""
    variable = _OVERRIDES.get(key)
    if variable is not None and os.environ.get(variable):
        return os.environ[variable], variable
    return dask.config.get(f"packsync.{key}", default=DEFAULTS[key]), f"packsync.{key}"


def _path(key: str, error: type[PacksyncError]) -> str | None:
    value, source = _setting(key)
    if value is None or isinstance(value, (str, os.PathLike)):
        return None if value is None else os.fspath(value)
    raise _bad(error, source, value, "a path or URL", "a string")


def _choice(key: str, choices: tuple[str, ...], error: type[PacksyncError]) -> str:
    value, source = _setting(key)
    if value not in choices:
        raise _bad(error, source, value, " or ".join(repr(c) for c in choices),
                   " or ".join(choices))
    return str(value)


def _flag(key: str, error: type[PacksyncError]) -> bool:
    value, source = _setting(key)
    if not isinstance(value, int):  # bool is an int; so is DASK_PACKSYNC__X=1
        raise _bad(error, source, value, "true or false", "true or false")
    return bool(value)


def _names(key: str, error: type[PacksyncError]) -> tuple[str, ...] | None:
    """A list setting; a comma-separated string works too."""
    value, source = _setting(key)
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _bad(error, source, value, "a list of names",
               "a list of strings, or one comma-separated string")


def _duration(value: Any, source: str, error: type[PacksyncError]) -> float:
    try:
        seconds = parse_timedelta(value, default="seconds")
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad(error, source, value, "a duration",
                   "seconds or a duration such as '24h' or '7 days'") from exc
    if seconds is None or seconds < 0:
        raise _bad(error, source, value, "a positive duration", "a duration such as '24h'")
    return float(seconds)


def _bad(
    error: type[PacksyncError], source: str, value: Any, expected: str, example: str
) -> PacksyncError:
    return error(f"{source} is {value!r}, not {expected}", hint=f"give {source} as {example}")
