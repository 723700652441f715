#!/usr/bin/env python3
"""Writes the video-file parity fixtures that tests/data/test_video_ffmpeg.cpp reads:
tests/reference/video/*.

Run:  /work/pyenv/bin/python tests/reference/make_video_fixtures.py
Needs PyAV (`pip install av`: writes the test videos) and decord (`pip install decord`: the
reference's decoder; its 0.6.0 wheel is py3-none and installs on Python 3.11, bundling FFmpeg 4.1).
The exact versions are printed and recorded in tests/reference/video_versions.txt.

The reference is imagebind/data.py's load_and_transform_video_data itself, unchanged except for the
spatial size (ShortSideScale(VIDEO_SIZE) and SpatialCrop(VIDEO_SIZE, 3) instead of 224 for the
small fixtures, as in make_image_fixtures.py), reading the videos through pytorchvideo's
EncodedVideo with decoder="decord" as data.py does. The import shims are those of
make_image_fixtures.py (imported from it), plus one for pytorchvideo 0.1.5's from_path, which lacks
the sample_rate argument data.py passes (EncodedVideoShim: audio only, not decoded here).

Outputs (< 400 KB in all):
1. lossless.mkv: 33 procedural frames (40 x 30, make_image_fixtures.procedural, seeds 500 + i) at
   15/2 = 7.5 fps in FFV1 (bgr0): lossless, so every decoder gives the source frames (checked here
   for decord and PyAV). lossless_out.npy: data.py on it, size VIDEO_SIZE -> (1, 15, 3, 2, 16, 16).
2. lossy.mp4: 75 frames (64 x 48, moving_pattern) at 30000/1001 fps, MPEG-4 Part 2 yuv420p with B-frames (quantizer
   2-3), I and P frames: the common lossy case; decoders of MPEG-4 Part 2 and libswscale's YUV -> RGB
   are the same code across FFmpeg 4.1 (decord) and 5.1 (Debian 12), so the C++ side matches it too.
   No B-frames: after its backward seek between clips, decord 0.6.0 returns the wrong frames of
   streams with B-frames (a known decord bug; measured here on a B-frame twin and recorded in the
   versions file), while bindery returns frame i: there the two cannot agree.
   lossy_out.npy: data.py on it, size VIDEO_SIZE; lossy_full_sums.npy: float64 (15, 3, 2) sums of
   each view/channel/frame at the reference's 224 and lossy_full_strided.npy: float32
   out[0, :, :, :, ::16, ::16] at 224 (15, 3, 2, 14, 14).
3. info.json: what decord reports (len, get_avg_fps) and the frame indices of each clip.
"""
import json
import math
import os
import platform
import sys
from fractions import Fraction
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_image_fixtures as mif  # noqa: E402  (its shims make imagebind.data importable)

import av  # noqa: E402
import decord  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

data = mif.data
OUT = os.path.join(HERE, "video")
VIDEO_SIZE = 16


def moving_pattern(height, width, i):
    """Frame i of a smooth moving pattern (diagonal ramps that wrap, a drifting box): lossy codecs
    keep it close, unlike procedural()'s per-channel noise, which 4:2:0 chroma cannot hold."""
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    frame = np.stack([(4 * x + 3 * i) % 256, (5 * y + 2 * i) % 256, (2 * (x + y) + 7 * i) % 256], axis=-1)
    box = (np.abs(x - (10 + i % 40)) < 6) & (np.abs(y - 20) < 8)
    frame[box] = (250, 240, 30)
    return frame.astype(np.uint8)


