"""segmentkit.io.video: lazy frames from video files, frame folders, sequences and streams."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from segmentkit.errors import VideoError
from segmentkit.io.video import FrameDirectory, FrameSequence, FrameStream, VideoFile, open_video

av = pytest.importorskip("av")


def frames(count: int, size=(40, 56), seed=0) -> list[np.ndarray]:
    """Frames whose mean grey level encodes the index (so decoded order is checkable)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        base = np.full((*size, 3), 20 + 4 * i, dtype=np.int16)
        out.append(np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8))
    return out


def write_mp4(path, images, *, gop=5, fps=12):
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(gop)}  # B-frames on (x264 default): decode order != display order
        for image in images:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    return path


def level(frame: np.ndarray) -> int:
    return round((float(frame.mean()) - 20) / 4)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", frames(50))


def test_video_file_sequential_reverse_and_random(clip):
    with open_video(clip) as video:
        assert isinstance(video, VideoFile)
        assert len(video) == 50 and video.frame_size == (40, 56) and video.fps == pytest.approx(12)
        forward = [level(f) for f in video]
        assert forward == list(range(50))
        reference = [f.to_ndarray(format="rgb24") for f in av.open(str(clip)).decode(video=0)]
        backward = [video[i] for i in reversed(range(50))]
        assert all(np.array_equal(a, b) for a, b in zip(backward[::-1], reference))
        order = np.random.default_rng(1).permutation(50)
        assert all(np.array_equal(video[int(i)], reference[int(i)]) for i in order)


def test_video_file_is_lazy(clip):
    video = VideoFile(clip, cache_frames=3)
    assert len(video._cache) <= 3  # opening decodes a frame or so, not the video
    for i in range(50):
        video[i]
        assert len(video._cache) <= 3
    video.close()


def test_video_file_errors(tmp_path, clip):
    with pytest.raises(VideoError, match="no such file"):
        open_video(tmp_path / "nope.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all")
    with pytest.raises(VideoError, match="notes.mp4 is not a video PyAV can read"):
        open_video(text)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4"):
        open_video(empty)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:300])
    with pytest.raises(VideoError, match="truncated.mp4"):
        open_video(truncated)
    image = tmp_path / "still.png"
    Image.fromarray(frames(1)[0]).save(image)
    with open_video(image) as still:  # a still image is a one-frame video to FFmpeg
        assert len(still) == 1
    with open_video(clip) as video:
        with pytest.raises(VideoError, match="frame 50 is out of range: .* has frames 0..49"):
            video[50]
        with pytest.raises(VideoError, match="integer"):
            video[1.5]


def test_frame_directory_sorted_numerically(tmp_path):
    images = frames(12)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"frame_{i}.png")  # frame_10 sorts after frame_9
    (tmp_path / "notes.txt").write_text("ignored")
    with open_video(tmp_path) as video:
        assert isinstance(video, FrameDirectory)
        assert len(video) == 12 and video.frame_size == (40, 56)
        assert [level(f) for f in video] == list(range(12))
        assert np.array_equal(video[11], images[11])


def test_frame_directory_errors(tmp_path):
    with pytest.raises(VideoError, match="holds no frame images"):
        open_video(tmp_path)
    Image.fromarray(frames(1)[0]).save(tmp_path / "0.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "1.png")
    (tmp_path / "2.jpg").write_bytes(b"not a jpeg")
    video = open_video(tmp_path)
    with pytest.raises(VideoError, match="frame 1 of .* is 10x10, the first frame is 56x40"):
        video[1]
    with pytest.raises(VideoError, match="frame 2 of .*2.jpg"):
        video[2]


def test_frame_sequence():
    images = frames(5)
    video = open_video(images)
    assert isinstance(video, FrameSequence) and len(video) == 5
    assert np.array_equal(video[3], images[3])
    assert len(open_video(np.stack(images))) == 5
    with pytest.raises(VideoError, match="empty"):
        open_video([])
    with pytest.raises(VideoError, match="cannot read a video from int"):
        open_video(3)
    bad = open_video([images[0], np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(VideoError, match="is 4x4"):
        bad[1]


def test_frame_stream_holds_the_latest_frames():
    stream = FrameStream(max_held=3)
    assert len(stream) == 0 and stream.frame_size is None
    with pytest.raises(VideoError, match="no frames yet"):
        stream[0]
    images = frames(5)
    assert [stream.push(f) for f in images] == [0, 1, 2, 3, 4]
    assert len(stream) == 5 and stream.first_held == 2 and stream.frame_size == (40, 56)
    assert np.array_equal(stream[4], images[4]) and np.array_equal(stream[2], images[2])
    with pytest.raises(VideoError, match="frame 1 is not held by the stream \\(it holds frames 2..4\\)"):
        stream[1]
    with pytest.raises(VideoError, match="frame 5 pushed to the stream is 10x8, the stream's frames are 56x40"):
        stream.push(np.zeros((8, 10, 3), np.uint8))
    with pytest.raises(VideoError, match="frame 5 pushed to the stream"):
        stream.push(b"junk")
    assert len(stream) == 5
