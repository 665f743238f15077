"""``run_notebook``: papermill plus everything an auditor needs.

Order of work (each step refuses before the next one can do harm):

1. read the notebook and its typed ``parameters`` cell; convert and check the values given
   (InputError / JobError, no kernel started yet); chain a ``run-started`` entry (and anchor it), so a
   run killed from here on still shows in ``paynb runs list`` (as ``killed``);
2. inject the values as an ``injected-parameters`` cell and execute in memory with papermill, in a
   kernel running this interpreter, with ``PAYNB_RUN_ID`` in its environment; no output file is
   written per cell (or at all: the unredacted notebook never touches disk);
3. classify the ending: ``cell_error`` (PapermillExecutionError), ``timeout`` (CellTimeoutError, which
   papermill leaves unflagged, so paynb marks the cell itself) or ``dead_kernel`` (DeadKernelError);
4. build the execution record, redact the notebook, store the record in ``metadata.paynb``;
5. scan everything for secrets (SecretLeak: the run is recorded as failed, nothing is archived);
6. render HTML, write notebook + HTML to the archive (or the spool), chain the record in the ledger,
   write ``record.json``, anchor the chain head. ``rows_affected`` is what the applies recorded under
   this run id counted (:func:`paynb.ledger.rows_affected_by_run`), never the notebook's own claim.
"""

from __future__ import annotations

import copy
import html
import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from paynb import __version__
from paynb.canonical import sha256_hex, to_jsonable
from paynb.errors import InputError, SecretLeak, StoreError
from paynb.ids import new_run_id
from paynb.jobs import provenance
from paynb.jobs.archive import (
    HTML,
    NOTEBOOK,
    RECORD,
    ArchiveObject,
    default_archive_url,
    notebook_bytes,
    render_html,
    run_prefix,
    safe_name,
    spool_objects,
    upload,
)
from paynb.jobs.params import (
    INJECTED_TAG,
    ParamSchema,
    load_params_file,
    read_schema,
    redacted_values,
    render_parameters_source,
    resolve_parameters,
)
from paynb.jobs.redact import leak_message, redact_notebook, scan_notebook
from paynb.jobs.report import collect_reports
from paynb.jobs.run_record import SCHEMA_VERSION, validate_record
from paynb.ledger import open_ledger, record_run_started, rows_affected_by_run, scrub_secrets, write_anchor
from paynb.settings import Settings, get_settings
from paynb.store import open_store

ERROR_CELL_TAG = "papermill-error-cell-tag"
RUN_ID_ENV = "PAYNB_RUN_ID"


@dataclass
class RunResult:
    """What ``paynb run`` did. ``notebook`` is the redacted executed notebook (None after a leak)."""

    run_id: str
    status: str
    failure_kind: str | None
    record: dict[str, Any]
    record_hash: str | None
    archive_url: str | None
    archive_state: str | None
    message: str
    spool_reason: str | None = None
    notebook: nbformat.NotebookNode | None = field(default=None, repr=False)
    #: seconds per step (prepare, execute, record, scan, render, archive), for diagnostics only
    timings: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "failure_kind": self.failure_kind,
            "message": self.message,
            "archive_url": self.archive_url,
            "archive_state": self.archive_state,
            "spool_reason": self.spool_reason,
            "record_hash": self.record_hash,
            "record": self.record,
        }


@dataclass
class _Execution:
    nb: nbformat.NotebookNode
    kernel: str = ""
    failure_kind: str | None = None
    failure_detail: dict[str, Any] | None = None


