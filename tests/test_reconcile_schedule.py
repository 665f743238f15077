"""The scheduled jobs: CronJob manifests rendered from one template per job, and the Airflow example."""

from __future__ import annotations

import importlib.util
import py_compile
from pathlib import Path

import pytest
import yaml

from paynb.errors import InputError
from paynb.jobs.k8s import load_jobs, main, render

ROOT = Path(__file__).resolve().parents[1]
DAG = ROOT / "templates" / "airflow" / "paynb_reconcile_daily.py"


def test_every_job_renders_to_a_guarded_cronjob() -> None:
    jobs = load_jobs()
    manifests = render(jobs)
    assert {"reconcile-daily", "stale-invoices"} <= set(manifests)
    for job in jobs:
        doc = yaml.safe_load(manifests[job["name"]])
        assert doc["kind"] == "CronJob" and doc["apiVersion"] == "batch/v1"
        assert doc["metadata"]["name"] == f"paynb-{job['name']}"
        spec = doc["spec"]
        assert spec["schedule"] == job["schedule"] and spec["concurrencyPolicy"] == "Forbid"
        assert spec["timeZone"] == "America/Vancouver"
        pod = spec["jobTemplate"]["spec"]
        assert pod["backoffLimit"] == 0 and pod["activeDeadlineSeconds"] > job.get("timeout_s", 900)
        container = pod["template"]["spec"]["containers"][0]
        args = container["args"]
        assert args[:2] == ["run", job["notebook"]] and (ROOT / job["notebook"]).is_file()
        assert args[args.index("--archive") + 1].startswith("s3://")
        for name, value in (job.get("parameters") or {}).items():
            i = args.index(name)
            assert args[i - 1] == "-p" and args[i + 1] == str(value)
        # credentials come only from the Secret, never as arguments or literal env values
        assert container["envFrom"] == [{"secretRef": {"name": "paynb-readonly"}}]
        assert not any("URL" in e["name"] or "KEY" in e["name"] for e in container["env"])
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_reconcile_jobs_have_distinct_job_names() -> None:
    names = [j["parameters"]["job"] for j in load_jobs() if "reconcile" in j["notebook"]]
    assert len(names) >= 2 and len(set(names)) == len(names)


def test_render_writes_one_file_per_job(tmp_path: Path) -> None:
    main(["--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"paynb-{j['name']}.yaml" for j in load_jobs()
    )


def test_a_job_without_a_notebook_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "jobs.yaml"
    bad.write_text("jobs:\n  - {name: x, schedule: '* * * * *'}\n")
    with pytest.raises(InputError, match="notebook"):
        load_jobs(bad)


def test_airflow_example_compiles_and_calls_paynb_run() -> None:
    py_compile.compile(str(DAG), doraise=True)
    text = DAG.read_text()
    assert "run notebooks/jobs/reconcile_daily.ipynb" in text


@pytest.mark.skipif(importlib.util.find_spec("airflow") is None, reason="Airflow is optional")
def test_airflow_imports_the_dag() -> None:  # pragma: no cover - only where Airflow is installed
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAG), include_examples=False)
    assert not bag.import_errors and "paynb_reconcile_daily" in bag.dags
