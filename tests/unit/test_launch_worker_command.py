"""Which indexes a job must authenticate to itself (packsync.launch.worker_command)."""

from __future__ import annotations

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
