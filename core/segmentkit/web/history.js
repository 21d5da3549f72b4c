// Undo / redo of whole snapshots. The page records the state *before* each change; undo
// swaps the current state for the last recorded one (keeping the current for redo).
// Snapshots are plain data (structuredClone'd here), so a later change can't alter them.

export class History {
  constructor(limit = 200) {
    this.limit = limit;
    this._undo = []; // [{label, snapshot}]
    this._redo = [];
  }

  /** Record `snapshot` (the state before a change named `label`); clears redo. */
  record(label, snapshot) {
    this._undo.push({ label, snapshot: structuredClone(snapshot) });
    if (this._undo.length > this.limit) this._undo.shift();
    this._redo = [];
  }

  /** Forget the last record (a change that did not happen after all): its snapshot. */
  drop() {
    const entry = this._undo.pop();
    return entry ? entry.snapshot : null;
  }

  /** The snapshot to go back to, given the `current` one; null when there is none. */
  undo(current) {
    return this._swap(this._undo, this._redo, current);
  }

  /** The snapshot to go forward to, given the `current` one; null when there is none. */
  redo(current) {
    return this._swap(this._redo, this._undo, current);
  }

  clear() {
    this._undo = [];
    this._redo = [];
  }

  get undoLabel() {
    return this._undo.length ? this._undo[this._undo.length - 1].label : null;
  }

  get redoLabel() {
    return this._redo.length ? this._redo[this._redo.length - 1].label : null;
  }

  _swap(from, to, current) {
    const entry = from.pop();
    if (!entry) return null;
    to.push({ label: entry.label, snapshot: structuredClone(current) });
    return structuredClone(entry.snapshot);
  }
}