def run_notebook(
    path: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    params_file: str | os.PathLike | None = None,
    archive_url: str | None = None,
    timeout_s: float | None = None,
    settings: Settings | None = None,
    kernel_name: str | None = None,
    idempotency_key: str | None = None,
    cwd: str | os.PathLike | None = None,
    progress: bool = False,
) -> RunResult:
    """Run a notebook as an auditable job.

    Parameters
    ----------
    path : the ``.ipynb`` to run (it is never modified)
    parameters : name -> value; text is converted strictly to the declared type, typed values are checked
    params_file : a YAML mapping of parameters (``parameters`` wins on a clash)
    archive_url : ``file://DIR`` or ``s3://BUCKET/PREFIX``; default ``PAYNB_ARCHIVE_URL`` or the data dir
    timeout_s : per-cell limit; a cell running longer ends the run with ``failure_kind="timeout"``
    settings : defaults to :func:`paynb.settings.get_settings`
    kernel_name : a named kernelspec; default is a kernel running this very interpreter
    idempotency_key : refuse to start when a successful run already recorded this key
    cwd : the kernel's working folder (default: the current one)
    progress : show papermill's per-cell progress bar on stderr

    Returns
    -------
    RunResult. A failed execution is *returned* (``status="failed"``); bad input raises InputError or
    JobError before any kernel starts; a secret found in the output raises SecretLeak after the
    failure is recorded in the ledger.
    """
    clock = _Clock()
    settings = settings or get_settings()
    secrets = settings.secret_values()
    path = Path(path)
    raw = _read_bytes(path)
    nb = _parse_notebook(raw, path)
    shown_path = _display_path(path)
    schema = read_schema(nb, notebook=shown_path, secret_values=secrets)
    given: dict[str, Any] = {}
    if params_file is not None:
        given.update(load_params_file(params_file))
    given.update(parameters or {})
    values = resolve_parameters(schema, given, secret_values=secrets)

    ledger = open_ledger(settings)
    if idempotency_key:
        earlier = ledger.find_idempotency_key(idempotency_key)
        if earlier is not None:
            raise InputError(
                f"run {earlier.run_id} already succeeded with this key; nothing was started",
                field="idempotency_key",
            )
    key = provenance.hmac_key(settings)
    run_id = new_run_id()
    started = datetime.now(UTC)
    shown_values = redacted_values(schema, values)
    notebook_facts = {"path": shown_path, "name": safe_name(path.stem), "sha256": sha256_hex(raw)}
    record_run_started(
        ledger,
        settings,
        {
            "run_id": run_id,
            "notebook": notebook_facts,
            "parameters": to_jsonable(shown_values),
            "actor": provenance.actor(),
            "started_at": started.isoformat(),
        },
        timeout_s=timeout_s,
    )
    prepared = _inject(nb, schema, values, run_id)
    # the kernel runs in its own process; meanwhile load what the steps after it need (nbconvert's
    # import and templates take seconds in a fresh process)
    warm = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paynb-warm-up")
    git_state = warm.submit(provenance.git_state, path)
    warm.submit(_warm_up)
    clock.lap("prepare")
    execution = _execute(
        prepared,
        run_id=run_id,
        timeout_s=timeout_s,
        kernel_name=kernel_name,
        cwd=cwd,
        progress=progress,
        settings=settings,
    )
    ended = datetime.now(UTC)
    warm.shutdown(wait=True)
    clock.lap("execute")
    executed = execution.nb
    reports, problems = collect_reports(executed)

    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "notebook": notebook_facts,
        "paynb_version": __version__,
        "git": git_state.result(),
        "parameters": to_jsonable(shown_values),
        "parameters_hmac": provenance.hmac_values(key, values),
        "hmac_key_id": provenance.key_id(key),
        "defaults": [name for name in schema.params if name not in values],
        "actor": provenance.actor(),
        "host": provenance.host(),
        "python": provenance.python_version(),
        "kernel": execution.kernel,
        "environment_sha256": provenance.environment_sha256(),
        "started_at": started.isoformat(),
        "ended_at": ended.isoformat(),
        "duration_ms": int((ended - started).total_seconds() * 1000),
        "status": _status(execution.failure_kind),
        "failure_kind": execution.failure_kind,
        "failure_detail": execution.failure_detail,
        "dry_run": reports.get("dry_run", values.get("dry_run", _default_dry_run(schema))),
        "plan_sha256": reports.get("plan_sha256"),
        "rows_affected": reports.get("rows_affected"),
        "idempotency_key": _pick_key(idempotency_key, reports.get("idempotency_key"), problems),
        "summary": reports.get("summary"),
        "reported": reports.get("extra", {}),
        "report_problems": problems,
    }
    if not isinstance(record["dry_run"], bool):
        record["dry_run"] = None
    _count_applies(record, ledger, problems)
    validate_record(record, complete=False)
    clock.lap("record")

    redact_notebook(
        executed,
        shown_values,
        header=f"Parameters injected by paynb run {run_id} (redacted copy; HMACs in metadata.paynb)",
        input_path=shown_path,
    )
    executed.metadata["paynb"] = record
    # the values of parameters marked `# paynb: redact` must not show up anywhere either
    hidden = [str(v) for k, v in values.items() if schema.params[k].redact and v not in (None, "")]
    leaks = scan_notebook(executed, secrets, [h for h in hidden if len(h) >= 4])
    hidden_values = [h for h in hidden if len(h) >= 4]
    if leaks:
        return _refuse_leak(
            record,
            ledger,
            leak_message(leaks),
            [leak.cell_index for leak in leaks],
            [*secrets, *hidden_values],
        )

    clock.lap("scan")
    nb_data = notebook_bytes(executed)
    html_data = render_html(executed)
    clock.lap("render")
    html_text = html_data.decode("utf-8", "replace")
    if any(s in html_text or html.escape(s) in html_text for s in secrets):
        return _refuse_leak(
            record, ledger, "secret material found in the rendered HTML", [], [*secrets, *hidden_values]
        )

    prefix = run_prefix(started, path.stem, run_id)
    objects = [
        ArchiveObject(NOTEBOOK, f"{prefix}/{NOTEBOOK}", nb_data),
        ArchiveObject(HTML, f"{prefix}/{HTML}", html_data),
    ]
    url = archive_url or default_archive_url(settings)
    store = None
    spool_reason: str | None = None
    versions: dict[str, str | None] = {}
    try:
        store = open_store(url, settings)
        url = store.url
        versions = upload(store, objects, run_id=run_id)
    except StoreError as err:
        spool_reason = str(err).splitlines()[0]
    record["output"] = {"notebook_sha256": objects[0].sha256, "html_sha256": objects[1].sha256}
    record["archive"] = {
        "url": url,
        "prefix": prefix,
        "state": "spooled" if spool_reason else "archived",
        "objects": {
            o.name: {
                "key": o.key,
                "sha256": o.sha256,
                "size": len(o.data),
                "version_id": versions.get(o.name),
            }
            for o in objects
        },
    }
    if spool_reason:
        record["archive"]["spool_reason"] = spool_reason
    entry = ledger.append(record, validate=validate_record)
    record_obj = ArchiveObject(RECORD, f"{prefix}/{RECORD}", entry.raw_record.encode("utf-8"))

    if store is not None and not spool_reason:
        for o in objects:
            ledger.add_object(
                run_id, o.name, store_url=url, key=o.key, sha256=o.sha256, version_id=versions[o.name]
            )
        try:
            rv = upload(store, [record_obj], run_id=run_id)
            ledger.add_object(
                run_id,
                RECORD,
                store_url=url,
                key=record_obj.key,
                sha256=record_obj.sha256,
                version_id=rv[RECORD],
            )
        except StoreError as err:
            spool_reason = str(err).splitlines()[0]
            spool_objects(settings, run_id=run_id, store_url=url, objects=[record_obj], reason=spool_reason)
    elif spool_reason:
        spool_objects(
            settings, run_id=run_id, store_url=url, objects=[*objects, record_obj], reason=spool_reason
        )

    write_anchor(ledger, entry, settings)
    clock.lap("archive")
    location = _join(url, prefix)
    state = "spooled" if spool_reason else "archived"
    return RunResult(
        run_id=run_id,
        status=entry.record["status"],
        failure_kind=execution.failure_kind,
        record=entry.record,
        record_hash=entry.record_hash,
        archive_url=location,
        archive_state=state,
        message=_summary_line(entry.record),
        spool_reason=spool_reason,
        notebook=executed,
        timings=clock.laps,
    )


