"""Under `paynb lab`, a report notebook's kernel never sees the writer URL and a data fix's does, as under
`paynb run`; no kernel sees the admin URL, and Lab's terminals see neither. The end-to-end test starts the real Lab server, opens a session
for each kind of notebook through Lab's REST API, and asks each kernel for its environment."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("jupyter_server")

from paynb.jobs.lab_kernels import kernel_environment_for, read_notebook_kind, take_writer_settings
from paynb.settings import NO_ADMIN_KERNEL, READ_ONLY_KERNEL
from tests.processes import stop_process_group

READER = "postgresql://paynb_reader:r@127.0.0.1:5/pay-db"
WRITER = "postgresql://paynb_writer:w-secret@127.0.0.1:5/pay-db"
ADMIN = "postgresql://postgres:a-secret@127.0.0.1:5/pay-db"
SETTINGS = {
    "PAYNB_DATABASE_URL": READER,
    "PAYNB_DATABASE_WRITE_URL": WRITER,
    "PAYNB_DATABASE_ADMIN_URL": ADMIN,
    "SOME_TOOL_DSN": WRITER,  # a copy under another name goes too
}
ASKED = ["PAYNB_DATABASE_URL", "PAYNB_DATABASE_WRITE_URL", "PAYNB_DATABASE_ADMIN_URL", "SOME_TOOL_DSN"]
ASKED += [READ_ONLY_KERNEL, NO_ADMIN_KERNEL]


def _notebook(path: Path, kind: str | None) -> Path:
    nb = nbformat.v4.new_notebook()
    if kind:
        nb.metadata["paynb"] = {"kind": kind}
    nbformat.write(nb, path)
    return path


def test_the_server_keeps_the_writer_and_drops_the_admin() -> None:
    environ = {**SETTINGS, "HOME": "/root"}
    held = take_writer_settings(environ)
    assert held == {"PAYNB_DATABASE_WRITE_URL": WRITER, "SOME_TOOL_DSN": WRITER}
    assert environ == {"PAYNB_DATABASE_URL": READER, "HOME": "/root"}  # what Lab's terminals start from


def test_each_kind_gets_its_environment(tmp_path: Path) -> None:
    held = {"PAYNB_DATABASE_WRITE_URL": WRITER}
    base = {"PAYNB_DATABASE_URL": READER, "PAYNB_DATABASE_ADMIN_URL": ADMIN, READ_ONLY_KERNEL: "1"}
    fix = kernel_environment_for(base, held, str(_notebook(tmp_path / "fix.ipynb", "datafix")))
    assert fix["PAYNB_DATABASE_WRITE_URL"] == WRITER and READ_ONLY_KERNEL not in fix
    for notebook in (_notebook(tmp_path / "r.ipynb", None), tmp_path / "missing.ipynb", None):
        report = kernel_environment_for(base, held, str(notebook) if notebook else None)
        assert "PAYNB_DATABASE_WRITE_URL" not in report and report[READ_ONLY_KERNEL] == "1"
    for env in (fix, report):
        assert "PAYNB_DATABASE_ADMIN_URL" not in env and env[NO_ADMIN_KERNEL] == "1"


def test_an_unreadable_notebook_is_a_report(tmp_path: Path) -> None:
    (tmp_path / "bad.ipynb").write_text("{not json")
    (tmp_path / "list.ipynb").write_text("[]")
    assert read_notebook_kind(str(tmp_path / "bad.ipynb")) == "report"
    assert read_notebook_kind(str(tmp_path / "list.ipynb")) == "report"
    assert read_notebook_kind(str(tmp_path / "console")) == "report"


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="reads a terminal's environment from /proc"
)
def test_lab_kernels_see_the_writer_only_in_a_data_fix(tmp_path: Path) -> None:
    from jupyter_client import BlockingKernelClient

    from paynb.jobs.lab import lab_launch

    _notebook(tmp_path / "report.ipynb", None)
    _notebook(tmp_path / "fix.ipynb", "datafix")
    runtime = tmp_path / "runtime"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")}
    base_env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    launch = lab_launch(root=tmp_path, settings_env=SETTINGS, state_dir=tmp_path / "data", base_env=base_env)
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        launch.argv, env=launch.env, cwd=launch.root, stdout=log, stderr=log, start_new_session=True
    )
    try:
        base, token = launch.url.split("/lab?token=")
        _api(base, token, "GET", "/api/status", timeout_s=90)
        seen = {}
        for name in ("report.ipynb", "fix.ipynb"):
            body = {"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}}
            session = _api(base, token, "POST", "/api/sessions", body=body, timeout_s=60)
            client = BlockingKernelClient(
                connection_file=str(runtime / f"kernel-{session['kernel']['id']}.json")
            )
            client.load_connection_file()
            client.start_channels()
            try:
                client.wait_for_ready(timeout=60)
                seen[name] = _kernel_environ(client)
            finally:
                client.stop_channels()
        terminal = _api(base, token, "POST", "/api/terminals", body={}, timeout_s=30)
        shell_env = _terminal_environ(proc.pid, timeout_s=30)
        _api(base, token, "DELETE", f"/api/terminals/{terminal['name']}", timeout_s=30, expect_body=False)
        assert shell_env is not None, "no terminal shell found under the Lab server"
        assert b"w-secret" not in shell_env and b"a-secret" not in shell_env  # nor in Lab's terminals
        assert b"PAYNB_DATABASE_URL=" + READER.encode() in shell_env
        report, fix = seen["report.ipynb"], seen["fix.ipynb"]
        assert report["PAYNB_DATABASE_URL"] == READER and report[READ_ONLY_KERNEL] == "1"
        assert report["PAYNB_DATABASE_WRITE_URL"] is None and report["SOME_TOOL_DSN"] is None
        assert fix["PAYNB_DATABASE_WRITE_URL"] == WRITER and fix[READ_ONLY_KERNEL] is None
        assert report["PAYNB_DATABASE_ADMIN_URL"] is None and fix["PAYNB_DATABASE_ADMIN_URL"] is None
    finally:
        stop_process_group(proc)
        log.close()
    assert b"w-secret" not in (tmp_path / "lab.log").read_bytes()  # nor in the server's log


def _kernel_environ(client) -> dict:
    code = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {ASKED!r}}}))"
    msg_id = client.execute(code)
    out = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return json.loads(out)


def _terminal_environ(server_pid: int, *, timeout_s: float) -> bytes | None:
    """The environment a Lab terminal's shell started with: the child of the server that terminado
    started (it alone has JUPYTER_SERVER_ROOT), read from /proc."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if ppid != server_pid:
                    continue
                environ = (stat.parent / "environ").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if b"JUPYTER_SERVER_ROOT=" in environ:
                return environ
        time.sleep(0.2)
    return None


def _api(
    base: str,
    token: str,
    method: str,
    path: str,
    *,
    body: dict | None = None,
    timeout_s: float,
    expect_body: bool = True,
) -> dict:
    deadline = time.monotonic() + timeout_s
    data = json.dumps(body).encode() if body is not None else None
    while True:
        req = urllib.request.Request(
            f"{base}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read()) if expect_body else {}
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
