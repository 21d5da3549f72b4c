"""The documentation: its Python examples run, and the generated pages cover the code.

`mkdocs build --strict` (in .ci/run) checks links and pages; this file needs no mkdocs.
Every ```python block in docs/*.md runs, in a fresh namespace and a temporary folder,
except in the plugin guide (its files are the example plugin that
tests/test_thirdparty_plugins.py installs and tests; its snippets need that plugin) and a
block right after ``<!-- not run: reason -->``.
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- not run: [^>]*-->\n)?```python\n(.*?)```", re.DOTALL)
PLUGIN_GUIDE = "writing-a-plugin.md"


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "_gen" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples() -> list[tuple[str, str]]:
    found = []
    for page in sorted(set(DOCS.glob("*.md")) - {DOCS / PLUGIN_GUIDE}):
        blocks = [code for marker, code in BLOCK.findall(page.read_text()) if not marker]
        found += [(f"{page.name}#{i}", code) for i, code in enumerate(blocks, start=1)]
    return found


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_python_examples_run(where, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})


def test_there_are_examples_to_run():
    pages = {where.split("#")[0] for where, _ in examples()}
    assert {"getting-started.md", "embedding.md"} <= pages


def test_every_command_has_a_page_listing_its_options():
    import typer
    from segmentkit.cli.app import load_commands

    group = typer.main.get_command(load_commands())
    pages = _hooks().cli_pages()
    assert set(pages) == {"cli/index.md", *(f"cli/{name}.md" for name in group.commands)}
    for name, command in group.commands.items():
        page = pages[f"cli/{name}.md"]
        assert page.startswith(f"# segmentkit {name}\n") and f"({name}.md)" in pages["cli/index.md"]
        for param in command.params:
            assert f"`{param.opts[0]}`" in page, f"{name}: {param.opts[0]} missing"


def test_ipc_reference_lists_every_method_and_type():
    schema = json.loads((DOCS / "ipc.schema.json").read_text())
    page = _hooks().ipc_reference()
    for name in [*schema["methods"], *schema["notifications"]]:
        assert f"| `{name}` |" in page
    for name in schema["$defs"]:
        assert f"### {name}\n" in page


def test_the_plugin_guide_lists_every_contract_check_with_its_level():
    import inspect

    from segmentkit.testing import conformance

    rows = set(re.findall(r"^\| (\w+) \| `(test_\w+)` \| (geometry|quality) \|", (DOCS / PLUGIN_GUIDE).read_text(),
                          flags=re.MULTILINE))
    expected = set()
    for contract in (conformance.ModelContract, conformance.SegmenterContract, conformance.PrompterContract,
                     conformance.TrackerContract, conformance.GrounderContract):
        label = contract.__name__.removesuffix("Contract").replace("Model", "every")
        for name, check in vars(contract).items():
            if name.startswith("test_"):
                level = "quality" if "self.require_quality()" in inspect.getsource(check) else "geometry"
                expected.add((label, name, level))
    assert rows == expected, f"missing or wrong: {sorted(expected - rows)}; not a check: {sorted(rows - expected)}"