# -- steps ---------------------------------------------------------------------------------------------
def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such notebook", file=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a notebook", file=str(path)) from None


def _parse_notebook(raw: bytes, path: Path) -> nbformat.NotebookNode:
    try:
        return nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:
        raise InputError(f"not a readable notebook ({type(exc).__name__})", file=str(path)) from None


def _display_path(path: Path) -> str:
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _default_dry_run(schema: ParamSchema) -> Any:
    spec = schema.params.get("dry_run")
    return spec.default if spec is not None and isinstance(spec.default, bool) else None


def _pick_key(given: str | None, reported: str | None, problems: list[str]) -> str | None:
    if given and reported and given != reported:
        problems.append("the notebook reported another idempotency key than the one the run was started with")
    return given or reported


def _inject(nb: nbformat.NotebookNode, schema: ParamSchema, values: Mapping[str, Any], run_id: str):  # type: ignore[no-untyped-def]
    """A copy of ``nb`` with the values in an ``injected-parameters`` cell right after the parameters
    cell (replacing one left by an earlier run, as papermill does)."""
    prepared = copy.deepcopy(nb)
    kept = []
    for cell in prepared.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if INJECTED_TAG in tags or ERROR_CELL_TAG in tags:
            continue
        kept.append(cell)
    prepared.cells = kept
    index = next(
        i for i, c in enumerate(prepared.cells) if "parameters" in c.get("metadata", {}).get("tags", [])
    )
    if values:
        source = render_parameters_source(values, header=f"Parameters injected by paynb run {run_id}")
        prepared.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]}))
    return prepared


