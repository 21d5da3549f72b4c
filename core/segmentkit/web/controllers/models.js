// The model and mode pickers: what the service offers, and which of it fits the open media.

import { $, client } from "../page.js";
import { notify, state } from "../store.js";
import { busy, showError } from "./status.js";
import { newVideoObject, updateVideoHint } from "./video.js";

const ROLE_GROUPS = [
  ["prompter", "Prompt: points, boxes, text"],
  ["segmenter", "Segment"],
  ["tracker", "Track video"],
];
const MODE_NAMES = { prompter: "Prompt", tracker: "Track video" };

export async function loadModels() {
  const [result, stats] = await Promise.all([
    busy("Loading models…", () => client.models()),
    client.call("vision.stats", {}).catch(() => null),
  ]);
  if (stats && stats.limits) state.limits = stats.limits;
  if (!result) return;
  const select = $("model");
  select.replaceChildren();
  state.models.clear();
  state.modes.clear();
  const groups = new Map(); // label -> <optgroup>
  for (const [role, title] of ROLE_GROUPS) {
    for (const entry of result.models) {
      const card = entry.card;
      if (!entry.roles.includes(role)) continue;
      const tasks = role === "segmenter" ? card.tasks.filter((t) => !["prompt", "track", "ground"].includes(t)) : [null];
      for (const task of tasks) {
        state.modes.set([role, card.id, task || ""].join("|"), { role, id: card.id, task, card });
      }
      if (state.models.has(card.id) || !tasks.length) continue; // each model once, under its first role
      state.models.set(card.id, { card, roles: entry.roles });
      if (!groups.has(title)) {
        groups.set(title, document.createElement("optgroup"));
        groups.get(title).label = title;
      }
      const option = new Option(role === "prompter" ? `${card.id} (${card.prompt_kinds.join(", ")})` : card.id, card.id);
      option.title = card.description || "";
      groups.get(title).appendChild(option);
    }
  }
  for (const g of groups.values()) select.appendChild(g);
  if (!state.modes.size) {
    showError(new Error("no models are installed that this page can use (install a segmentkit plugin)"));
    return;
  }
  chooseModel(select.value);
}

/** Modes of model `id`: [value, label] for its roles and segmentation tasks. */
function modesOf(id) {
  return [...state.modes].filter(([, m]) => m.id === id)
    .map(([value, m]) => [value, m.role === "segmenter" ? `Segment · ${m.task}` : MODE_NAMES[m.role]]);
}

function chooseModel(id, preferred) {
  const modes = modesOf(id);
  if (!modes.length) return;
  $("model").value = id;
  const select = $("mode");
  select.replaceChildren(...modes.map(([value, label]) => new Option(label, value)));
  const want = preferred || (state.choice && `${state.choice.role}|${id}|${state.choice.task || ""}`);
  const fits = (value) => {
    const role = state.modes.get(value).role;
    return !state.media || (state.media.kind === "video") === (role === "tracker");
  };
  const pick = modes.find(([v]) => v === want && fits(v)) || modes.find(([v]) => fits(v)) || modes[0];
  chooseMode(pick[0]);
}

function chooseMode(value) {
  const choice = state.modes.get(value);
  if (!choice) return;
  const previous = state.choice;
  state.choice = choice;
  const { role, card } = choice;
  $("mode").value = value;
  const facts = [card.family, card.labels.length ? `${card.labels.length} labels` : "", card.description]
    .filter(Boolean);
  $("model-info").textContent = facts.join(" · ");
  $("prompt-tools").hidden = role === "segmenter";
  $("segment-tools").hidden = role !== "segmenter";
  $("text-form").hidden = !(card.prompt_kinds || []).includes("text");
  $("multimask").disabled = role !== "prompter";
  if (previous && (previous.id !== choice.id || previous.role !== choice.role)) {
    if (state.video) newVideoObject();
    else state.selectedPoint = null;
  }
  updateVideoHint();
  notify();
}

/** After opening media: switch to a mode of the same model that fits it, if there is one. */
export function fitModeToMedia() {
  if (state.choice) chooseModel(state.choice.id);
}

/** Wire this controller's controls. */
export function init() {
  $("model").addEventListener("change", (e) => chooseModel(e.target.value));
  $("mode").addEventListener("change", (e) => chooseMode(e.target.value));
}