def write_video(path, frames, codec, pix_fmt, rate, options=None, max_b_frames=0):
    """RGB uint8 frames (T, H, W, 3) -> a video file, one frame per 1 / rate."""
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width = frames.shape[2]
        stream.height = frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.codec_context.max_b_frames = max_b_frames
        stream.codec_context.gop_size = 12
        stream.codec_context.thread_count = 1
        if options:
            stream.codec_context.options = options
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class EncodedVideoShim:
    """data.py calls EncodedVideo.from_path(path, decoder="decord", decode_audio=False, sample_rate=...):
    the pytorchvideo commit ImageBind pins forwards sample_rate to the decoder class; PyPI's 0.1.5
    does not accept it. It only matters for audio, which data.py does not decode: dropped here."""

    @staticmethod
    def from_path(path, decoder, decode_audio, **_):
        return mif.ENCODED_VIDEO.from_path(path, decode_audio=decode_audio, decoder=decoder)


def reference(path, size):
    """data.py's load_and_transform_video_data([path]) with the spatial size `size`."""
    original_scale, original_crop = mif.ORIGINAL_SCALE, mif.ORIGINAL_CROP
    data.pv_transforms.ShortSideScale = lambda _: original_scale(size)
    data.SpatialCrop = lambda _, num_crops: original_crop(size, num_crops=num_crops)
    try:
        return data.load_and_transform_video_data([path], "cpu").numpy()
    finally:
        data.pv_transforms.ShortSideScale, data.SpatialCrop = original_scale, original_crop


def clip_indices(n, fps):
    """The frames data.py's clips read (decord's get_clip ranges + UniformTemporalSubsample(2))."""
    from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler
    sampler = ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=5)
    clips = []
    for start, end in data.get_clip_timepoints(sampler, n / fps):
        first, last = math.ceil(fps * start), min(math.ceil(fps * end), n)
        picks = torch.linspace(0, last - first - 1, 2).clamp(0, last - first - 1).long()
        clips.append([first + int(p) for p in picks])
    return clips


def batch(reader, indices):
    """decord frames as numpy (pytorchvideo switches decord's bridge to torch once it is imported)."""
    frames = reader.get_batch(indices)
    return frames.asnumpy() if hasattr(frames, "asnumpy") else frames.numpy()


def describe(path):
    reader = decord.VideoReader(path, ctx=decord.cpu(0))
    n, fps = len(reader), reader.get_avg_fps()
    with av.open(path) as container:
        rate = container.streams.video[0].average_rate
    return reader, {"frames": n, "fps": fps, "pyav_average_rate": f"{rate.numerator}/{rate.denominator}",
                    "clips": clip_indices(n, fps)}


