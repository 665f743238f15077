"""Extract ``fee_codes`` and ``filing_types`` rows from sbc-pay's alembic data migrations.

Reads every ``pay-api/migrations/versions/*.py`` of an sbc-pay checkout (or of its git mirror at a
commit), orders them along the ``down_revision`` chain, and replays what their ``upgrade()`` does to
the two tables: ``op.bulk_insert(<table>, [...])`` on a ``table("fee_codes" | "filing_types", ...)``
(the singular names the early migrations used too), and ``op.execute`` SQL that inserts, updates or
deletes rows by code. Writes ``paynb/sandbox/catalogue/fee_codes.csv`` and ``filing_types.csv`` and
lists the migrations that contributed in ``paynb/sandbox/catalogue/README.md``.

    python tools/extract_fee_catalogue.py --git /work/.mirror/bcgov+sbc-pay/repo --commit 2e8b1531b
"""

from __future__ import annotations

import argparse
import ast
import csv
import re
import subprocess
from decimal import Decimal
from pathlib import Path

VERSIONS = "pay-api/migrations/versions"
TABLES = {
    "fee_code": "fee_codes",
    "fee_codes": "fee_codes",
    "filing_type": "filing_types",
    "filing_types": "filing_types",
}
OUT = Path(__file__).resolve().parents[1] / "paynb" / "sandbox" / "catalogue"

