// The objects of an annotated image, as plain data (no DOM), so undo can snapshot them.
//
//   doc = {objects: [obj], selected: id | null, nextId}
//   obj = {id, name, label, source: "prompt" | "segment", prompts: [...],
//          candidates: [{rle, score, label, class_id}], chosen, visible, colorIndex, model}
//
// `name` is the class name the user gave (exported as the COCO category); `label` what the
// model said. An object shows one mask: its chosen candidate.

export function emptyDoc() {
  return { objects: [], selected: null, nextId: 1 };
}

/** Append a new object (selected) and return it. */
export function addObject(doc, fields = {}) {
  const id = doc.nextId++;
  const obj = {
    id, name: "", label: null, source: "prompt", prompts: [], candidates: [], chosen: 0, visible: true,
    colorIndex: id, model: null, ...fields,
  };
  doc.objects.push(obj);
  doc.selected = id;
  return obj;
}

export function findObject(doc, id) {
  return doc.objects.find((o) => o.id === id) || null;
}

/** The object being prompted: the selected prompt object, or a new one. */
export function promptTarget(doc) {
  const obj = findObject(doc, doc.selected);
  return obj && obj.source === "prompt" ? obj : addObject(doc);
}

/** What the list and exports call an object. */
export function displayName(obj) {
  return obj.name || obj.label || `object ${obj.id}`;
}

/** The shown candidate of `obj`, or null. */
export function chosenMask(obj) {
  return obj.candidates[obj.chosen] || obj.candidates[0] || null;
}

/** Remove object `id`; the selection moves to a neighbour. */
export function removeObject(doc, id) {
  const k = doc.objects.findIndex((o) => o.id === id);
  if (k < 0) return;
  doc.objects.splice(k, 1);
  if (doc.selected === id) {
    const next = doc.objects[Math.min(k, doc.objects.length - 1)];
    doc.selected = next ? next.id : null;
  }
}

/** Move object `id` by `delta` places in the list (drawing and export order). */
export function moveObject(doc, id, delta) {
  const k = doc.objects.findIndex((o) => o.id === id);
  const to = k + delta;
  if (k < 0 || to < 0 || to >= doc.objects.length) return false;
  const [obj] = doc.objects.splice(k, 1);
  doc.objects.splice(to, 0, obj);
  return true;
}

/** `vision.mask_from_prompt` params of a prompt list (points, one box, one text). */
export function promptParams(prompts) {
  const params = {};
  const points = prompts.filter((p) => p.kind === "point").map(({ x, y, positive }) => ({ x, y, positive }));
  if (points.length) params.points = points;
  const box = prompts.find((p) => p.kind === "box");
  if (box) params.box = { x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y1 };
  const text = prompts.find((p) => p.kind === "text");
  if (text) params.text = text.text;
  return params;
}

/** MaskOverlay specs of the objects with a mask, in list order (ids "object-<id>"). */
export function overlaySpecs(doc) {
  const specs = [];
  for (const obj of doc.objects) {
    const m = chosenMask(obj);
    if (!m) continue;
    specs.push({
      id: `object-${obj.id}`, rle: m.rle, colorIndex: obj.colorIndex, label: displayName(obj), score: m.score,
      visible: obj.visible, info: { object_id: obj.id, class_id: m.class_id ?? null, name: obj.name || null },
    });
  }
  return specs;
}
