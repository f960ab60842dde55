"""The notebook summary of a cluster: what was synced, relaxed, verified, and the code version."""

from __future__ import annotations

from pathlib import Path

from packsync.launch.summary import SyncSummary, not_ready_html, summarize
from packsync.launch.verify import Difference, Verification
from packsync.lock.lockfile import Lock
from packsync.materialize.environments import Environment
from packsync.model import Decision, Interpreter, Plan, Relaxation, Snapshot, Target
from packsync.pipeline import Locked, Prepared
from packsync.scan.indexes import IndexSettings
from packsync.sources import DirectorySource, EditableSource
from packsync.store import open_store

RELAXED = Relaxation(name="numpy", local_version="2.1.0", specifier="==2.0.*", version="2.0.2",
                     reason="no numpy 2.1.0 wheel for linux-aarch64")


def prepared(tmp_path: Path, relaxed: tuple[Relaxation, ...] = ()) -> Prepared:
    decisions = (
        Decision(name="dask", local_version="2026.8.0", action="pin",
                 specifier="==2026.8.0", reason="mandatory"),
        Decision(name="httpx", local_version="0.28.1", action="pin",
                 specifier="==0.28.1", reason="installed"),
        Decision(name="mylib", local_version="0.1.0", action="build", specifier="",
                 reason="editable", source=EditableSource(path="/src/mylib")),
        Decision(name="tool", local_version="1.0", action="build", specifier="",
                 reason="local directory", source=DirectorySource(path="/src/tool")),
        Decision(name="pip", local_version="25.0", action="ignore", specifier="",
                 reason="installer"),
    )
    lock = Lock(text="", digest="ab" * 32, python="3.11.7", local_wheels=(),
                versions={"dask": "2026.8.0", "httpx": "0.28.1", "mylib": "0.1.0",
                          "tool": "1.0", "anyio": "4.0"},
                relaxed=relaxed)
    snapshot = Snapshot(interpreter=Interpreter(implementation="cpython", version="3.11.7",
                                                platform="linux-x86_64"),
                        environment={}, prefix="/venv", dists=())
    locked = Locked(snapshot=snapshot, plan=Plan(target=Target(), decisions=decisions),
                    lock=lock, store=open_store(str(tmp_path / "store")), cache=tmp_path,
                    settings=IndexSettings())
    environment = Environment(path=tmp_path / "envs" / "abab", digest=lock.digest,
                              cache_hit=True)
    return Prepared(locked=locked, environment=environment, code=None, code_dir=None)


def test_summary_counts_by_install_kind(tmp_path):
    summary = summarize(prepared(tmp_path), verify=True, verification=Verification(),
                        code_id="c0ffee" * 10, code_files=3, watch="watchfiles")
    assert summary.kinds == (("index", 2), ("editable", 1), ("directory", 1))
    assert summary.ignored == 1 and summary.packages == 5 and summary.reused
    html = summary.to_html()
    assert "index 2 · editable 1 · directory 1 (not synced: 1)" in html
    assert f'title="{"ab" * 32}"' in html and "abababababab</code>" in html
    assert "Python 3.11.7 · linux-x86_64 · 5 packages · reused from the cache" in html
    assert "none: every version is the client's" in html
    assert "no worker checked yet" in html
    assert "version <code>c0ffeec0ffee</code> · 3 files · synced on save (watchfiles)" in html


def test_summary_shows_relaxed_pins(tmp_path):
    html = summarize(prepared(tmp_path, (RELAXED,)), verify=True, verification=Verification(),
                     code_id="empty", code_files=0, watch="").to_html()
    assert ("<li>numpy 2.1.0 → 2.0.2 (==2.0.*): no numpy 2.1.0 wheel for linux-aarch64</li>"
            in html)
    assert "0 files · synced by sync()" in html


def summary(**changes: object) -> SyncSummary:
    fields: dict[str, object] = dict(
        digest="d" * 64, python="3.11.7", platform="linux-x86_64", packages=1, kinds=(),
        ignored=0, relaxed=(), environment="/envs/x", reused=False, verify=True,
        verification=Verification(), code_id="empty", code_files=0, watch="",
    )
    fields.update(changes)
    return SyncSummary(**fields)  # type: ignore[arg-type]


def difference(severity: str, package: str = "six") -> Difference:
    return Difference(package=package, expected="1.16.0", actual="1.17.0", severity=severity,
                      worker="tcp://127.0.0.1:4000", host="this machine")


def test_verification_states():
    assert "off (verify=False)" in summary(verify=False).to_html()
    fine = Verification(verified=("tcp://a:1", "tcp://b:1"),
                        differences=(difference("notice"),))
    assert "✓ 2 workers match the lock, 1 notice" in summary(verification=fine).to_html()
    one = Verification(verified=("tcp://a:1",))
    assert "✓ 1 worker matches the lock" in summary(verification=one).to_html()
    bad = Verification(verified=("tcp://a:1", "tcp://b:1"),
                       differences=(difference("notice", "pip"), difference("critical")),
                       retired=("tcp://b:1",))
    html = summary(verification=bad).to_html()
    assert "✗ 2 workers checked; retired: tcp://b:1" in html
    assert ("<li>critical: six: lock 1.16.0, worker tcp://127.0.0.1:4000 on this machine has "
            "1.17.0</li>") in html
    assert "pip:" not in html  # notices are counted where all is well, not listed


def test_everything_shown_is_escaped():
    html = summary(environment="/envs/<script>", kinds=(("<b>", 1),),
                   relaxed=(Relaxation(name="a&b", local_version="1", specifier="<2",
                                       version="1.5", reason='"quoted"'),)).to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt; 1" in html and "a&amp;b" in html and "&lt;2" in html
    assert "&quot;quoted&quot;" in html


def test_not_ready():
    assert "not ready" in not_ready_html()
