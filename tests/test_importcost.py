"""paynb defers rfc3987-syntax's grammar build that ``import jsonschema`` would pay (paynb/importcost.py).

Each case runs in a fresh interpreter: the stand-in only matters before anything imports jsonschema."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("rfc3987_syntax") is None, reason="rfc3987-syntax is not installed"
)


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_jsonschema_after_paynb_builds_no_grammar():
    out = run_python(
        """
        import sys
        import paynb, nbformat
        nbformat.validate(nbformat.v4.new_notebook())
        print("jsonschema" in sys.modules, "lark" in sys.modules)
        """
    )
    assert out == "True False"


def test_iri_format_still_checks_once_used():
    out = run_python(
        """
        import sys
        import paynb, jsonschema
        checker = jsonschema.FormatChecker()
        print("iri" in checker.checkers)
        print(checker.conforms("https://example.com/caf\\u00e9", "iri"), checker.conforms("no iri", "iri"))
        print(type(sys.modules["rfc3987_syntax"]).__name__, "lark" in sys.modules)
        """
    )
    assert out.splitlines() == ["True", "True False", "module True"]


def test_other_attributes_load_the_real_module():
    out = run_python(
        """
        import paynb, rfc3987_syntax
        print(callable(rfc3987_syntax.make_syntax_validator), type(rfc3987_syntax).__name__)
        import rfc3987_syntax as again
        print(type(again).__name__)
        """
    )
    assert out.splitlines() == ["True _DeferredModule", "module"]


def test_nothing_changes_when_jsonschema_came_first():
    out = run_python(
        """
        import sys
        import jsonschema
        from paynb.importcost import defer_iri_grammar
        print(defer_iri_grammar(), type(sys.modules["rfc3987_syntax"]).__name__)
        """
    )
    assert out == "False module"
