#!/usr/bin/env python3
"""Writes the visual-preprocessing parity fixtures that tests/data reads: tests/reference/image/*.

Run:  /work/pyenv/bin/python tests/reference/make_image_fixtures.py
The exact package versions are printed and recorded in tests/reference/image_versions.txt.

The reference is imagebind/data.py itself where it can run here (its image transform, its video
SpatialCrop/NormalizeVideo, pytorchvideo's ShortSideScale, UniformTemporalSubsample and
ConstantClipsPerVideoSampler), with Pillow + torchvision for the rest. Two shims make data.py
importable in this venv, neither touches the image/video code: torchaudio (broken here: CUDA build
mismatch) is replaced by an empty module, and pytorchvideo's import of the removed
torchvision.transforms.functional_tensor is pointed at its new name _functional_tensor.

Outputs (all small; total < 2 MB):
1. Procedural images (no input files: the C++ test regenerates them with the same integer hash,
   `procedural()` below), resized like the reference:
     full_<w>x<h>.npy      uint8 (224, 224, 3): Resize(224, BICUBIC) + CenterCrop(224) on the PIL image
     resize_<name>.npy     uint8 (H, W, 3): Image.resize((W, H), filter) for more sizes and filters
     resizef_<name>.npy    float32 (H, W): the same for a mode "F" image (procedural / 3.7 - 20)
2. norm_table_in.npy / norm_table_out.npy: every uint8 value per channel through ToTensor + Normalize
   with the CLIP mean/std (3, 16, 16): proves the float32 normalization for all 256 inputs.
3. The reference's example images, read in place from shared/data (never copied):
     shared_<name>_crop.npy     uint8 (224, 224, 3) after Resize + CenterCrop
     shared_dog_tensor.npy      float32 (1, 3, 224, 224) = data.load_and_transform_vision_data
4. Decoding: small PNGs of every kind (written by our own minimal PNG encoder, so 16-bit and
   low-bit-depth variants exist) and JPEGs (Pillow/libjpeg-turbo: baseline 4:4:4, 4:2:2, 4:2:0,
   gray, progressive, a 3-pixel-wide one), each with what Pillow decodes: decode_<name>.<ext> and
   decode_<name>_rgb.npy (convert("RGB")) and decode_<name>_gray.npy (convert("L")).
5. Depth: depth_in.png (16-bit, SUN RGB-D bit-rotated millimetres) and depth_disparity.npy
   (1, 112, 112) float32: the community recipe (see include/bindery/data/depth.hpp) followed by
   Image.fromarray(mode F) -> Resize(112, BICUBIC) -> CenterCrop(112) -> ToTensor (the recipe says
   224; DEPTH_SIZE = 112 keeps the file small and runs the same code).
6. Thermal: thermal_in.png (8-bit gray) and thermal_crop.npy uint8 (224, 224): convert("L") ->
   Resize(224, BICUBIC) -> CenterCrop(224).
7. Video: video_frames/frame_XXXX.jpg (40 x 30 RGB frames) and video_out.npy: data.py's
   load_and_transform_video_data on them at `VIDEO_FPS`, with the decord reader replaced by one that
   serves these frames with decord's timing (frame i at i / fps, get_clip = frames
   [ceil(fps * start), ceil(fps * end))), and the spatial size reduced to VIDEO_SIZE so the fixture
   stays small: ShortSideScale(VIDEO_SIZE) and SpatialCrop(VIDEO_SIZE, 3).
   clip_spans.npy: rows (frame count, fps, clip k, start, end, first frame, end frame) from
   ConstantClipsPerVideoSampler(2, 5) and decord's frame range, for many frame counts and rates.
"""
import io
import math
import os
import platform
import struct
import sys
import types
import zlib
from importlib import metadata

import torchvision.transforms._functional_tensor as _ft  # noqa: E402

sys.modules["torchvision.transforms.functional_tensor"] = _ft
sys.modules["torchaudio"] = types.ModuleType("torchaudio")

import numpy as np  # noqa: E402
import PIL  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image, features  # noqa: E402
from torchvision import transforms  # noqa: E402

