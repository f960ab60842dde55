"""The notebook view of a running packsync.Cluster, from a real client venv."""

from __future__ import annotations

import pytest

from tests.support.projects import make_project
from tests.support.venvs import ClientEnv

pytestmark = pytest.mark.integration

SUMMARY = """
import json, os, collections
import packsync

with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                      watch=True) as cluster:
    with cluster.get_client() as client:
        client.wait_for_workers(1)
        first = cluster._repr_html_()
        first_code = cluster.live_code.code_id
        with open("helper.py.tmp", "w") as handle:
            handle.write("VALUE = 2\\n")
        os.replace("helper.py.tmp", "helper.py")
        cluster.sync()
        second = cluster._repr_html_()
        kinds = collections.Counter(d.source.kind for d in cluster.prepared.locked.plan.synced())
        print(json.dumps({
            "first": first, "second": second, "first_code": first_code,
            "second_code": cluster.live_code.code_id,
            "digest": cluster.prepared.locked.lock.digest,
            "packages": cluster.prepared.locked.lock.package_count,
            "kinds": kinds, "verified": list(cluster.verification.verified),
        }))
"""


def test_repr_html_shows_what_was_synced(client_env: ClientEnv, tmp_path):
    project = make_project(tmp_path / "mylib", "mylib", 'MESSAGE = "hi"\n')
    client_env.install("-e", str(project))
    (client_env.workdir / "helper.py").write_text("VALUE = 1\n")

    out = client_env.json_run(SUMMARY)
    first, second = out["first"], out["second"]
    assert first.startswith('<div class="packsync-summary"')
    assert f'<code title="{out["digest"]}">{out["digest"][:12]}</code>' in first
    assert f"{out['packages']} packages · built for this launch" in first
    assert out["kinds"]["editable"] == 1
    assert f"index {out['kinds']['index']} · editable 1" in first
    assert 'Relaxed pins</th><td style="text-align:left">none' in first
    assert len(out["verified"]) == 1 and "✓ 1 worker matches the lock" in first
    assert f"version <code>{out['first_code'][:12]}</code> · 2 files" in first  # with _script.py
    assert "synced on save (watchfiles)" in first
    # the new version once synced
    assert out["second_code"] != out["first_code"]
    assert f"version <code>{out['second_code'][:12]}</code>" in second
    # and Dask's own widget below ours
    assert "Cluster" in first and "Workers" in first and "Scheduler" in first
