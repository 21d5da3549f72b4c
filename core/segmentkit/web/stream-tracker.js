// Tracking a video the browser decoded, with a live tracker session.
//
// The service opens video files only by path, so a page streams its frames instead:
// `segment_video_start({stream: true})`, then `push_frame` per frame, each answered with
// every object's mask on it. A live session takes prompts on the newest frames only, so a
// prompt on a frame behind the newest one restarts the session and replays the prompt
// log up to that frame; `track()` then pushes the remaining frames (re-applying logged
// corrections on the frames they were made on). `trackBackward()` feeds a second session
// the frames from the last prompted one down to the first, so each object is also found
// on the frames before its first prompt. No DOM here: frames come from a callback.

export class StreamTracker {
  /**
   * @param {import("./components/client/vision-client.js").VisionClient} client
   * @param {string} model  a tracker id
   * @param {{frameCount: number, frameImage: (index: number) => Promise<object>}} frames
   *   `frameImage(i)` resolves to the image param ({base64}) of frame i.
   */
  constructor(client, model, { frameCount, frameImage }) {
    this.client = client;
    this.model = model;
    this.frameCount = frameCount;
    this.frameImage = frameImage;
    /** Masks per frame index, as the service sent them (result-document mask records), tracking forwards. */
    this.results = new Map();
    /** Masks per frame index found tracking backwards (see `masksAt`). */
    this.backward = new Map();
    /** Frames pushed into the current session. */
    this.pushed = 0;
    this.session = null;
    this._log = new Map(); // "frame:object" -> {frame, object, params}
    this._queue = Promise.resolve();
  }

  /** Whether any prompt was given. */
  get prompted() {
    return this._log.size > 0;
  }

  /**
   * Prompt `object` on `frame` with `params` (points | box | mask | text); the prompts
   * replace earlier ones of this object on this frame. Resolves with the frame's masks.
   */
  prompt(frame, object, params, { onStatus } = {}) {
    return this._serial(async () => {
      const key = `${frame}:${object}`;
      const before = this._log.get(key);
      this._log.set(key, { frame, object, params });
      try {
        if (!this.session || frame < this.pushed - 1) await this._restart();
        for (const [f] of this.results) if (f > frame) this.results.delete(f); // tracked without this prompt
        while (this.pushed <= frame) {
          if (onStatus) onStatus(`Sending frame ${this.pushed + 1}/${frame + 1}…`);
          await this._pushNext(key);
        }
        const result = await this.session.addPrompt(frame, object, params);
        this._merge(result);
        return this.results.get(frame);
      } catch (err) {
        // A prompt that failed is not kept: it would be replayed with the next one.
        if (before) this._log.set(key, before);
        else this._log.delete(key);
        throw err;
      }
    });
  }

  /**
   * Push the remaining frames: `onFrame(index, masks, done, total)` per frame. Stops early
   * when `signal` aborts. Resolves with {framesDone, cancelled}.
   */
  track({ onFrame, signal } = {}) {
    return this._serial(async () => {
      if (!this.session || !this.prompted) throw new Error("prompt an object on a frame first (click on it)");
      const first = this.pushed;
      let done = 0;
      while (this.pushed < this.frameCount) {
        if (signal && signal.aborted) return { framesDone: done, cancelled: true };
        const index = await this._pushNext(null);
        done += 1;
        if (onFrame) onFrame(index, this.results.get(index), done, this.frameCount - first);
      }
      return { framesDone: done, cancelled: false };
    });
  }

  /**
   * Track backwards from the last prompted frame to frame 0 in a second session (the
   * tracker sees the frames in reverse, prompted as logged): `onFrame(index, masks, done,
   * total)` per frame. Resolves with {framesDone, cancelled}.
   */
  trackBackward({ onFrame, signal } = {}) {
    return this._serial(async () => {
      if (!this.prompted) throw new Error("prompt an object on a frame first (click on it)");
      const entries = [...this._log.values()];
      const last = Math.max(...entries.map((e) => e.frame));
      const session = await this.client.startVideo({ stream: true, model: this.model });
      let done = 0;
      try {
        for (let index = last; index >= 0; index--) {
          if (signal && signal.aborted) return { framesDone: done, cancelled: true };
          const found = new Map(); // object id -> mask on this frame
          const keep = (r) => r.masks.forEach((m) => found.set(m.object_id, m));
          keep(await session.pushFrame(await this.frameImage(index)));
          for (const e of entries) {
            if (e.frame === index) keep(await session.addPrompt(last - index, e.object, e.params));
          }
          this.backward.set(index, [...found.values()]);
          done += 1;
          if (onFrame) onFrame(index, this.masksAt(index), done, last + 1);
        }
      } finally {
        await session.close().catch(() => {});
      }
      return { framesDone: done, cancelled: false };
    });
  }

  /** Masks on frame `index`: tracked forwards, plus objects found only tracking backwards. */
  masksAt(index) {
    const forward = this.results.get(index) || [];
    const have = new Set(forward.map((m) => m.object_id));
    const extra = (this.backward.get(index) || []).filter((m) => !have.has(m.object_id));
    return [...forward, ...extra].sort((a, b) => a.object_id - b.object_id);
  }

  /** Frame indices with any masks, ascending. */
  frames() {
    return [...new Set([...this.results.keys(), ...this.backward.keys()])].sort((a, b) => a - b);
  }

  /** The prompt log: "frame:object" -> {frame, object, params} (a copy). */
  get log() {
    return new Map(this._log);
  }

  /** Replace the prompt log (undo / redo) and track again up to `frame`. */
  restore(log, frame) {
    return this._serial(async () => {
      this._log = new Map(log);
      this.results.clear();
      this.backward.clear();
      await this._restart();
      if (!this._log.size) return;
      while (this.pushed <= frame && this.pushed < this.frameCount) await this._pushNext(null);
    });
  }

  /** Stop tracking `object`: its logged prompts and its masks on every frame go. */
  removeObject(object) {
    return this._serial(async () => {
      const known = [...this._log.values()].some((e) => e.object === object);
      for (const [key, e] of this._log) if (e.object === object) this._log.delete(key);
      for (const results of [this.results, this.backward]) {
        for (const [f, masks] of results) results.set(f, masks.filter((m) => m.object_id !== object));
      }
      if (this.session && known) await this.session.removeObject(object);
    });
  }

  /** Close the session (the results stay). */
  close() {
    const session = this.session;
    this.session = null;
    return session ? session.close().catch(() => {}) : Promise.resolve();
  }

  async _restart() {
    await this.close();
    this.session = await this.client.startVideo({ stream: true, model: this.model });
    this.pushed = 0;
  }

  // Push the next frame, then re-apply the logged prompts made on it (except `skip`).
  async _pushNext(skip) {
    const index = this.pushed;
    const result = await this.session.pushFrame(await this.frameImage(index));
    this.pushed = index + 1;
    this.results.set(result.frame_index, result.masks);
    for (const [key, entry] of this._log) {
      if (key !== skip && entry.frame === index) {
        this._merge(await this.session.addPrompt(entry.frame, entry.object, entry.params));
      }
    }
    return result.frame_index;
  }

  // A prompt's answer replaces the masks of the objects it names, keeps the others.
  _merge(result) {
    const named = new Set(result.masks.map((m) => m.object_id));
    const kept = (this.results.get(result.frame_index) || []).filter((m) => !named.has(m.object_id));
    this.results.set(result.frame_index, [...kept, ...result.masks].sort((a, b) => a.object_id - b.object_id));
  }

  _serial(task) {
    const run = this._queue.then(task);
    this._queue = run.catch(() => {});
    return run;
  }
}
