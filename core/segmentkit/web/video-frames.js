// Decode a video file into frames in the browser: a <video> element seeks to each sample
// time and a canvas copies the picture. Only formats the browser plays (WebM, MP4/H.264
// where supported) can be read; the service never sees the file, only the frames.

/**
 * Read frames of `file` at `fps` frames per second (at most `maxFrames`).
 * @param {Blob} file
 * @param {{fps?: number, maxFrames?: number, onProgress?: (done: number, total: number) => void}} [options]
 * @returns {Promise<{frames: ImageBitmap[], width: number, height: number, fps: number, duration: number}>}
 */
export async function readVideoFrames(file, { fps = 5, maxFrames = 150, onProgress } = {}) {
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.preload = "auto";
  const url = URL.createObjectURL(file);
  try {
    video.src = url;
    await once(video, "loadeddata", "the browser cannot play this video file");
    const duration = await knownDuration(video);
    const width = video.videoWidth;
    const height = video.videoHeight;
    if (!width || !height) throw new Error("the video has no picture");
    const total = Math.max(1, Math.min(maxFrames, Math.floor(duration * fps) || 1));
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    const frames = [];
    for (let i = 0; i < total; i++) {
      // Sample the middle of each frame interval, never past the end.
      const t = Math.min((i + 0.5) / fps, Math.max(0, duration - 1e-3));
      if (Math.abs(video.currentTime - t) > 1e-6) {
        const seeked = once(video, "seeked", "seeking in the video failed");
        video.currentTime = t;
        await seeked;
      }
      ctx.drawImage(video, 0, 0, width, height);
      frames.push(await createImageBitmap(canvas));
      if (onProgress) onProgress(i + 1, total);
    }
    return { frames, width, height, fps, duration };
  } finally {
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}

function once(target, type, failure) {
  return new Promise((resolve, reject) => {
    const ok = () => {
      target.removeEventListener("error", bad);
      resolve();
    };
    const bad = () => {
      target.removeEventListener(type, ok);
      reject(new Error(failure));
    };
    target.addEventListener(type, ok, { once: true });
    target.addEventListener("error", bad, { once: true });
  });
}

// Recorded WebM files often report an infinite duration until the end has been seen.
async function knownDuration(video) {
  if (Number.isFinite(video.duration)) return video.duration;
  const changed = once(video, "durationchange", "the video has no duration");
  video.currentTime = 1e9;
  await changed;
  while (!Number.isFinite(video.duration)) await once(video, "durationchange", "the video has no duration");
  const back = once(video, "seeked", "seeking in the video failed");
  video.currentTime = 0;
  await back;
  return video.duration;
}
