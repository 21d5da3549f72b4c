"""mkdocs hooks that generate pages from the code, so they cannot drift from it.

- one page per ``segmentkit`` command (``cli/<name>.md``), read from the typer app;
- the IPC reference (``ipc-reference.md``), read from ``docs/ipc.schema.json``;
- the ``<segmentkit-overlay>`` reference (``components-reference.md``), read from the
  package's ``custom-elements.json`` (written by ``@custom-elements-manifest/analyzer``).

The nav entry ``Command line`` is filled with the generated command pages. The page
builders are plain functions (``cli_pages``, ``ipc_reference``) that tests call without mkdocs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent
MANIFEST = DOCS.parent / "packages" / "components" / "custom-elements.json"
CLI_NAV_TITLE = "Command line"


# --------------------------------------------------------------------------- CLI pages


def _command_group() -> Any:
    import typer
    from segmentkit.cli.app import load_commands

    return typer.main.get_command(load_commands())


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _param_row(param: Any) -> str:
    import click

    names = ", ".join(f"`{name}`" for name in [*param.opts, *param.secondary_opts])
    kind = getattr(param, "type", None)
    if isinstance(kind, click.Choice):
        value = " \\| ".join(f"`{c}`" for c in kind.choices)
    elif getattr(param, "is_flag", False):
        value = "flag"
    else:
        value = f"`{param.metavar or getattr(kind, 'name', 'text').upper()}`"
    if getattr(param, "multiple", False):
        value += " (repeatable)"
    default = "required" if param.required else ("" if param.default in (None, False, ()) else f"`{param.default}`")
    return f"| {names} | {value} | {default} | {_cell(getattr(param, 'help', None) or '')} |"


def cli_pages() -> dict[str, str]:
    """``{"cli/<name>.md": markdown}`` for every command, plus ``cli/index.md``."""
    group = _command_group()
    pages: dict[str, str] = {}
    index = ["# Command line", "", _cell(group.help or ""), "",
             "Every command is `segmentkit <command> [OPTIONS] ...`; `segmentkit <command> --help` "
             "prints the same reference as these pages.", "", "| command | what it does |", "|---|---|"]
    for name, command in group.commands.items():
        args = [p for p in command.params if p.param_type_name == "argument"]
        opts = [p for p in command.params if p.param_type_name != "argument"]
        usage = " ".join(["segmentkit", name, "[OPTIONS]",
                          *(p.name.upper() + ("..." if p.nargs == -1 else "") for p in args)])
        lines = [f"# segmentkit {name}", "", (command.help or "").strip(), "", "```", usage, "```", ""]
        for title, params in (("Arguments", args), ("Options", opts)):
            if params:
                lines += [f"## {title}", "", "| name | value | default | meaning |", "|---|---|---|---|"]
                lines += [_param_row(p) for p in params] + [""]
        pages[f"cli/{name}.md"] = "\n".join(lines)
        short = (command.help or "").strip().split("\n")[0]
        index.append(f"| [`{name}`]({name}.md) | {_cell(short)} |")
    pages["cli/index.md"] = "\n".join(index) + "\n"
    return pages


# --------------------------------------------------------------------------- IPC reference


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        items = schema.get("prefixItems")
        if items:
            return "[" + ", ".join(_type(s) for s in items) + "]"
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"object of {_type(schema['additionalProperties'])}"
    return "null" if kind == "null" else f"{kind}"


def ipc_reference(schema_path: Path = DOCS / "ipc.schema.json") -> str:
    """The IPC reference page, from the committed JSON Schema of every method."""
    doc = json.loads(schema_path.read_text())
    intro = _cell(doc["description"]).replace("see docs/ipc.md", "see the [guide](ipc.md)")
    lines = ["# IPC reference", "", f"{intro} Generated from [`ipc.schema.json`](ipc.schema.json).", "",
             "## Methods", "",
             "| method | params | result | what it does |", "|---|---|---|---|"]
    for name, method in sorted(doc["methods"].items()):
        lines.append(f"| `{name}` | {_type(method['params'])} | {_type(method['result'])} "
                     f"| {_cell(method['description'])} |")
    lines += ["", "## Notifications", "", "| method | params | what it carries |", "|---|---|---|"]
    for name, note in sorted(doc["notifications"].items()):
        lines.append(f"| `{name}` | {_type(note['params'])} | {_cell(note['description'])} |")
    lines += ["", "## Errors", "", "| code | name |", "|---|---|"]
    lines += [f"| {e['code']} | `{e['name']}` |" for e in doc["errors"]]
    lines += ["", "## Types", ""]
    for name, schema in sorted(doc["$defs"].items()):
        lines += [f"### {name}", "", _cell(schema.get("description", "")), ""]
        props = schema.get("properties", {})
        if props:
            required = set(schema.get("required", ()))
            lines += ["| field | type | required | meaning |", "|---|---|---|---|"]
            for field, spec in props.items():
                default = f" Default: `{json.dumps(spec['default'])}`." if "default" in spec else ""
                lines.append(f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
                             f"{_cell(spec.get('description', ''))}{default} |")
            lines.append("")
        elif "enum" in schema or "type" in schema:
            lines += [f"Type: {_type(schema)}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- element reference


def _js_type(entry: dict[str, Any]) -> str:
    text = entry.get("type", {}).get("text", "")
    return f"`{_cell(text)}`" if text else ""


def components_reference(manifest_path: Path = MANIFEST) -> str:
    """The ``<segmentkit-overlay>`` reference page, from the package's custom-elements.json."""
    doc = json.loads(manifest_path.read_text())
    lines = ["# `<segmentkit-overlay>` reference", "",
             "Generated from `packages/components/custom-elements.json` (the package's manifest, written by "
             "`@custom-elements-manifest/analyzer` from the element's source). The guide: "
             "[Embed segmentation in your web app](embed-web.md).", ""]
    for module in doc["modules"]:
        for element in (d for d in module.get("declarations", []) if d.get("customElement")):
            lines += [f"## `<{element['tagName']}>` ({element['name']}, `{module['path']}`)", "",
                      _cell(element.get("summary", "")), "", element.get("description", ""), ""]
            lines += ["### Attributes", "", "| attribute | type | meaning |", "|---|---|---|"]
            lines += [f"| `{a['name']}` | {_js_type(a)} | {_cell(a.get('description', ''))} |"
                      for a in element.get("attributes", [])]
            members = [m for m in element.get("members", [])
                       if m.get("description") and m.get("privacy") is None and not m["name"].startswith("_")]
            lines += ["", "### Properties", "", "| property | type | meaning |", "|---|---|---|"]
            lines += [f"| `{m['name']}` | {_js_type(m)} | {_cell(m['description'])} |"
                      for m in members if m["kind"] == "field"]
            lines += ["", "### Methods", "", "| method | meaning |", "|---|---|"]
            for m in (m for m in members if m["kind"] == "method"):
                params = ", ".join(p["name"] for p in m.get("parameters", []))
                lines.append(f"| `{m['name']}({params})` | {_cell(m['description'])} |")
            lines += ["", "### Events", "", "| event | detail | when |", "|---|---|---|"]
            lines += [f"| `{e['name']}` | {_js_type(e)} | {_cell(e.get('description', ''))} |"
                      for e in element.get("events", []) if e.get("description")]
            lines += ["", "### Parts (`::part(...)`)", "", "| part | what |", "|---|---|"]
            lines += [f"| `{p['name']}` | {_cell(p.get('description', ''))} |"
                      for p in element.get("cssParts", [])]
            lines += ["", "### CSS custom properties", "", "| property | default | what |", "|---|---|---|"]
            lines += [f"| `{c['name']}` | `{c.get('default', '')}` | {_cell(c.get('description', ''))} |"
                      for c in element.get("cssProperties", [])]
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- mkdocs hooks


def generated_pages() -> dict[str, str]:
    return {**cli_pages(), "ipc-reference.md": ipc_reference(),
            "components-reference.md": components_reference()}


def on_config(config: Any) -> Any:
    """Fill the ``Command line`` nav section with one entry per command."""
    commands = [path for path in cli_pages() if path != "cli/index.md"]
    entry = ["cli/index.md", *({f"segmentkit {Path(p).stem}": p} for p in commands)]
    config["nav"] = [{CLI_NAV_TITLE: entry} if isinstance(item, dict) and CLI_NAV_TITLE in item else item
                     for item in config["nav"]]
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        files.append(File.generated(config, path, content=text))
    return files
