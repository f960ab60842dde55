"""Conda records (real ones, written by rattler into a prefix) reconciled with the pip side;
names, redaction and the conda plan rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

rattler = pytest.importorskip("rattler")
rattler_build = pytest.importorskip("rattler_build")

from packsync.conda.channels import channel_secrets, live_channels, redact_channel  # noqa: E402
from packsync.conda.model import CondaEnvironment, CondaPackage  # noqa: E402
from packsync.conda.names import conda_names, pypi_name  # noqa: E402
from packsync.conda.plan import plan_conda  # noqa: E402
from packsync.conda.scan import scan_conda  # noqa: E402
from packsync.model import PlanOptions, Snapshot, Target  # noqa: E402
from packsync.scan.dists import scan_dists  # noqa: E402
from packsync.sources import CondaSource  # noqa: E402

SITE = "lib/python3.11/site-packages"


def _dist_files(stage: Path, name: str, version: str, installer: str = "conda") -> None:
    info = stage / SITE / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text(installer + "\n")
    (stage / SITE / name).mkdir()
    (stage / SITE / name / "__init__.py").write_text("")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n")


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conda")
    channel = root / "channel"
    for sub in ("linux-64", "noarch"):
        (channel / sub).mkdir(parents=True)
    packages = {
        "msgpack-python": ("msgpack", "1.0.8"),
        "toolz": ("toolz", "0.12.1"),
    }
    for conda_name, (dist, version) in packages.items():
        stage = root / conda_name
        _dist_files(stage, dist, version)
        rattler_build.assemble_package(conda_name, version, "linux-64", "py311_0",
                                       channel / "linux-64", files_dir=stage,
                                       compression_level=1)
    stage = root / "libgdal"
    (stage / "lib").mkdir(parents=True)
    (stage / "lib" / "libgdal.so").write_bytes(b"\x7fELF fake")
    rattler_build.assemble_package("libgdal", "3.8.4", "linux-64", "h2b4f5e1_0",
                                   channel / "linux-64", files_dir=stage, compression_level=1)
    asyncio.run(rattler.index.index_fs(channel))
    env = root / "env"

    async def make() -> None:
        records = await rattler.solve([channel.as_uri()], ["msgpack-python", "toolz", "libgdal"],
                                      platforms=["linux-64", "noarch"])
        await rattler.install(records, env, cache_dir=root / "pkgs", show_progress=False)
    asyncio.run(make())
    # pip over conda: toolz replaced by another version, as `pip install -U toolz` would
    site = env / SITE
    for path in sorted((site / "toolz-0.12.1.dist-info").iterdir()):
        path.unlink()
    (site / "toolz-0.12.1.dist-info").rmdir()
    info = site / "toolz-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toolz\nVersion: 1.0.0\n")
    (info / "INSTALLER").write_text("uv\n")
    (env / "conda-meta" / "history").write_text(
        "==> 2024-01-01 <==\n# cmd: conda install libgdal=3.8\n# update specs: [\"libgdal=3.8\"]\n"
    )
    return env


def test_conda_records_reconcile_with_the_pip_side(prefix: Path) -> None:
    dists = scan_dists([str(prefix / SITE)])
    found = scan_conda(str(prefix), dists)
    by_name = {d.key: d for d in found.dists}
    assert by_name["msgpack"].source == CondaSource(
        package="msgpack-python", channel=found.environment.channels[0]
    )
    assert by_name["toolz"].source.kind == "index" and by_name["toolz"].installer == "uv"
    assert any("toolz 1.0.0" in n and "toolz 0.12.1" in n for n in found.notes)
    env = found.environment
    assert env.subdir == "linux-64"
    assert {p.name for p in env.packages} == {"msgpack-python", "toolz", "libgdal"}
    assert env.get("libgdal").requested_spec == "libgdal=3.8"  # type: ignore[union-attr]
    assert env.get("msgpack-python").python_dists == ("msgpack",)  # type: ignore[union-attr]
    assert env.get("libgdal").python_dists == ()  # type: ignore[union-attr]
    assert live_channels(prefix) == {env.channels[0]: env.channels[0]}


def test_a_snapshot_with_conda_survives_json(prefix: Path) -> None:
    found = scan_conda(str(prefix), scan_dists([str(prefix / SITE)]))
    data = Snapshot(
        interpreter=_interpreter(), environment={}, prefix=str(prefix), dists=found.dists,
        conda=found.environment,
    ).to_dict()
    again = Snapshot.from_dict(data)
    assert again.conda == found.environment
    assert again.get("msgpack").source.kind == "conda"  # type: ignore[union-attr]
    data.pop("conda")
    assert Snapshot.from_dict(data).conda is None  # snapshots from before conda still load


def test_names_come_from_the_data_file() -> None:
    assert pypi_name("dask-core") == "dask"
    assert pypi_name("pytorch") == "torch"
    assert pypi_name("msgpack-python") == "msgpack"
    assert pypi_name("libgdal") == ""
    assert pypi_name("numpy") == "numpy"
    assert "dask-core" in conda_names("dask")
    assert conda_names("msgpack")[0] == "msgpack"


def test_channel_tokens_and_passwords_are_redacted() -> None:
    url = "https://user:pw0rd@repo.example.com/t/abc123tok/private"
    assert redact_channel(url) == "https://***@repo.example.com/t/***/private"
    assert channel_secrets([url]) == {"abc123tok", "pw0rd"}
    assert redact_channel("https://conda.anaconda.org/conda-forge") == (
        "https://conda.anaconda.org/conda-forge"
    )


def _package(name: str, version: str, *, noarch: str = "", dists: tuple[str, ...] = ()
             ) -> CondaPackage:
    return CondaPackage(name=name, version=version, build="h0_0", subdir="linux-64",
                        noarch=noarch, python_dists=dists)


ENV = CondaEnvironment(prefix="/p", subdir="linux-64", channels=("https://c/t/***/x",), packages=(
    _package("python", "3.11.7"),
    _package("libgdal", "3.8.4"),
    _package("dask-core", "2024.1.0", noarch="python", dists=("dask",)),
    _package("msgpack-python", "1.0.8", dists=("msgpack",)),
    _package("black", "24.1.0", dists=("black",)),
))
MANDATORY = ("dask", "distributed", "tornado", "cloudpickle", "msgpack")


def _specs(target: Target, options: PlanOptions | None = None) -> dict[str, str]:
    planned = plan_conda(ENV, target, options or PlanOptions(), mandatory=MANDATORY)
    return {d.name: d.spec if d.action == "pin" else "ignore" for d in planned.decisions}


def test_same_platform_pins_version_and_build() -> None:
    specs = _specs(Target(machine="x86_64", python="3.11.7"))
    assert specs["libgdal"] == "libgdal ==3.8.4 h0_0"
    assert specs["python"] == "python ==3.11.7 h0_0"


def test_other_platform_keeps_versions_by_the_plan_rules() -> None:
    specs = _specs(Target(machine="aarch64", python="3.11.7"))
    assert specs["python"] == "python ==3.11.7"
    assert specs["msgpack-python"] == "msgpack-python ==1.0.8"  # Dask needs msgpack
    assert specs["dask-core"] == "dask-core ==2024.1.0 h0_0"  # noarch: the same file
    assert specs["libgdal"] == "libgdal 3.8.*,<=3.8.4"
    strict = _specs(Target(machine="aarch64", python="3.11.7"), PlanOptions(strict=True))
    assert strict["libgdal"] == "libgdal ==3.8.4"


def test_ignore_takes_conda_or_pypi_names() -> None:
    options = PlanOptions.create(ignore=["black", "libgdal"])
    specs = _specs(Target(python="3.11.7"), options)
    assert specs["black"] == "ignore" and specs["libgdal"] == "ignore"
    assert specs["python"] != "ignore"


def _interpreter():  # type: ignore[no-untyped-def]
    from packsync.model import Interpreter
    return Interpreter(implementation="cpython", version="3.11.7", platform="linux-x86_64")


def test_a_solver_error_blames_the_packages_it_names_as_words() -> None:
    from packsync.conda.solve import _names_in

    message = ("Cannot solve: python_abi 3.11 requires libpython and python-dateutil; "
               "numpy-2.1.2-py311h_0.conda conflicts")
    assert _names_in(message, ["python ==3.11", "numpy ==2.1 h0[sha256=1]", "python_abi"]) == [
        "numpy", "python_abi"]
