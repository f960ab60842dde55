"""Reading installed distributions from metadata directories made on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packsync.scan.dists import scan_dists
from packsync.sources import ArchiveSource, DirectorySource, EditableSource, IndexSource, VcsSource


def dist_info(site: Path, name: str, version: str, *, direct_url: dict | None = None,
              metadata: bytes | None = None, installer: str = "pip", requested: bool = False,
              requires: tuple[str, ...] = ()) -> Path:
    d = site / f"{name}-{version}.dist-info"
    d.mkdir(parents=True)
    if metadata is None:
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        metadata = ("\n".join(lines) + "\n\nLong description: Name: fake\n").encode()
    (d / "METADATA").write_bytes(metadata)
    (d / "INSTALLER").write_text(installer + "\n")
    if requested:
        (d / "REQUESTED").write_text("")
    if direct_url is not None:
        (d / "direct_url.json").write_text(json.dumps(direct_url))
    return d


def test_each_install_kind_is_read_from_direct_url(tmp_path):
    site = tmp_path / "site"
    dist_info(site, "plain", "1.0", requires=("idna>=2", "rich; extra == 'x'"), requested=True)
    dist_info(site, "edit", "0.1", direct_url={"url": "file:///src/edit", "dir_info": {"editable": True}})
    dist_info(site, "folder", "0.2", direct_url={"url": "file:///src/my%20folder", "dir_info": {}})
    dist_info(site, "wheelfile", "0.3", installer="uv",
              direct_url={"url": "file:///w/wheelfile-0.3-py3-none-any.whl", "archive_info": {"hash": "sha256=ab"}})
    dist_info(site, "fromgit", "0.4", direct_url={
        "vcs_info": {"commit_id": "c0ffee", "requested_revision": "main", "vcs": "git"},
        "url": "https://example.org/r.git"})
    dists = {d.name: d for d in scan_dists([str(site)])}
    assert isinstance(dists["plain"].source, IndexSource)
    assert dists["plain"].requested and dists["plain"].installer == "pip"
    assert dists["plain"].requires == ("idna>=2", "rich; extra == 'x'")
    assert dists["edit"].source == EditableSource(path="/src/edit")
    assert dists["folder"].source == DirectorySource(path="/src/my folder")
    assert dists["wheelfile"].source == ArchiveSource(
        url="file:///w/wheelfile-0.3-py3-none-any.whl", sha256="ab")
    assert dists["fromgit"].source == VcsSource(vcs="git", url="https://example.org/r.git",
                                                commit="c0ffee", requested_revision="main")


def test_first_copy_on_the_path_wins(tmp_path):
    dist_info(tmp_path / "a", "Same_Name", "2.0")
    dist_info(tmp_path / "b", "same-name", "1.0")
    (found,) = scan_dists([str(tmp_path / "a"), str(tmp_path / "b")])
    assert found.version == "2.0"


def test_dist_info_beats_egg_info_in_one_directory(tmp_path):
    dist_info(tmp_path, "pkg", "2.0")
    egg = tmp_path / "pkg-1.0.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: pkg\nVersion: 1.0\n")
    (found,) = scan_dists([str(tmp_path)])
    assert found.version == "2.0"


def test_broken_metadata_is_reported_not_raised(tmp_path):
    dist_info(tmp_path, "badver", "1.0", metadata=b"Name: badver\nVersion: not a version\n")
    dist_info(tmp_path, "latin", "1.0", metadata=b"Name: latin\nVersion: 1.0\nSummary: caf\xe9\n")
    (tmp_path / "nometa-1.0.dist-info").mkdir()
    dist_info(tmp_path, "badurl", "1.0")
    (tmp_path / "badurl-1.0.dist-info" / "direct_url.json").write_text("{not json")
    dists = {d.name: d for d in scan_dists([str(tmp_path)])}
    assert any("not a valid version" in p for p in dists["badver"].problems)
    assert any("UTF-8" in p for p in dists["latin"].problems)
    assert dists["nometa"].version == "1.0" and dists["nometa"].problems
    assert any("direct_url" in p for p in dists["badurl"].problems)


def test_missing_path_entries_are_skipped(tmp_path):
    assert scan_dists([str(tmp_path / "nope")]) == ()


@pytest.mark.attack("token as a Git URL's username")
def test_urls_in_direct_url_lose_their_secrets(tmp_path):
    from packsync.scan.dists import without_password

    assert without_password("git+https://user:pw@h.example/r.git") == "git+https://h.example/r.git"
    assert without_password("https://ghp_token@h.example/r.git") == "https://h.example/r.git"
    assert without_password("ssh://git@h.example/r.git") == "ssh://git@h.example/r.git"
    dist_info(tmp_path, "fromgit", "0.4", direct_url={
        "vcs_info": {"commit_id": "c0ffee", "vcs": "git"}, "url": "https://u:s3cret@h.example/r"})
    (found,) = scan_dists([str(tmp_path)])
    assert "s3cret" not in str(found.to_dict())