import imagebind.data as data  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "image")
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "imagebind_assets"))
VIDEO_FPS = 10.0
VIDEO_FRAMES = 57  # 5.7 s: five 2 s clips starting at k * 3.7 / 5
VIDEO_SIZE = 16
DEPTH_SIZE = 112  # the recipe uses 224; a smaller crop keeps the fixture small (same code path)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array))


def procedural(height, width, channels, seed):
    """Gradients, stripes that wrap 255 -> 0 (sharp edges, clipping) and hash noise. The C++ twin
    is bindery::testing::procedural_image in tests/data/image_test_util.hpp."""
    y, x, c = np.meshgrid(np.arange(height, dtype=np.uint64), np.arange(width, dtype=np.uint64),
                          np.arange(channels, dtype=np.uint64), indexing="ij")
    mask = np.uint64(0xFFFFFFFF)
    k = (x * np.uint64(2654435761) + y * np.uint64(40503) + c * np.uint64(97) + np.uint64(seed * 7919)) & mask
    k ^= k >> np.uint64(15)
    k = (k * np.uint64(2246822519)) & mask
    k ^= k >> np.uint64(13)
    noise = k & np.uint64(31)
    grad = x * np.uint64(255) // np.uint64(max(width - 1, 1)) + y * np.uint64(128) // np.uint64(max(height - 1, 1))
    stripes = np.where(((x // np.uint64(8) + y // np.uint64(11) + c) % np.uint64(3)) == 0, np.uint64(64), np.uint64(0))
    return ((grad + stripes + noise) & np.uint64(255)).astype(np.uint8)


def reference_crop(pil_image):
    t = transforms.Compose([transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
                            transforms.CenterCrop(224)])
    return np.asarray(t(pil_image))


# ---- a minimal PNG writer (any bit depth / colour type / palette / tRNS / Adam7 off) -------------
def _chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _pack_row(row, bit_depth):
    if bit_depth == 16:
        return row.astype(">u2").tobytes()
    if bit_depth == 8:
        return row.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    out = bytearray()
    values = [int(v) for v in row]
    for i in range(0, len(values), per_byte):
        byte = 0
        for j in range(per_byte):
            v = values[i + j] if i + j < len(values) else 0
            byte |= v << (8 - bit_depth * (j + 1))
        out.append(byte)
    return bytes(out)


def write_png(array, bit_depth, color_type, palette=None, trns=None):
    height, width = array.shape[:2]
    raw = b"".join(b"\x00" + _pack_row(array[y].reshape(-1), bit_depth) for y in range(height))
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    return out + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def decode_fixture(name, ext, payload):
    with open(os.path.join(OUT, f"decode_{name}.{ext}"), "wb") as f:
        f.write(payload)
    image = Image.open(io.BytesIO(payload))
    save(f"decode_{name}_rgb.npy", np.asarray(image.convert("RGB")))
    save(f"decode_{name}_gray.npy", np.asarray(image.convert("L")))
    return image.mode


def make_decode_fixtures():
    h, w = 13, 19
    rgb8 = procedural(h, w, 3, 11)
    gray8 = procedural(h, w, 1, 12)[..., 0]
    wide = procedural(h, w, 4, 13).astype(np.uint16) * 257 + procedural(h, w, 4, 14)  # 16-bit, varied low bytes
    modes = {}
    modes["png_gray1"] = decode_fixture("png_gray1", "png", write_png(gray8 >> 7, 1, 0))
    modes["png_gray2"] = decode_fixture("png_gray2", "png", write_png(gray8 >> 6, 2, 0))
    modes["png_gray4"] = decode_fixture("png_gray4", "png", write_png(gray8 >> 4, 4, 0))
    modes["png_gray8"] = decode_fixture("png_gray8", "png", write_png(gray8, 8, 0))
    modes["png_gray8_trns"] = decode_fixture("png_gray8_trns", "png",
                                             write_png(gray8, 8, 0, trns=struct.pack(">H", int(gray8[0, 0]))))
    # 16-bit gray: small values (kept) and large ones (Pillow clips them to 255).
    gray16 = (wide[..., 0] >> 6).astype(np.uint16)
    modes["png_gray16"] = decode_fixture("png_gray16", "png", write_png(gray16, 16, 0))
    modes["png_gray_alpha8"] = decode_fixture("png_gray_alpha8", "png", write_png(rgb8[..., :2], 8, 4))
    modes["png_gray_alpha16"] = decode_fixture("png_gray_alpha16", "png", write_png(wide[..., :2], 16, 4))
    modes["png_rgb8"] = decode_fixture("png_rgb8", "png", write_png(rgb8, 8, 2))
    modes["png_rgb16"] = decode_fixture("png_rgb16", "png", write_png(wide[..., :3], 16, 2))
    rgba8 = procedural(h, w, 4, 15)
    modes["png_rgba8"] = decode_fixture("png_rgba8", "png", write_png(rgba8, 8, 6))
    modes["png_rgba16"] = decode_fixture("png_rgba16", "png", write_png(wide, 16, 6))
    palette = procedural(1, 256, 3, 16)[0]
    for bits in (1, 2, 4, 8):
        indices = (gray8 >> (8 - bits)).astype(np.uint8)
        modes[f"png_palette{bits}"] = decode_fixture(f"png_palette{bits}", "png",
                                                     write_png(indices, bits, 3, palette[: 1 << bits]))
    indices = gray8 >> 4
    modes["png_palette4_trns"] = decode_fixture("png_palette4_trns", "png",
                                                write_png(indices, 4, 3, palette[:16], trns=bytes([0, 128, 255, 7])))
    # JPEGs from libjpeg-turbo (through Pillow), sizes that leave partial MCUs at both edges.
    photo = Image.fromarray(procedural(29, 37, 3, 21))
    for tag, kwargs in [("jpeg_444", dict(subsampling=0)), ("jpeg_422", dict(subsampling=1)),
                        ("jpeg_420", dict(subsampling=2)), ("jpeg_420_progressive", dict(subsampling=2, progressive=True)),
                        ("jpeg_444_progressive", dict(subsampling=0, progressive=True))]:
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", quality=87, **kwargs)
        modes[tag] = decode_fixture(tag, "jpg", buffer.getvalue())
    buffer = io.BytesIO()
    Image.fromarray(procedural(29, 37, 1, 22)[..., 0]).save(buffer, "JPEG", quality=87)
    modes["jpeg_gray"] = decode_fixture("jpeg_gray", "jpg", buffer.getvalue())
    buffer = io.BytesIO()  # chroma 2 samples wide: libjpeg replicates instead of interpolating
    Image.fromarray(procedural(9, 3, 3, 23)).save(buffer, "JPEG", quality=87, subsampling=2)
    modes["jpeg_420_narrow"] = decode_fixture("jpeg_420_narrow", "jpg", buffer.getvalue())
    modes.update(make_jpeg_cmyk_restart_fixtures())
    return modes


def make_jpeg_cmyk_restart_fixtures():
    """A CMYK JPEG (Pillow reads it as Adobe-inverted "CMYK;I" and converts it itself) and a JPEG with
    restart markers every 2 MCUs and optimized Huffman tables."""
    modes = {}
    buffer = io.BytesIO()
    Image.fromarray(procedural(21, 27, 4, 24), "CMYK").save(buffer, "JPEG", quality=90)
    modes["jpeg_cmyk"] = decode_fixture("jpeg_cmyk", "jpg", buffer.getvalue())
    buffer = io.BytesIO()
    Image.fromarray(procedural(29, 37, 3, 25)).save(buffer, "JPEG", quality=80, subsampling=2, optimize=True,
                                                    restart_marker_blocks=2)
    modes["jpeg_420_restart"] = decode_fixture("jpeg_420_restart", "jpg", buffer.getvalue())
    return modes


def make_depth_fixture():
    # SUN RGB-D stores millimetres rotated left by 3 bits in a 16-bit PNG.
    h, w = 48, 64
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    millimetres = (600 + 40 * x + 25 * y + (procedural(h, w, 1, 31)[..., 0].astype(np.int64) * 3)).astype(np.uint16)
    millimetres[5:9, 10:14] = 0       # missing measurements
    millimetres[30:33, 50:60] = 9500  # beyond the 8 m cap
    stored = ((millimetres.astype(np.uint32) << 3) | (millimetres.astype(np.uint32) >> 13)).astype(np.uint16)
    with open(os.path.join(OUT, "depth_in.png"), "wb") as f:
        f.write(write_png(stored, 16, 0))
    raw = np.asarray(Image.open(os.path.join(OUT, "depth_in.png"))).astype(np.uint16)
    # Step 1 (issue #134, the SUN RGB-D toolbox): un-rotate, millimetres -> metres, cap at 8 m.
    depth = ((raw >> 3) | (raw << 13)).astype(np.float32) / 1000.0
    depth[depth > 8] = 8
    # Step 2 (omnivore#12 convert_depth_to_disparity): clip to [0.01, 50] m, disparity = b * f / d.
    # bindery guards missing depth (0) to disparity 0 instead of clipping it to 0.01 m.
    valid = depth > 0
    depth = depth.clip(min=0.01, max=50)
    focal_length, baseline = 518.857901, 0.075
    disparity = (baseline * focal_length / depth).astype(np.float32)
    disparity[~valid] = 0
    t = transforms.Compose([transforms.Resize(DEPTH_SIZE, interpolation=transforms.InterpolationMode.BICUBIC),
                            transforms.CenterCrop(DEPTH_SIZE), transforms.ToTensor()])
    out = t(Image.fromarray(disparity))
    save("depth_disparity.npy", out.numpy().astype(np.float32))


def make_thermal_fixture():
    gray = procedural(40, 52, 1, 41)[..., 0]
    Image.fromarray(gray).save(os.path.join(OUT, "thermal_in.png"))
    image = Image.open(os.path.join(OUT, "thermal_in.png")).convert("L")
    save("thermal_crop.npy", reference_crop(image))


class FrameVideo:
    """pytorchvideo's EncodedVideoDecord timing over a list of frames (decord is not installed)."""

    def __init__(self, frames, fps):
        self._frames = frames
        self._fps = fps
        self._duration = float(len(frames)) / float(fps)

    @property
    def duration(self):
        return self._duration

    def get_clip(self, start_sec, end_sec):
        start_idx = math.ceil(self._fps * start_sec)
        end_idx = min(math.ceil(self._fps * end_sec), len(self._frames))
        video = torch.stack([torch.from_numpy(self._frames[i]) for i in range(start_idx, end_idx)])
        return {"video": video.to(torch.float32).permute(3, 0, 1, 2), "audio": None}


def make_clip_span_fixture():
    """pytorchvideo's sampler + decord's frame ranges for many (frame count, fps) pairs."""
    from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler
    rows = []
    for fps in (10.0, 24.0, 25.0, 29.97, 30.0, 30000 / 1001, 60.0):
        for n in (1, 19, 20, 21, 57, 60, 61, 299, 300, 301, 1799, 9001):
            sampler = ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=5)
            video = FrameVideo([None] * n, fps)
            for k, (start, end) in enumerate(data.get_clip_timepoints(sampler, video.duration)):
                first = math.ceil(fps * start)
                last = min(math.ceil(fps * end), n)
                rows.append([n, fps, k, float(start), float(end), first, last])
    save("clip_spans.npy", np.array(rows, dtype=np.float64))


def make_video_fixture():
    folder = os.path.join(OUT, "video_frames")
    os.makedirs(folder, exist_ok=True)
    frames = []
    for i in range(VIDEO_FRAMES):
        path = os.path.join(folder, f"frame_{i:04d}.jpg")
        Image.fromarray(procedural(30, 40, 3, 100 + i)).save(path, quality=90)
        frames.append(np.asarray(Image.open(path).convert("RGB")))

    class Encoded:
        @staticmethod
        def from_path(path, decoder, decode_audio, **kwargs):
            return FrameVideo(frames, VIDEO_FPS)

    # Shrink the spatial size: the same code path, a 100 KB fixture instead of 9 MB.
    original_scale, original_crop = data.pv_transforms.ShortSideScale, data.SpatialCrop
    data.EncodedVideo = Encoded
    data.pv_transforms.ShortSideScale = lambda size: original_scale(VIDEO_SIZE)
    data.SpatialCrop = lambda size, num_crops: original_crop(VIDEO_SIZE, num_crops=num_crops)
    out = data.load_and_transform_video_data(["frames"], "cpu")
    save("video_out.npy", out.numpy().astype(np.float32))
    return tuple(out.shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    # 1. procedural images through the reference's Resize + CenterCrop
    for (w, h) in [(225, 300), (37, 51)]:
        save(f"full_{w}x{h}.npy", reference_crop(Image.fromarray(procedural(h, w, 3, w * 1000 + h))))
    filters = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
               "lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}
    resize_cases = [  # name, (in w, in h), (out w, out h), filter
        ("640x427_to_97x64", (640, 427), (97, 64), "bicubic"),
        ("100x1000_to_22x224", (100, 1000), (22, 224), "bicubic"),
        ("1000x100_to_224x22", (1000, 100), (224, 22), "bicubic"),
        ("224x224_to_224x224", (224, 224), (224, 224), "bicubic"),
        ("37x51_to_80x110", (37, 51), (80, 110), "bicubic"),
        ("33x20_to_33x45", (33, 20), (33, 45), "bicubic"),
        ("300x225_to_64x48_bilinear", (300, 225), (64, 48), "bilinear"),
        ("300x225_to_64x48_lanczos", (300, 225), (64, 48), "lanczos"),
        ("300x225_to_64x48_box", (300, 225), (64, 48), "box"),
        ("300x225_to_64x48_hamming", (300, 225), (64, 48), "hamming"),
    ]
    for name, (iw, ih), (ow, oh), filt in resize_cases:
        source = Image.fromarray(procedural(ih, iw, 3, iw * 1000 + ih))
        save(f"resize_{name}.npy", np.asarray(source.resize((ow, oh), filters[filt])))
    # float images (Pillow mode "F"), both pass orders of Pillow 13
    for (iw, ih), (ow, oh) in [((100, 300), (40, 90)), ((300, 100), (90, 40)), ((64, 48), (149, 112))]:
        source = procedural(ih, iw, 1, iw + ih)[..., 0].astype(np.float32) / np.float32(3.7) - np.float32(20)
        out = np.asarray(Image.fromarray(source).resize((ow, oh), Image.Resampling.BICUBIC), dtype=np.float32)
        save(f"resizef_{iw}x{ih}_to_{ow}x{oh}.npy", out)
    # 2. normalization of every byte value
    values = np.stack([np.roll(np.arange(256, dtype=np.uint8), 37 * c).reshape(16, 16) for c in range(3)], axis=-1)
    save("norm_table_in.npy", values)
    tensor = transforms.Normalize(mean=CLIP_MEAN, std=CLIP_STD)(transforms.ToTensor()(Image.fromarray(values)))
    save("norm_table_out.npy", tensor.numpy())
    # 3. the reference's example images: NOT stored (shared data is never copied into the repository,
    #    not even as derived arrays); the C++ tests read them in place.
    # 4.-7.
    modes = make_decode_fixtures()
    make_depth_fixture()
    make_thermal_fixture()
    video_shape = make_video_fixture()
    make_clip_span_fixture()

    versions = [f"python {platform.python_version()}"]
    for package in ("torch", "torchvision", "pillow", "numpy", "pytorchvideo", "imagebind-unofficial"):
        versions.append(f"{package} {metadata.version(package)}")
    versions.append(f"PIL.__version__ {PIL.__version__}; libjpeg-turbo {features.version('libjpeg_turbo')}; "
                    f"zlib {features.version('zlib')}")
    versions.append(f"torch.__version__ {torch.__version__}; torchvision.__version__ {torchvision.__version__}")
    versions.append("Pillow modes of the decode fixtures: " + ", ".join(f"{k}={v}" for k, v in sorted(modes.items())))
    versions.append(f"video fixture: {VIDEO_FRAMES} frames at {VIDEO_FPS} fps, size {VIDEO_SIZE}, output {video_shape}")
    with open(os.path.join(HERE, "image_versions.txt"), "w") as f:
        f.write("\n".join(versions) + "\n")
    print("\n".join(versions))
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