def _execute(
    prepared: nbformat.NotebookNode,
    *,
    run_id: str,
    timeout_s: float | None,
    kernel_name: str | None,
    cwd: str | os.PathLike | None,
    progress: bool,
    settings: Settings,
) -> _Execution:
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from paynb.jobs.engine import ENGINE_NAME, kernel_manager_class
    from paynb.jobs.kernel_env import kernel_environment

    try:
        # report kernels get the reader only; the writer URL reaches data-fix notebooks alone
        add, drop = kernel_environment(prepared, run_id, settings)
        km_class, kname = kernel_manager_class(add, kernel_name, drop)
    except NoSuchKernel:
        raise InputError(
            "no kernelspec of that name is installed (`jupyter kernelspec list`)", field="kernel"
        ) from None
    capture: dict[str, Any] = {}
    execution = _Execution(prepared, kernel=kname)
    try:
        papermill.execute_notebook(
            prepared,
            None,  # no output file: the unredacted notebook stays in memory
            kernel_name=kname,
            engine_name=ENGINE_NAME,
            kernel_manager_class=km_class,
            paynb_capture=capture,
            request_save_on_cell_execute=False,
            progress_bar=progress,
            execution_timeout=max(1, math.ceil(timeout_s)) if timeout_s else None,  # nbclient wants whole s
            cwd=str(cwd) if cwd is not None else None,
        )
    except PapermillExecutionError as exc:
        execution.failure_kind = "cell_error"
        execution.failure_detail = {"ename": exc.ename}
    except CellTimeoutError:
        execution.failure_kind = "timeout"
        execution.failure_detail = {"ename": "CellTimeoutError"}
    except DeadKernelError:
        execution.failure_kind = "dead_kernel"
        execution.failure_detail = {"ename": "DeadKernelError"}
    except Exception as exc:  # the kernel never started, or the engine broke down
        execution.failure_kind = "kernel_error"
        execution.failure_detail = {"ename": type(exc).__name__}
    execution.nb = capture.get("nb", prepared)
    if execution.failure_kind:
        _mark_failure(execution, timeout_s)
        if (
            execution.failure_kind == "cell_error"
            and (execution.failure_detail or {}).get("ename") in _plan_errors()
        ):
            execution.failure_kind = "refused"  # a data fix said no (confirm, stale plan): not a crash
    return execution


def _status(failure_kind: str | None) -> str:
    return "succeeded" if not failure_kind else ("refused" if failure_kind == "refused" else "failed")