def main():
    os.makedirs(OUT, exist_ok=True)
    mif.ORIGINAL_SCALE, mif.ORIGINAL_CROP = data.pv_transforms.ShortSideScale, data.SpatialCrop
    mif.ENCODED_VIDEO = data.EncodedVideo
    data.EncodedVideo = EncodedVideoShim
    info = {}

    # 1. lossless: FFV1 in Matroska at 7.5 fps
    frames = np.stack([mif.procedural(30, 40, 3, 500 + i) for i in range(33)])
    path = os.path.join(OUT, "lossless.mkv")
    write_video(path, frames, "ffv1", "bgr0", Fraction(15, 2))
    reader, info["lossless.mkv"] = describe(path)
    decoded = batch(reader, list(range(len(reader))))
    assert decoded.shape == frames.shape and (decoded == frames).all(), "decord: lossless frames differ"
    with av.open(path) as container:
        pyav = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert (pyav == frames).all(), "PyAV: lossless frames differ"
    out = reference(path, VIDEO_SIZE)
    np.save(os.path.join(OUT, "lossless_out.npy"), out.astype(np.float32))
    # The same frames as data.py sees them through the frame-folder reader of make_image_fixtures:
    # identical, so the file and folder paths agree in the reference too.
    info["lossless.mkv"]["output_shape"] = list(out.shape)

    # 2. lossy: MPEG-4 Part 2 yuv420p with B-frames in MP4 at 30000/1001 fps
    frames = np.stack([moving_pattern(48, 64, i) for i in range(75)])
    path = os.path.join(OUT, "lossy.mp4")
    write_video(path, frames, "mpeg4", "yuv420p", Fraction(30000, 1001), {"qmin": "2", "qmax": "3"})
    reader, info["lossy.mp4"] = describe(path)
    out = reference(path, VIDEO_SIZE)
    np.save(os.path.join(OUT, "lossy_out.npy"), out.astype(np.float32))
    full = reference(path, 224)
    np.save(os.path.join(OUT, "lossy_full_sums.npy"), full[0].astype(np.float64).sum(axis=(3, 4)))
    np.save(os.path.join(OUT, "lossy_full_strided.npy"), np.ascontiguousarray(full[0, :, :, :, ::16, ::16]))
    info["lossy.mp4"]["output_shape"] = list(full.shape)
    diff = np.abs(batch(reader, list(range(len(reader)))).astype(int) - frames)
    info["lossy.mp4"]["decoded_vs_source"] = {"mean_abs_diff": round(float(diff.mean()), 3), "max_abs_diff": int(diff.max())}

    # Not committed: the same video with B-frames. data.py's clips read frames [first, last) with
    # get_batch, one clip after the other; from clip 1 on decord seeks back, and with B-frames its
    # seek lands off the requested frame (dmlc/decord#54, #365). Recorded: which frame each read is.
    bframes = os.path.join(OUT, "bframes_tmp.mp4")
    write_video(bframes, frames, "mpeg4", "yuv420p", Fraction(30000, 1001), {"qmin": "2", "qmax": "3"},
                max_b_frames=2)
    reader = decord.VideoReader(bframes, ctx=decord.cpu(0))
    truth = batch(decord.VideoReader(bframes, ctx=decord.cpu(0)), list(range(len(reader))))
    offsets = []
    for first, last_pick in info["lossy.mp4"]["clips"]:  # get_clip reads [first, last_pick + 1)
        got = batch(reader, list(range(first, last_pick + 1)))
        offsets.append(sorted({int(np.argmin([np.abs(g.astype(int) - t).sum() for t in truth])) - (first + j)
                               for j, g in enumerate(got)}))
    os.remove(bframes)
    info["bframes (not committed)"] = {"frame offsets of decord's reads per clip": offsets}

    with open(os.path.join(OUT, "info.json"), "w") as f:
        json.dump(info, f, indent=1, separators=(",", ": "))
        f.write("\n")

    versions = [f"python {platform.python_version()}"]
    for package in ("torch", "torchvision", "numpy", "pytorchvideo", "imagebind-unofficial", "decord", "av"):
        versions.append(f"{package} {metadata.version(package)}")
    libs = sorted(os.listdir(os.path.join(os.path.dirname(decord.__file__), "..", "decord.libs")))
    versions.append("decord's bundled FFmpeg: " + ", ".join(n for n in libs if n.startswith(("libav", "libsw"))))
    versions.append("PyAV's FFmpeg (writes the videos only): " +
                    ", ".join(f"{k} {'.'.join(map(str, v))}" for k, v in sorted(av.library_versions.items())))
    versions.append("B-frame twin of lossy.mp4 (not committed): frame offsets of decord's reads, per clip: "
                    f"{offsets} (0 = the requested frame)")
    for name, entry in info.items():
        if "frames" not in entry:
            continue
        versions.append(f"{name}: decord len {entry['frames']}, get_avg_fps {entry['fps']!r} "
                        f"(PyAV average_rate {entry['pyav_average_rate']}), clips {entry['clips']}")
    versions.append(f"lossless.mkv: decord and PyAV decode the 33 source frames exactly; outputs at size {VIDEO_SIZE}")
    versions.append(f"lossy.mp4: decord's frames vs the source: {info['lossy.mp4']['decoded_vs_source']}; "
                    f"outputs at size {VIDEO_SIZE} and 224 (sums + ::16 strided)")
    with open(os.path.join(HERE, "video_versions.txt"), "w") as f:
        f.write("\n".join(versions) + "\n")
    print("\n".join(versions))
    total = sum(os.path.getsize(os.path.join(OUT, name)) for name in os.listdir(OUT))
    print(f"wrote {OUT}: {total / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
