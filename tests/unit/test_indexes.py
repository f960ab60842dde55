"""Index discovery reads pip and uv configuration like they do; stored forms carry no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from packsync.scan.index_config import uv_config_files
from packsync.scan.indexes import DEFAULT_INDEX, discover


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    (tmp_path / "project" / "sub").mkdir(parents=True)
    return tmp_path


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """No file of this machine: HOME, XDG dirs and pip's file all point into the test's tree."""
    return {"HOME": str(home / "home"), "XDG_CONFIG_DIRS": str(home / "xdg"),
            "PIP_CONFIG_FILE": "/dev/null", **extra}


def find(home: Path, **extra: str):  # type: ignore[no-untyped-def]
    return discover(env_for(home, **extra), prefix=str(home / "prefix"),
                    cwd=home / "project" / "sub")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_configuration(home):
    settings = find(home)
    assert settings.index_url == DEFAULT_INDEX
    assert settings.extra_index_urls == () and settings.find_links == ()
    assert settings.index_strategy == "unsafe-best-match"
    assert settings.redacted().origins == {DEFAULT_INDEX: "default"}


def test_pip_files_in_pip_order_and_variables_win(home):
    user = write(home / "home" / ".config" / "pip" / "pip.conf",
                 "[global]\nindex-url = https://user:s3cret@private.example/simple\n"
                 "extra-index-url = https://a.example/simple\n  https://b.example/simple\n"
                 "find-links = /wheels\n")
    write(home / "prefix" / "pip.conf", "[install]\nfind-links = /site-wheels\n")
    env = env_for(home, PIP_EXTRA_INDEX_URL="https://c.example/simple")
    del env["PIP_CONFIG_FILE"]
    settings = discover(env, prefix=str(home / "prefix"), cwd=home / "project")
    assert settings.index_url == "https://user:s3cret@private.example/simple"
    assert settings.extra_index_urls == ("https://c.example/simple",)  # the variable replaces
    assert settings.find_links == ("/site-wheels",)  # the site file beats the user file
    stored = settings.redacted()
    assert stored.index_url == "https://***@private.example/simple"
    assert stored.origins[stored.index_url] == str(user)
    assert stored.origins["https://c.example/simple"] == "$PIP_EXTRA_INDEX_URL"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(stored.to_dict())


def test_pip_config_file_variable_skips_user_files(home):
    write(home / "home" / ".config" / "pip" / "pip.conf",
          "[global]\nextra-index-url = https://user.example/simple\n")
    explicit = write(home / "explicit.conf", "[global]\nindex-url = https://env.example/simple\n")
    settings = find(home, PIP_CONFIG_FILE=str(explicit))
    assert settings.index_url == "https://env.example/simple"
    assert settings.extra_index_urls == ()


def test_project_pyproject_found_upward_with_named_indexes(home):
    pyproject = write(home / "project" / "pyproject.toml", """
