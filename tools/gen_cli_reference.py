"""Write docs/cli.md, the reference of every ``paynb`` command, from the click tree.

Usage: python tools/gen_cli_reference.py [--check] [OUT]   (default OUT: docs/cli.md; ``make docs`` runs it)

The output depends only on the click tree: commands depth-first in the order ``paynb --help`` lists them
(click sorts each group's commands by name), no terminal width, no environment values. ``--check`` writes
nothing and exits 1 when OUT differs, which is what tests/test_cli_reference.py asserts.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "cli.md"
REGENERATE = "make docs   (or: .venv/bin/python tools/gen_cli_reference.py)"

HEADER = """\
# CLI reference

Generated from the click tree by `tools/gen_cli_reference.py`; do not edit by hand. Regenerate with
`make docs` after changing a command, an option or a help text (`tests/test_cli_reference.py` fails while
this file is stale). Every command also answers `--help` (or `-h`).
"""


def walk(
    command: click.Command, path: tuple[str, ...], parent: click.Context | None = None
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Depth-first: a group, then each visible sub-command in the order ``--help`` lists them."""
    ctx = click.Context(command, info_name=path[-1], parent=parent, **command.context_settings)
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from walk(sub, (*path, name), ctx)


def help_markdown(text: str) -> list[str]:
    """click help text as markdown: ``\\b`` paragraphs (examples, lists) become code blocks."""
    text = inspect.cleandoc(text.split("\f", 1)[0])
    out: list[str] = []
    for para in text.split("\n\n"):
        lines = para.split("\n")
        if lines[0].strip() == "\b":
            body = [ln for ln in lines[1:] if ln.strip() != "\b"]
            title = body[0].strip() if body and body[0].strip().endswith(":") else None
            code = body[1:] if title else body
            if title:
                out += [title, ""]
            out += ["```text", *inspect.cleandoc("\n".join(code)).split("\n"), "```", ""]
        else:
            out += [" ".join(ln.strip() for ln in lines), ""]
    return out


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def param_type(param: click.Parameter) -> str:
    if getattr(param, "is_flag", False) and not getattr(param, "count", False):
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        name = " \\| ".join(str(c) for c in kind.choices)
    elif isinstance(kind, click.DateTime):
        name = "datetime"
    else:
        name = kind.name
    return f"{name} × {param.nargs}" if param.nargs > 1 else name


def param_default(param: click.Parameter) -> str:
    """The default only where it is a plain value: a callable default may read the environment."""
    default = param.default
    # click >= 8.3 marks "no default" with a sentinel enum member rather than None
    if callable(default) or type(default).__name__ == "Sentinel" or default in (None, False, (), []):
        return ""
    if isinstance(default, list | tuple):
        return ", ".join(f"`{v}`" for v in default)
    return f"`{default}`"


def option_rows(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    help_names = set(ctx.help_option_names)
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden or help_names & set(param.opts):
            continue
        names = ", ".join(f"`{n}`" for n in (*param.opts, *param.secondary_opts))
        rows.append(
            f"| {names} | {cell(param_type(param))} | {param_default(param)} | {cell(param.help or '')} |"
        )
    if not rows:
        return []
    return ["| option | type | default | help |", "|---|---|---|---|", *rows, ""]


def usage(command: click.Command, ctx: click.Context) -> str:
    pieces = command.collect_usage_pieces(ctx)
    return " ".join([ctx.command_path, *pieces])


def render(root: click.Command) -> str:
    entries = list(walk(root, ("paynb",)))
    out = [HEADER, "## Commands", ""]
    for path, command, _ in entries:
        depth = len(path) - 1
        summary = command.get_short_help_str(limit=90)
        anchor = "-".join(path)
        out.append(f"{'  ' * depth}- [`{' '.join(path)}`](#{anchor}) — {summary}")
    out.append("")
    for path, command, ctx in entries:
        out += [f'<a id="{"-".join(path)}"></a>', "", f"## `{' '.join(path)}`", ""]
        out += ["```text", usage(command, ctx), "```", ""]
        if command.help:
            out += help_markdown(command.help)
        out += option_rows(command, ctx)
    return "\n".join(out).rstrip("\n") + "\n"


def generate() -> str:
    from paynb.cli import cli

    return render(cli)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    out = Path(args[0]) if args else DEFAULT_OUT
    text = generate()
    current = out.read_text(encoding="utf-8") if out.exists() else None
    if check:
        if current != text:
            print(f"{out} is not current; regenerate it with: {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
