// Keyboard shortcuts: one table drives both the key handling and the help overlay.
//
//   const keys = new Shortcuts([{ keys: ["Control+z", "Meta+z"], label: "Ctrl+Z", help: "Undo", run: undo }]);
//   document.addEventListener("keydown", (e) => keys.handle(e));
//
// A binding's `keys` name the key as KeyboardEvent.key with modifiers first
// ("Control+Shift+z", "ArrowLeft", "?"); `when(event)` may limit it (e.g. to the canvas).
// Keys typed into text fields, selects and buttons (Enter / Space) are left alone.

export class Shortcuts {
  constructor(bindings) {
    this.bindings = bindings;
  }

  /** Run the binding of `event`, if any; returns whether one ran. */
  handle(event) {
    if (typing(event)) return false;
    // Exact first ("Control+Shift+z" is redo); then without Shift, which "?" and "+" need.
    for (const name of [keyName(event), keyName(event, false)]) {
      const b = this.bindings.find((x) => x.keys.includes(name) && (!x.when || x.when(event)));
      if (b) {
        event.preventDefault();
        b.run(event);
        return true;
      }
    }
    return false;
  }

  /** Rows for a help table: [label, help]. */
  rows() {
    return this.bindings.filter((b) => b.help).map((b) => [b.label, b.help]);
  }
}

/** "Control+Shift+z" for an event (modifiers in a fixed order; letters lower-case). */
export function keyName(event, withShift = true) {
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const mods = [event.ctrlKey && "Control", event.metaKey && "Meta", event.altKey && "Alt",
    withShift && event.shiftKey && "Shift"].filter(Boolean);
  return [...mods, key].join("+");
}

function typing(event) {
  const t = event.target;
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  if (t.tagName === "INPUT" && !["checkbox", "radio", "range", "button"].includes(t.type)) return true;
  return (t.tagName === "BUTTON" || t.tagName === "INPUT" || t.tagName === "SUMMARY")
    && (event.key === "Enter" || event.key === " ");
}