[project]
name = "x"
[tool.uv]
extra-index-url = ["https://extra.example/simple"]
find-links = ["https://links.example/"]
[[tool.uv.index]]
name = "internal"
url = "https://internal.example/simple"
[[tool.uv.index]]
name = "pinned-only"
url = "https://explicit.example/simple"
explicit = true
[[tool.uv.index]]
name = "corp"
url = "https://corp.example/simple"
default = true
[[tool.uv.index]]
name = "flat"
url = "https://flat.example/wheels/"
format = "flat"
""")
    settings = find(home)
    assert settings.index_url == "https://corp.example/simple"
    assert settings.extra_index_urls == (
        "https://internal.example/simple", "https://extra.example/simple",
        "https://explicit.example/simple",  # explicit indexes last: uv pip has no pins
    )
    assert settings.find_links == ("https://flat.example/wheels/", "https://links.example/")
    assert {i.name for i in settings.indexes} >= {"internal", "corp", "pinned-only", "flat"}
    assert set(settings.origins.values()) == {str(pyproject)}
    assert settings.redacted().origins["https://explicit.example/simple"].endswith("(explicit)")


def test_pyproject_without_tool_uv_is_skipped_and_uv_toml_beats_it(home):
    write(home / "project" / "sub" / "pyproject.toml", "[project]\nname = 'inner'\n")
    write(home / "project" / "pyproject.toml", "[tool.uv]\nindex-url = 'https://py.example/s'\n")
    uv_toml = write(home / "project" / "uv.toml", "index-url = 'https://uvtoml.example/s'\n")
    assert uv_config_files(env_for(home), home / "project" / "sub") == [uv_toml]
    assert find(home).index_url == "https://uvtoml.example/s"


def test_project_then_user_then_system_scalars_first_lists_concatenated(home):
    write(home / "project" / "uv.toml",
          "extra-index-url = ['https://project.example/s']\nindex-strategy = 'first-index'\n")
    write(home / "home" / ".config" / "uv" / "uv.toml",
          "index-url = 'https://user.example/s'\nextra-index-url = ['https://user-extra.example/s']\n"
          "index-strategy = 'unsafe-first-match'\n")
    write(home / "xdg" / "uv" / "uv.toml",
          "index-url = 'https://system.example/s'\nfind-links = ['/system-wheels']\n")
    settings = find(home)
    assert settings.index_url == "https://user.example/s"
    assert settings.index_strategy == "first-index"
    assert settings.extra_index_urls == ("https://project.example/s", "https://user-extra.example/s")
    assert settings.find_links == ("/system-wheels",)


def test_uv_config_file_variable_replaces_discovery_and_no_config_disables_it(home):
    write(home / "project" / "uv.toml", "index-url = 'https://project.example/s'\n")
    chosen = write(home / "chosen.toml", "[[index]]\nurl = 'https://chosen.example/s'\n"
                                         "default = true\n")
    settings = find(home, UV_CONFIG_FILE=str(chosen))
    assert settings.index_url == "https://chosen.example/s"
    assert settings.origins[settings.index_url] == str(chosen)
    assert find(home, UV_NO_CONFIG="1").index_url == DEFAULT_INDEX


def test_uv_variables_beat_uv_files_and_come_first_in_lists(home):
    write(home / "project" / "uv.toml", "index-url = 'https://file.example/s'\n"
                                        "extra-index-url = ['https://file-extra.example/s']\n")
    settings = find(home, UV_INDEX="team=https://team.example/s https://anon.example/s",
                    UV_EXTRA_INDEX_URL="https://env-extra.example/s",
                    UV_INDEX_URL="https://old.example/s",
                    UV_DEFAULT_INDEX="https://env-default.example/s",
                    UV_FIND_LINKS="/a,/b")
    assert settings.index_url == "https://env-default.example/s"  # UV_DEFAULT_INDEX first
    assert settings.origins[settings.index_url] == "$UV_DEFAULT_INDEX"
    assert settings.extra_index_urls == (
        "https://team.example/s", "https://anon.example/s", "https://env-extra.example/s",
        "https://file-extra.example/s",
    )
    assert [i.name for i in settings.indexes if i.origin == "$UV_INDEX"] == ["team", ""]
    assert settings.find_links == ("/a", "/b")
    assert find(home, UV_INDEX_URL="https://old.example/s").index_url == "https://old.example/s"


def test_pip_default_displaced_by_uv_default_stays_as_an_extra_index(home):
    settings = find(home, PIP_INDEX_URL="https://pip.example/simple",
                    PIP_EXTRA_INDEX_URL="https://pip-extra.example/simple",
                    UV_DEFAULT_INDEX="https://uv.example/simple",
                    UV_INDEX="https://uv-extra.example/simple https://pip-extra.example/simple/")
    assert settings.index_url == "https://uv.example/simple"
    assert settings.extra_index_urls == (
        "https://uv-extra.example/simple", "https://pip-extra.example/simple/",  # deduplicated
        "https://pip.example/simple",
    )
    assert settings.origins["https://pip.example/simple"] == "$PIP_INDEX_URL"


def test_pip_default_used_when_uv_names_none(home):
    settings = find(home, PIP_INDEX_URL="https://pip.example/simple",
                    UV_INDEX="https://uv-extra.example/simple")
    assert settings.index_url == "https://pip.example/simple"
    assert settings.extra_index_urls == ("https://uv-extra.example/simple",)


def test_uv_environment_carries_indexes_and_a_redacted_description(home):
    settings = find(home, UV_INDEX="https://tok3n-value@t.example/s",
                    PIP_INDEX_URL="https://u:pw-secret@p.example/s", UV_FIND_LINKS="/w")
    env = settings.uv_environment()
    assert env["UV_DEFAULT_INDEX"] == "https://u:pw-secret@p.example/s"
    assert env["UV_INDEX"] == "https://tok3n-value@t.example/s"
    assert env["UV_FIND_LINKS"] == "/w"
    assert env["UV_INDEX_STRATEGY"] == "unsafe-best-match"
    description = env["PACKSYNC_INDEX_SOURCES"]
    assert "pw-secret" not in description and "tok3n-value" not in description
    assert '"credentials": "URL"' in description


def test_sources_pin_packages_to_named_indexes(home):
    write(home / "project" / "pyproject.toml", """\
[project]
name = "x"
[[tool.uv.index]]
name = "pytorch-cpu"
url = "https://download.pytorch.org/whl/cpu"
explicit = true
[tool.uv.sources]
Torch = [{ index = "pytorch-cpu", marker = "sys_platform == 'linux'" }]
torchvision = { index = "pytorch-cpu" }
mylib = { path = "../mylib", editable = true }
""")
    settings = find(home)
    assert [(p.package, p.index, p.marker) for p in settings.pins] == [
        ("torch", "pytorch-cpu", "sys_platform == 'linux'"),
        ("torchvision", "pytorch-cpu", ""),
    ]
    alone = settings.only("pytorch-cpu")
    assert alone is not None and alone.index_url == "https://download.pytorch.org/whl/cpu"
    assert alone.extra_index_urls == () and alone.pins == ()
    assert settings.only("nowhere") is None
