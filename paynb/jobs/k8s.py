"""Kubernetes CronJobs for the scheduled paynb jobs: one manifest per entry of ``templates/k8s/jobs.yaml``,
rendered from the one template ``templates/k8s/job-template.yaml``.

    python -m paynb.jobs.k8s --out deploy/   # writes deploy/paynb-<name>.yaml per job
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from string import Template
from typing import Any

import yaml

from paynb.bundled import bundled_root
from paynb.errors import InputError

ARCHIVE = "s3://paynb-archive/"
_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")


def load_jobs(path: str | Path | None = None) -> list[dict[str, Any]]:
    source = Path(path) if path else bundled_root("templates") / "k8s" / "jobs.yaml"
    jobs = (yaml.safe_load(source.read_text()) or {}).get("jobs") or []
    for i, job in enumerate(jobs):
        for key in ("name", "notebook", "schedule"):
            if not job.get(key):
                raise InputError(f"job {i + 1} has no {key}", file=str(source), field=key)
        if not _NAME.fullmatch(job["name"]):
            raise InputError("must be lowercase letters, digits and -", file=str(source), field="name")
    return jobs


def job_args(job: dict[str, Any]) -> list[str]:
    """``paynb run NOTEBOOK -p name value ... --archive URL --timeout S``; values as text."""
    args = ["run", job["notebook"]]
    for name, value in (job.get("parameters") or {}).items():
        args += ["-p", str(name), str(value)]
    return [*args, "--archive", job.get("archive", ARCHIVE), "--timeout", str(job.get("timeout_s", 900))]


def render(jobs: list[dict[str, Any]] | None = None, template: str | Path | None = None) -> dict[str, str]:
    """Manifest text per job name."""
    tpl = Template(Path(template or bundled_root("templates") / "k8s" / "job-template.yaml").read_text())
    out: dict[str, str] = {}
    for job in jobs if jobs is not None else load_jobs():
        timeout = int(job.get("timeout_s", 900))
        out[job["name"]] = tpl.substitute(
            name=job["name"],
            schedule=job["schedule"],
            # a little more than the per-cell timeout, so paynb reports the timeout before Kubernetes kills it
            deadline_s=timeout * 2,
            args=json.dumps(job_args(job)),
            secret=job.get("secret", "paynb-readonly"),
            memory=job.get("memory", "512Mi"),
            memory_limit=job.get("memory_limit", "1Gi"),
        )
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="folder for paynb-<name>.yaml")
    p.add_argument("--jobs", type=Path, help="a jobs.yaml (default: the shipped one)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in render(load_jobs(args.jobs)).items():
        (args.out / f"paynb-{name}.yaml").write_text(text)
        print(args.out / f"paynb-{name}.yaml")


if __name__ == "__main__":  # pragma: no cover
    main()