_NAME = r"(fee_codes?|filing_types?)"
_INSERT = re.compile(
    rf"insert\s+into\s+{_NAME}\s*\(([^)]*)\)\s*values\s*(.+?)(?:on\s+conflict.*)?;?\s*$", re.I | re.S
)
_UPDATE = re.compile(rf"update\s+{_NAME}\s+set\s+(.+?)\s+where\s+code\s*(=|in)\s*(.+?);?\s*$", re.I | re.S)
_DELETE = re.compile(rf"delete\s+from\s+{_NAME}\s+where\s+code\s*(=|in)\s*(.+?);?\s*$", re.I | re.S)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def read_versions(git: Path | None, commit: str, checkout: Path | None) -> dict[str, str]:
    if checkout is not None:
        return {p.name: p.read_text() for p in sorted((checkout / VERSIONS).glob("*.py"))}
    names = subprocess.run(
        ["git", "-C", str(git), "ls-tree", "-z", "--name-only", f"{commit}:{VERSIONS}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    out = {}
    for name in names:
        if name.endswith(".py"):
            out[name] = subprocess.run(
                ["git", "-C", str(git), "show", f"{commit}:{VERSIONS}/{name}"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
    return out


def revision_of(tree: ast.Module) -> tuple[str | None, tuple[str, ...]]:
    rev, down = None, ()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if name == "revision":
                rev = value
            elif name == "down_revision":
                down = tuple(value) if isinstance(value, (tuple, list)) else ((value,) if value else ())
    return rev, down


def chain_order(files: dict[str, ast.Module]) -> list[str]:
    """File names in upgrade order (a parent before its children; ties by file name)."""
    by_rev, parents = {}, {}
    for name, tree in files.items():
        rev, down = revision_of(tree)
        if rev:
            by_rev[rev] = name
            parents[rev] = down
    done: list[str] = []
    seen: set[str] = set()
    pending = sorted(by_rev, key=lambda r: by_rev[r])
    while pending:
        progressed = False
        for rev in list(pending):
            if all(p in seen or p not in by_rev for p in parents[rev]):
                seen.add(rev)
                done.append(by_rev[rev])
                pending.remove(rev)
                progressed = True
        if not progressed:
            raise SystemExit(f"revision cycle among {pending}")
    return done


def sql_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = sql_text(node.left), sql_text(node.right)
        return left + right if left is not None and right is not None else None
    return None


def codes_in(op: str, text: str) -> list[str]:
    return (
        [m.replace("''", "'") for m in _QUOTED.findall(text)] if op.lower() == "in" else [text.strip(" '\"")]
    )


def literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError):
        return None


class Replay:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, dict[str, str]]] = {"fee_codes": {}, "filing_types": {}}
        self.sources: dict[str, set[str]] = {"fee_codes": set(), "filing_types": set()}

    def put(self, table: str, row: dict, source: str) -> None:
        code = str(row.get("code", "")).strip()
        if not code:
            return
        kept = {k: v for k, v in row.items() if k in ("code", "amount", "description")}
        self.rows[table].setdefault(code, {}).update({k: str(v) for k, v in kept.items()})
        self.sources[table].add(source)

    def execute(self, sql: str, source: str) -> None:
        for statement in filter(None, (s.strip() for s in sql.split(";"))):
            if m := _INSERT.match(statement):
                table = TABLES[m.group(1).lower()]
                cols = [c.strip().strip('"') for c in m.group(2).split(",")]
                for values in re.findall(r"\(([^()]*)\)", m.group(3)):
                    parts = [p.strip().strip("'") for p in values.split(",")]
                    self.put(table, dict(zip(cols, parts, strict=False)), source)
            elif m := _UPDATE.match(statement):
                table = TABLES[m.group(1).lower()]
                sets = dict(
                    (k.strip(), v.strip().strip("'"))
                    for k, v in (a.split("=", 1) for a in re.split(r",\s*(?=\w+\s*=)", m.group(2)))
                )
                sets = {k: v for k, v in sets.items() if k in ("amount", "description")}
                for code in codes_in(m.group(3), m.group(4)):
                    if code in self.rows[table] and sets:
                        self.rows[table][code].update(sets)
                        self.sources[table].add(source)
            elif m := _DELETE.match(statement):
                table = TABLES[m.group(1).lower()]
                for code in codes_in(m.group(2), m.group(3)):
                    if self.rows[table].pop(code, None) is not None:
                        self.sources[table].add(source)

    def upgrade(self, name: str, tree: ast.Module) -> None:
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"]
        if not funcs:
            return
        tables: dict[str, str] = {}
        lists: dict[str, ast.List] = {}  # row lists bound to a name before bulk_insert(table, name)
        calls = sorted(
            (n for n in _walk_body(funcs[0]) if isinstance(n, (ast.Assign, ast.Call))),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for node in calls:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        lists[target.id] = node.value
                continue
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                args = node.value.args
                if (
                    fname == "table"
                    and args
                    and isinstance(args[0], ast.Constant)
                    and args[0].value in TABLES
                ):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            tables[target.id] = TABLES[args[0].value]
                continue
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr == "bulk_insert" and len(node.args) >= 2 and isinstance(node.args[0], ast.Name):
                table = tables.get(node.args[0].id)
                rows = node.args[1]
                if isinstance(rows, ast.Name):
                    rows = lists.get(rows.id)
                if table and isinstance(rows, ast.List):
                    for element in rows.elts:
                        if isinstance(element, ast.Dict):
                            row = {
                                literal(k): literal(v)
                                for k, v in zip(element.keys, element.values, strict=True)
                                if k is not None
                            }
                            self.put(table, row, name)
            elif node.func.attr == "execute" and node.args:
                sql = sql_text(node.args[0])
                if sql and re.search(_NAME, sql, re.I):
                    self.execute(sql, name)


def _walk_body(func: ast.FunctionDef):
    """The nodes of ``func`` without those of functions defined inside it: a ``downgrade`` nested in
    ``upgrade`` by mistake (bcgov/sbc-pay has one, next to the BSRCH insert) never runs."""
    todo = list(func.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def write(replay: Replay, out: Path, commit: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "fee_codes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "amount"])
        for code in sorted(replay.rows["fee_codes"]):
            w.writerow(
                [code, Decimal(replay.rows["fee_codes"][code].get("amount", "0")).quantize(Decimal("0.01"))]
            )
    with (out / "filing_types.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["code", "description"])
        for code in sorted(replay.rows["filing_types"]):
            w.writerow([code, replay.rows["filing_types"][code].get("description", "")])
    lines = [
        "# Fee codes and filing types from sbc-pay's data migrations",
        "",
        f"Extracted by `tools/extract_fee_catalogue.py` from bcgov/sbc-pay `{VERSIONS}/*.py` at commit",
        f"`{commit}` (Apache-2.0): the `upgrade()` of every migration replayed in `down_revision` order.",
        f"`fee_codes.csv`: {len(replay.rows['fee_codes'])} rows; `filing_types.csv`: "
        f"{len(replay.rows['filing_types'])} rows. Regenerate with the command in the tool's docstring.",
        "",
        "Migrations that inserted, changed or deleted these rows:",
        "",
    ]
    for table in ("fee_codes", "filing_types"):
        lines.append(f"* `{table}`: " + ", ".join(f"`{s}`" for s in sorted(replay.sources[table])))
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--git", type=Path, help="an sbc-pay git directory (bare mirror is fine)")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--checkout", type=Path, help="an sbc-pay work tree instead of --git")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if not args.git and not args.checkout:
        ap.error("give --git or --checkout")
    texts = read_versions(args.git, args.commit, args.checkout)
    trees = {name: ast.parse(text) for name, text in texts.items()}
    replay = Replay()
    for name in chain_order(trees):
        replay.upgrade(name, trees[name])
    commit = args.commit
    if args.git:
        commit = subprocess.run(
            ["git", "-C", str(args.git), "rev-parse", "--short=9", args.commit],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    write(replay, args.out, commit)
    print(
        f"{len(replay.rows['fee_codes'])} fee codes, {len(replay.rows['filing_types'])} filing types -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
