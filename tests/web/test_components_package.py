"""@segmentkit/components as published: its types, its manifest, and a consumer of its tarball.

Needs Node and the package's dev dependencies (`npm ci` in packages/components); skipped
with the reason otherwise, failed under SEGMENTKIT_REQUIRE_NODE=1 (CI).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from components_support import PACKAGE, require_node

TSC = PACKAGE / "node_modules" / ".bin" / "tsc"
CEM = PACKAGE / "node_modules" / ".bin" / "cem"

CONSUMER = """\
import { VisionClient, VisionError, decodeRle } from "@segmentkit/components";
import type { OverlayMask } from "@segmentkit/components";
import { MaskOverlay, SegmentkitOverlay } from "@segmentkit/components/element";
import { VisionClient as Client } from "@segmentkit/components/client";
import { encodeRle } from "@segmentkit/components/codecs";

console.log(MaskOverlay, SegmentkitOverlay, Client === VisionClient, encodeRle(new Uint8Array(4), 2, 2));

const overlay = document.createElement("segmentkit-overlay");  // typed through HTMLElementTagNameMap
document.body.append(overlay);
overlay.src = "/photo.png";
overlay.mode = "point";
const masks: OverlayMask[] = [{ rle: { size: [2, 2], counts: "04" }, label: "cat", objectId: 1 }];
overlay.masks = masks;
overlay.addEventListener("sk-point", async (event) => {
  const { x, y, positive } = event.detail;
  try {
    const doc = await new VisionClient("http://127.0.0.1:8765/?token=abc").maskFromPrompt({
      image: { base64: "..." }, point: { x, y, positive },
    });
    overlay.masks = doc.masks.map((m) => ({ rle: m.rle, label: m.label, score: m.score }));
    const pixels: Uint8Array = decodeRle(doc.masks[0].rle);
    console.log(pixels.length);
  } catch (err) {
    if (err instanceof VisionError) console.log(err.code, err.reason);
  }
});
"""

TSCONFIG = {"compilerOptions": {"strict": True, "noEmit": True, "target": "ES2022", "module": "ESNext",
                                "moduleResolution": "Bundler", "lib": ["ES2022", "DOM", "DOM.Iterable"],
                                "types": []}, "files": ["consumer.ts"]}


def _run(*cmd: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=180)


def test_declarations_type_check_strict() -> None:
    require_node(TSC)
    done = _run(TSC, "-p", "tsconfig.json", cwd=PACKAGE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_manifest_is_current(tmp_path: Path) -> None:
    """custom-elements.json (the docs' element reference) matches what the analyzer writes now."""
    require_node(CEM)
    out = os.path.relpath(tmp_path, PACKAGE)  # the analyzer takes --outdir relative to where it runs
    done = _run(CEM, "analyze", "--outdir", out, cwd=PACKAGE)  # the rest: custom-elements-manifest.config.mjs
    assert done.returncode == 0, done.stdout + done.stderr
    fresh = json.loads((tmp_path / "custom-elements.json").read_text())
    assert json.loads((PACKAGE / "package.json").read_text())["customElements"] == "custom-elements.json"
    assert fresh == json.loads((PACKAGE / "custom-elements.json").read_text()), \
        "custom-elements.json is stale: run `npm run manifest` in packages/components"


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    npm = require_node(CEM)
    out = tmp_path_factory.mktemp("pack")
    done = _run(npm, "pack", "--pack-destination", out, cwd=PACKAGE)
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = out.glob("segmentkit-components-*.tgz")
    return path


def test_tarball_holds_the_package_and_nothing_else(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("package/package.json").read())
    wanted = {f"package/{p.relative_to(PACKAGE).as_posix()}"
              for folder in ("src", "types") for p in (PACKAGE / folder).rglob("*") if p.is_file()}
    wanted |= {"package/package.json", "package/README.md", "package/custom-elements.json"}
    assert names == wanted
    assert "dependencies" not in manifest and manifest["type"] == "module"


@pytest.mark.parametrize("broken", [False, True])
def test_a_consumer_of_the_tarball_type_checks(tarball: Path, tmp_path: Path, broken: bool) -> None:
    npm = require_node(TSC)
    consumer = {"name": "consumer", "private": True, "type": "module"}
    (tmp_path / "package.json").write_text(json.dumps(consumer))
    done = _run(npm, "install", "--offline", "--no-audit", "--no-fund", tarball, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    source = CONSUMER
    if broken:  # the check can fail: a mask without its RLE, and a mode that does not exist
        source = source.replace('{ rle: { size: [2, 2], counts: "04" }, ', "{ ").replace('"point"', '"lasso"')
    (tmp_path / "consumer.ts").write_text(source)
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    done = _run(TSC, "-p", "tsconfig.json", cwd=tmp_path)
    if broken:
        assert done.returncode != 0 and "'rle' is missing" in done.stdout and '"lasso"' in done.stdout
        return
    assert done.returncode == 0, done.stdout + done.stderr
    # The DOM-free parts run in Node as installed, and export what their declarations say.
    script = ("import * as c from '@segmentkit/components/client';"
              "import * as r from '@segmentkit/components/codecs';"
              "console.log(JSON.stringify([Object.keys(c).sort(), Object.keys(r).sort()]))")
    ran = _run("node", "--input-type=module", "-e", script, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    runtime = json.loads(ran.stdout)
    for names, declared in zip(runtime, ("client.d.ts", "codecs.d.ts"), strict=True):
        text = (PACKAGE / "types" / declared).read_text()
        exported = set(re.findall(r"^export (?:class|function|const) (\w+)", text, re.M))
        assert set(names) == exported, declared


def test_declarations_and_manifest_name_the_same_events_and_attributes() -> None:
    """types/element.d.ts (what TypeScript users see) and custom-elements.json (the docs) agree."""
    declared = (PACKAGE / "types" / "element.d.ts").read_text()
    event_map = declared.split("interface SegmentkitOverlayEventMap")[1].split("}")[0]
    manifest = json.loads((PACKAGE / "custom-elements.json").read_text())
    (element,) = [d for m in manifest["modules"] for d in m.get("declarations", []) if d.get("customElement")]
    documented = {e["name"] for e in element["events"] if "description" in e}
    assert set(re.findall(r'"(sk-[a-z]+)"', event_map)) == documented
    source = (PACKAGE / "src" / "element" / "segmentkit-overlay.js").read_text()
    observed = re.search(r"observedAttributes = \[(.*?)\]", source).group(1)
    assert set(re.findall(r'"([a-z-]+)"', observed)) == {a["name"] for a in element["attributes"]}
