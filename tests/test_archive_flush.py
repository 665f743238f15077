"""``paynb archive flush``: one flush at a time (a lock file in the spool folder), and a half-flushed spool
entry is completed, or set aside, by the next flush instead of tripping every later one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paynb.jobs.archive import ArchiveObject, flush_spool, spool_objects, spool_root, spooled_runs
from paynb.ledger import open_ledger
from paynb.settings import Settings
from paynb.store import open_store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load({"PAYNB_DATA_DIR": str(tmp_path / "data")}, dotenv=None)


def spool(settings: Settings, store_url: str, run_id: str, n: int = 3) -> list[ArchiveObject]:
    objects = [
        ArchiveObject(
            f"obj{i}.json", f"runs/2026/01/01/t/{run_id}/obj{i}.json", f"{run_id}:{i}".encode() * 500
        )
        for i in range(n)
    ]
    spool_objects(settings, run_id=run_id, store_url=store_url, objects=objects, reason="store down (test)")
    return objects


def test_two_concurrent_flushes_both_end_well(settings: Settings, tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'archive'}"
    runs = [f"run-{i:03d}" for i in range(12)]
    for run_id in runs:
        spool(settings, store_url, run_id)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")},
        "PAYNB_DATA_DIR": str(settings.data_dir),
        "PAYNB_ENV_FILE": str(tmp_path / "none.env"),
    }
    cmd = [
        sys.executable,
        "-c",
        "import sys; from paynb.cli import main; sys.exit(main())",
        "archive",
        "flush",
        "--json",
    ]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert all(row["error"] == "" and row["remaining"] == "" for row in json.loads(out))
    flushed = [row["run_id"] for out, _ in outs for row in json.loads(out)]
    assert sorted(flushed) == runs  # each run delivered by exactly one of them
    assert spooled_runs(settings) == []
    store = open_store(store_url, settings)
    assert all(store.stat(f"runs/2026/01/01/t/{r}/obj2.json") is not None for r in runs)


def test_a_half_flushed_entry_is_completed(settings: Settings, tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'archive'}"
    objects = spool(settings, store_url, "run-half")
    store = open_store(store_url, settings)
    folder = spool_root(settings) / "run-half"
    for obj in objects:  # an earlier flush delivered everything, then died before removing the folder
        store.put(obj.key, obj.data)
        (folder / obj.name).unlink()
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == ["manifest.json"]
    [result] = flush_spool(settings, open_ledger(settings))
    assert result.done and result.error is None and sorted(result.delivered) == [o.name for o in objects]
    assert not folder.exists() and flush_spool(settings, open_ledger(settings)) == []


def test_an_entry_that_cannot_be_completed_is_set_aside(settings: Settings, tmp_path: Path) -> None:
    store_url = f"file://{tmp_path / 'archive'}"
    objects = spool(settings, store_url, "run-lost")
    (spool_root(settings) / "run-lost" / objects[0].name).unlink()  # gone, and never delivered
    spool(settings, store_url, "run-ok")
    broken = spool_root(settings) / "run-junk"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    results = {r.run_id: r for r in flush_spool(settings, open_ledger(settings))}
    assert results["run-ok"].done and results["run-ok"].error is None
    assert "is gone" in results["run-lost"].error and ".broken" in results["run-lost"].error
    assert "not readable" in results["run-junk"].error
    assert flush_spool(settings, open_ledger(settings)) == []  # later flushes no longer trip on them
    assert (spool_root(settings) / ".broken" / "run-lost" / "manifest.json").exists()


def test_a_flush_waits_for_the_lock_then_gives_up_clearly(settings: Settings, tmp_path: Path) -> None:
    import fcntl

    from paynb.errors import StoreError

    spool(settings, f"file://{tmp_path / 'archive'}", "run-wait")
    fd = os.open(spool_root(settings) / ".flush.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StoreError, match="another `paynb archive flush`"):
            flush_spool(settings, open_ledger(settings), lock_wait_s=0.2)
    finally:
        os.close(fd)
    assert flush_spool(settings, open_ledger(settings))[0].done