def _plan_errors() -> set[str]:
    """Names of PlanError and its subclasses: a cell raising one is a refused apply (docs/exit-codes.md)."""
    from paynb.errors import PlanError

    names, todo = set(), [PlanError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _mark_failure(execution: _Execution, timeout_s: float | None) -> None:
    """Point at the failing cell, and flag timeouts and dead kernels in the notebook the way papermill
    flags cell errors (papermill marks the cell ``completed`` and leaves ``exception`` unset)."""
    nb = execution.nb
    detail = execution.failure_detail or {}
    kind = execution.failure_kind
    if kind == "cell_error":
        index = next((i for i, c in enumerate(nb.cells) if _pm(c).get("status") == "failed"), None)
        detail["cell_index"] = index
        detail["message"] = f"cell {index} raised {detail.get('ename')}"
    elif kind in ("timeout", "dead_kernel"):
        started = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _pm(c).get("start_time")]
        index = started[-1] if started else None
        detail["cell_index"] = index
        if kind == "timeout":
            text = f"paynb: this cell ran longer than the {timeout_s:g} s limit and was stopped"
            detail["message"] = f"cell {index} ran longer than {timeout_s:g} s"
        else:
            text = "paynb: the kernel died while running this cell (crash, os._exit, or out of memory)"
            detail["message"] = f"the kernel died while running cell {index}"
        if index is not None:
            cell = nb.cells[index]
            cell.outputs.append(
                nbformat.v4.new_output("error", ename=detail["ename"], evalue=text, traceback=[text])
            )
            cell.metadata.setdefault("papermill", {}).update({"status": "failed", "exception": True})
            for later in nb.cells[index + 1 :]:
                if "papermill" in later.metadata:
                    later.metadata.papermill["status"] = "pending"
        nb.metadata.setdefault("papermill", {})["exception"] = True
    else:
        detail["cell_index"] = None
        detail["message"] = f"the kernel could not run the notebook ({detail.get('ename')})"
    execution.failure_detail = detail


def _pm(cell: Any) -> dict[str, Any]:
    return cell.get("metadata", {}).get("papermill", {})


def _count_applies(record: dict[str, Any], ledger: Any, problems: list[str]) -> None:
    """``rows_affected`` from the applies chained under this run id; the notebook's own number is kept
    only as a claim in ``reported``."""
    claimed = record.get("rows_affected")
    counted, applies = rows_affected_by_run(ledger, record["run_id"])
    record["rows_affected"] = counted
    if applies:
        record["dry_run"] = False
    if claimed is not None and claimed != counted:
        record["reported"] = {**record.get("reported", {}), "claimed_rows_affected": claimed}
        problems.append(
            f"the notebook reported rows_affected={claimed}; paynb's {applies} apply(s) in this run counted "
            f"{counted}, which is what the record keeps"
        )


def _refuse_leak(
    record: dict[str, Any], ledger: Any, message: str, cells: list[int | None], hidden: list[str]
) -> RunResult:
    """Record the run as failed with nothing archived and every secret scrubbed from the record (the
    notebook's summary and reports may quote one), then raise SecretLeak."""
    record = scrub_secrets(record, sorted(set(hidden), key=len, reverse=True))
    record["status"] = "failed"
    record["failure_kind"] = "secret_leak"
    record["failure_detail"] = {"cells": sorted({c for c in cells if c is not None}), "message": message}
    record["output"] = None
    record["archive"] = None
    entry = ledger.append(record, validate=validate_record)
    raise SecretLeak(
        f"run {entry.run_id}: {message}; nothing was archived and the executed notebook was discarded",
        hint="never print or display credentials; read them with paynb settings and keep them in Secret objects",
    )


def _warm_up() -> None:
    """Load nbconvert and hash the environment (both cached); failures surface later, in the real calls."""
    from paynb.jobs.archive import _exporter

    _exporter()
    provenance.environment_sha256()


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


def _join(url: str, prefix: str) -> str:
    return f"{url.rstrip('/')}/{prefix}/"


def _summary_line(record: dict[str, Any]) -> str:
    seconds = record["duration_ms"] / 1000
    if record["status"] == "succeeded":
        return f"succeeded in {seconds:.1f} s"
    detail = (record.get("failure_detail") or {}).get("message", "")
    if record["status"] == "refused":
        return f"refused (nothing applied): {detail}"
    return f"failed ({record['failure_kind']}): {detail}"


__all__ = ["RunResult", "run_notebook"]
