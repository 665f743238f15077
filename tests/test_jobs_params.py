"""The parameters cell as a typed schema; strict conversion; credentials refused. No kernel needed."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from paynb.errors import InputError, JobError
from paynb.jobs.params import (
    ParamSchema,
    load_params_file,
    read_notebook_schema,
    read_schema,
    redacted_values,
    render_parameters_source,
    resolve_parameters,
)
from paynb.jobs.patterns import name_looks_secret, value_looks_secret

NOTEBOOKS = Path(__file__).parent / "notebooks"


def schema_of(source: str, secret_values: list[str] | None = None) -> ParamSchema:
    nb = new_notebook(
        cells=[new_code_cell("print(1)"), new_code_cell(source, metadata={"tags": ["parameters"]})]
    )
    return read_schema(nb, notebook="t.ipynb", secret_values=secret_values or [])


@pytest.fixture(scope="module")
def schema() -> ParamSchema:
    return read_notebook_schema(NOTEBOOKS / "success.ipynb")


def test_schema_reads_types_defaults_help_and_redaction(schema: ParamSchema) -> None:
    p = schema.params
    assert schema.cell_index == 1
    assert [str(p[n].type) for n in p] == [
        "int",
        "str",
        "date",
        "Decimal",
        "bool",
        "list[str]",
        "Literal['summary', 'detail']",
        "str",
    ]
    assert p["invoice_id"].help == "the invoice to look at"
    assert p["label"].default == "0042"
    assert p["as_of"].default == date(2026, 1, 31)
    assert p["amount"].default == Decimal("0.00")
    assert p["account_name"].redact and not p["label"].redact
    assert p["account_name"].help == ""


def test_strict_conversion_from_text(schema: ParamSchema) -> None:
    values = resolve_parameters(
        schema,
        {
            "invoice_id": "0042",
            "label": "0042",
            "as_of": "2024-02-29",
            "amount": "-12.50",
            "dry_run": "FALSE",
            "methods": "PAD, EFT",
            "mode": "detail",
        },
    )
    assert values == {
        "invoice_id": 42,
        "label": "0042",
        "as_of": date(2024, 2, 29),
        "amount": Decimal("-12.50"),
        "dry_run": False,
        "methods": ["PAD", "EFT"],
        "mode": "detail",
    }
    assert resolve_parameters(schema, {"methods": ""}) == {"methods": []}
    assert type(values["dry_run"]) is bool and type(values["invoice_id"]) is int


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("invoice_id", "12a", "whole number"),
        ("invoice_id", "1.5", "whole number"),
        ("as_of", "2026-02-30", "not a real date"),
        ("as_of", "30/01/2026", "YYYY-MM-DD"),
        ("as_of", "20260130", "YYYY-MM-DD"),
        ("amount", "1e3", "amount like 12.50"),
        ("amount", "NaN", "amount like 12.50"),
        ("dry_run", "yes", "true, false, 1 or 0"),
        ("mode", "everything", "one of 'summary', 'detail'"),
        ("nope", "1", "has no such parameter; it has: invoice_id"),
    ],
)
def test_bad_values_name_the_parameter(schema: ParamSchema, name: str, value: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        resolve_parameters(schema, {name: value})
    assert info.value.field == name


def test_typed_values_are_checked_not_coerced(schema: ParamSchema) -> None:
    assert resolve_parameters(
        schema, {"invoice_id": 7, "as_of": date(2026, 1, 1), "amount": Decimal("1.10")}
    ) == {
        "invoice_id": 7,
        "as_of": date(2026, 1, 1),
        "amount": Decimal("1.10"),
    }
    for name, value in [
        ("label", 42),
        ("invoice_id", True),
        ("amount", 1.1),
        ("as_of", datetime(2026, 1, 1)),
    ]:
        with pytest.raises(InputError) as info:
            resolve_parameters(schema, {name: value})
        assert info.value.field == name


def test_optional_datetime_and_list_of_int() -> None:
    schema = schema_of(
        "from datetime import datetime\nfrom typing import Optional\n"
        "when: Optional[datetime] = None\nids: list[int] = [1, 2]\nlimit: int | None = None"
    )
    values = resolve_parameters(schema, {"when": "2026-03-01T08:30:00", "ids": "3,4", "limit": ""})
    assert values == {"when": datetime(2026, 3, 1, 8, 30), "ids": [3, 4], "limit": None}
    with pytest.raises(InputError, match="whole number"):
        resolve_parameters(schema, {"ids": "3,x"})
    with pytest.raises(InputError, match="date and time"):
        resolve_parameters(schema, {"when": "2026-03-01"})


def test_credential_names_and_values_are_refused(schema: ParamSchema) -> None:
    for name in ("db_password", "clientSecret", "api_key", "auth_header", "dsn", "cfs_token"):
        assert name_looks_secret(name), name
    for name in ("invoice_id", "idempotency_key", "author", "passed_count", "keyword"):
        assert not name_looks_secret(name), name
    for value, secret in [
        ("postgresql://pay:hunter2@db/pay", False),
        ("Bearer abcdefghijklmnopqrstuvwxyz", False),
        ("AKIAIOSFODNN7EXAMPLE", False),
        ("q8V2mXr7Tz9LpA4wKc6NbY3dHs", False),
        ("configured-value-1", True),
    ]:
        with pytest.raises(InputError, match="looks like") as info:
            resolve_parameters(
                schema, {"label": value}, secret_values=["configured-value-1"] if secret else []
            )
        assert info.value.field == "label"
        assert value not in str(info.value)
    # digests and run ids are not credentials (a confirm hash is passed as a parameter)
    assert value_looks_secret("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08") is None
    assert value_looks_secret("0193a1b2-7c3d-7e4f-8a9b-0123456789ab") is None
    with pytest.raises(InputError, match="credential") as info:
        resolve_parameters(schema, {"db_password": "x"})
    assert info.value.field == "db_password"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('db_password: str = ""', "looks like a credential"),
        ('url: str = "postgresql://pay:hunter2@db/pay"', "password inside a URL"),
        ('token_text: str = ""', "looks like a credential"),
        ('label: str = "q8V2mXr7Tz9LpA4wKc6NbY3dHs"', "random-looking token"),
        ("rate: float = 0.5", "float"),
        ("invoice_id = 0", "has no type annotation"),
        ("invoice_id: int", "needs a safe default"),
        ('invoice_id: int = "x"', "does not fit its type"),
        ("opts: dict = {}", "unsupported type"),
        ("ids: list[float] = []", "use Decimal"),
        ("print('hi')", "only annotated assignments"),
        ("x: int = (", "not valid Python"),
    ],
)
def test_unfit_parameters_cells_are_refused(source: str, message: str) -> None:
    with pytest.raises(JobError, match=message):
        schema_of(source)


def test_configured_secret_as_default_is_refused() -> None:
    with pytest.raises(JobError, match="configured secret value") as info:
        schema_of('label: str = "sandbox-secret-123"', ["sandbox-secret-123"])
    assert "sandbox-secret-123" not in str(info.value)


def test_fixture_notebooks_that_must_be_refused() -> None:
    with pytest.raises(JobError, match="no cell tagged 'parameters'"):
        read_notebook_schema(NOTEBOOKS / "no_parameters.ipynb")
    with pytest.raises(JobError, match="password inside a URL") as info:
        read_notebook_schema(NOTEBOOKS / "secret_default.ipynb")
    assert "hunter2" not in str(info.value)
    with pytest.raises(JobError, match="float"):
        read_notebook_schema(NOTEBOOKS / "bad_param_type.ipynb")


def test_computed_defaults_are_allowed_but_not_evaluated() -> None:
    schema = schema_of(
        "from datetime import date, timedelta\nsince: date = date.today() - timedelta(days=30)"
    )
    assert schema.params["since"].default_source == "date.today() - timedelta(days=30)"
    assert resolve_parameters(schema, {"since": "2026-01-01"}) == {"since": date(2026, 1, 1)}


def test_params_file_keeps_text_and_lists(tmp_path: Path, schema: ParamSchema) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("label: 0042\ninvoice_id: 0042\nas_of: 2026-01-05\nmethods: [PAD, EFT]\ndry_run: false\n")
    values = resolve_parameters(schema, load_params_file(path))
    assert values == {
        "label": "0042",
        "invoice_id": 42,
        "as_of": date(2026, 1, 5),
        "methods": ["PAD", "EFT"],
        "dry_run": False,
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("label: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML") as info:
        load_params_file(bad)
    assert info.value.file == str(bad)
    with pytest.raises(InputError, match="mapping"):
        (tmp_path / "list.yaml").write_text("- a\n")
        load_params_file(tmp_path / "list.yaml")


def test_rendered_source_round_trips_the_types(schema: ParamSchema) -> None:
    values = resolve_parameters(
        schema,
        {"invoice_id": "7", "as_of": "2026-01-02", "amount": "3.10", "methods": "A,B", "label": "it's"},
    )
    source = render_parameters_source(values, header="test")
    namespace: dict = {"date": "shadowed by the notebook", "Decimal": None}
    exec(compile(source, "injected", "exec"), namespace)  # our own rendering of typed values
    assert {k: namespace[k] for k in values} == values
    assert namespace["date"] == "shadowed by the notebook"  # private aliases, removed afterwards
    assert "_paynb_dt" not in namespace and "_paynb_decimal" not in namespace


def test_redacted_values_hide_marked_parameters(schema: ParamSchema) -> None:
    values = resolve_parameters(schema, {"account_name": "Jane Doe", "label": "x"})
    assert redacted_values(schema, values) == {"account_name": "***", "label": "x"}
