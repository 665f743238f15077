"""A newcomer's first steps: `source .sandbox/sandbox.env` exports the settings, `paynb sandbox env`
prints them for `eval`, doctor says what to do when no setting arrived, `paynb lab` starts JupyterLab
(as root too) with paynb's Python as the kernel, and the README's newcomer block runs as written in a
fresh clone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from paynb.cli import main
from paynb.sandbox.manager import Sandbox
from tests.processes import stop_process_group

ROOT = Path(__file__).parents[1]
PAYNB = [sys.executable, "-c", "import sys; from paynb.cli import main; sys.exit(main())"]
# values a shell would mangle without quoting
SETTINGS = {
    "PAYNB_DATABASE_URL": "postgresql://u:p%40ss@127.0.0.1:5/db?application_name=a b",
    "PAYNB_CFS_CLIENT_SECRET": 's3cr3t $HOME; `rm -rf /` "x"',
    "PAYNB_BUCKET": "paynb-data",
}
PRINT_ENV = f"import json, os; print(json.dumps({{k: os.environ.get(k) for k in {sorted(SETTINGS)!r}}}))"
BASH = shutil.which("bash")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYNB_")}
    env.update(extra)
    return env


def _box(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path / "box")
    box.root.mkdir()
    box._write_env(SETTINGS)
    return box


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_sourcing_sandbox_env_exports_every_setting_exactly(tmp_path: Path) -> None:
    box = _box(tmp_path)
    text = box.env_path.read_text()
    assert all(line.startswith(("#", "export ")) for line in text.splitlines())
    assert (box.env_path.stat().st_mode & 0o777) == 0o600
    script = f'source {box.env_path} && "{sys.executable}" -c "$0"'
    done = subprocess.run(
        [BASH, "-c", script, PRINT_ENV], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == SETTINGS  # a child process (paynb) sees them, unmangled


@pytest.mark.skipif(BASH is None, reason="needs bash")
def test_sandbox_env_prints_settings_for_eval(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    box = _box(tmp_path)
    assert main(["sandbox", "env", str(box.root)]) == 0
    printed = capsys.readouterr().out
    script = f'eval "$(cat {tmp_path / "printed"})" && "{sys.executable}" -c "$0"'
    (tmp_path / "printed").write_text(printed)
    done = subprocess.run(
        [BASH, "-c", script, PRINT_ENV], env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert json.loads(done.stdout) == SETTINGS
    # paynb reads the same file itself through PAYNB_ENV_FILE (dotenv understands `export`)
    from paynb.settings import Settings

    loaded = Settings.load(env={"PAYNB_ENV_FILE": str(box.env_path)})
    assert (
        loaded.bucket == "paynb-data"
        and loaded.cfs_client_secret.reveal() == SETTINGS["PAYNB_CFS_CLIENT_SECRET"]
    )
    assert main(["sandbox", "env", str(tmp_path / "nothing")]) == 2
    assert "paynb sandbox up --dir" in capsys.readouterr().err


def test_doctor_without_settings_says_how_to_load_them(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYNB_ENV_FILE", str(tmp_path / "none.env"))
    assert main(["doctor"]) == 1
    assert "paynb sandbox up --dir .sandbox" in capsys.readouterr().out
    # a sandbox.env from before the lines were exported: sourcing it again would not help, so say what does
    (tmp_path / ".sandbox").mkdir()
    (tmp_path / ".sandbox" / "sandbox.env").write_text("PAYNB_DATABASE_URL=postgresql://x@127.0.0.1:1/db\n")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert 'eval "$(paynb sandbox env .sandbox)"' in out and "older paynb" in out
    assert "source" not in out.split("no database configured", 1)[1]


def test_lab_command_runs_as_root_with_paynb_kernel(tmp_path: Path, monkeypatch) -> None:
    from paynb.jobs.lab import lab_launch

    for euid, expected in ((0, True), (1000, False)):
        monkeypatch.setattr(os, "geteuid", lambda euid=euid: euid)
        launch = lab_launch(root=tmp_path, settings_env=SETTINGS, state_dir=tmp_path / "data", base_env={})
        assert ("--allow-root" in launch.argv) is expected
    assert launch.argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/lab\?token=[0-9a-f]{48}", launch.url)
    assert f"--IdentityProvider.token={launch.url.split('token=')[1]}" in launch.argv
    assert {k: launch.env[k] for k in SETTINGS} == SETTINGS
    spec_dir = Path(launch.env["JUPYTER_PATH"].split(os.pathsep)[0])
    spec = json.loads((spec_dir / "kernels" / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert (spec_dir.stat().st_mode & 0o777) == 0o700


@pytest.mark.slow
def test_paynb_lab_serves_the_project_with_the_sandbox_settings(tmp_path: Path) -> None:
    box = _box(tmp_path)
    (tmp_path / "notebooks").mkdir()
    proc = subprocess.Popen(
        [*PAYNB, "lab", "--dir", str(box.root)],
        cwd=tmp_path,
        env=_clean_env(PAYNB_DATA_DIR=str(tmp_path / "data")),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("token=" in line for line in lines):
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
        url = next(line.strip() for line in lines if "token=" in line)
        assert f"the sandbox in {box.root}" in "".join(lines)
        base, token = url.split("/lab?token=")
        specs = _get_json(f"{base}/api/kernelspecs?token={token}", timeout_s=90)
        assert specs["default"] == "python3"
        assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable
        contents = _get_json(f"{base}/api/contents?token={token}", timeout_s=10)
        assert "notebooks" in {c["name"] for c in contents["content"]}
        with pytest.raises(urllib.error.HTTPError):  # the token is what lets a browser in
            urllib.request.urlopen(f"{base}/api/contents", timeout=10)
    finally:
        stop_process_group(proc)


def _get_json(url: str, *, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def newcomer_block(readme: str) -> str:
    """The bash block after ``<!-- newcomer-path -->`` in the README."""
    after = readme.split("<!-- newcomer-path -->", 1)[1]
    return re.search(r"```bash\n(.*?)```", after, re.S)[1]  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.skipif(
    BASH is None or shutil.which("git") is None or shutil.which("make") is None,
    reason="needs bash, git, make",
)
def test_the_readme_newcomer_path_works_verbatim_in_a_fresh_clone(tmp_path: Path) -> None:
    """The block runs unchanged under ``bash -e``. Installing again would take minutes, so the clone reuses
    this checkout's built venv: ``.venv`` in the clone is a link to it and the clone's pyproject.toml and
    setup.py get an old mtime, so its ``make venv`` finds the venv up to date (it still runs);
    ``PYTHONPATH`` puts the clone's own paynb first, so the clone's code and notebooks are what run."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").is_file():
        pytest.skip("tests do not run from a venv; the newcomer path needs one")
    clone = tmp_path / "paynb"
    done = subprocess.run(
        ["git", "clone", "-q", str(ROOT), str(clone)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # the clone has the committed README; this checkout's may be ahead of its last commit
    block = newcomer_block((clone / "README.md").read_text())
    (clone / ".venv").symlink_to(venv, target_is_directory=True)
    for name in ("pyproject.toml", "setup.py"):
        os.utime(clone / name, (946684800, 946684800))
    script = clone / "newcomer.sh"
    script.write_text("set -euo pipefail\n" + block)
    env = _clean_env(PYTHONPATH=str(clone), HOME=str(tmp_path / "home"), PAYNB_NO_BROWSER="1")
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(venv))
    )
    try:
        ran = subprocess.run(
            [BASH, str(script)], cwd=clone, env=env, capture_output=True, text=True, timeout=600
        )
        out = ran.stdout + ran.stderr
        assert ran.returncode == 0, out[-4000:]
        assert "Nothing to be done" in out or "is up to date" in out  # make venv ran, reused the venv
        assert re.search(r"^.*\bdatabase\b.*\bok\b", out, re.M), out[-3000:]  # doctor saw the settings
        assert "status   succeeded in" in out and "Result recorded by the notebook" in out
        which = subprocess.run(
            [BASH, "-c", "source .venv/bin/activate && python -c 'import paynb; print(paynb.__file__)'"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert which.stdout.strip().startswith(str(clone)), which.stdout + which.stderr
    finally:
        subprocess.run(
            [*PAYNB, "sandbox", "down", "--dir", str(clone / ".sandbox"), "--purge"],
            cwd=clone,
            env=_clean_env(),
            capture_output=True,
            timeout=120,
        )
