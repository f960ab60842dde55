"""Index discovery reads pip and uv configuration; stored forms carry no secret."""

from __future__ import annotations

from packsync.scan.indexes import DEFAULT_INDEX, discover, redact_url


def test_defaults_without_configuration(tmp_path):
    settings = discover({"HOME": str(tmp_path), "PIP_CONFIG_FILE": "/dev/null"}, prefix=str(tmp_path))
    assert settings.index_url == DEFAULT_INDEX
    assert settings.extra_index_urls == () and settings.find_links == ()


def test_pip_config_files_and_environment_in_pip_order(tmp_path):
    conf = tmp_path / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("[global]\nindex-url = https://user:s3cret@private.example/simple\n"
                    "extra-index-url = https://a.example/simple\n  https://b.example/simple\n"
                    "find-links = /wheels\n")
    env = {"HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path / "none"),
           "PIP_EXTRA_INDEX_URL": "https://c.example/simple",
           "UV_INDEX": "named=https://d.example/simple"}
    settings = discover(env, prefix=str(tmp_path))
    assert settings.index_url == "https://user:s3cret@private.example/simple"
    assert settings.extra_index_urls == ("https://c.example/simple", "https://d.example/simple")
    assert settings.find_links == ("/wheels",)
    stored = settings.redacted()
    assert stored.index_url == "https://***@private.example/simple"
    assert stored.origins[stored.index_url] == str(conf)
    assert stored.origins["https://c.example/simple"] == "$PIP_EXTRA_INDEX_URL"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(stored.to_dict())
    assert settings.uv_environment()["UV_INDEX_URL"].startswith("https://user:s3cret@")


def test_uv_default_index_overrides_pip():
    settings = discover({"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": "https://pip.example",
                         "UV_DEFAULT_INDEX": "https://uv.example"})
    assert settings.index_url == "https://uv.example"


def test_redact_url():
    assert redact_url("https://u:p@h.example:8080/s") == "https://***@h.example:8080/s"
    assert redact_url("https://token@h.example/s") == "https://***@h.example/s"
    assert redact_url("https://h.example/s") == "https://h.example/s"
