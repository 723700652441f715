#!/usr/bin/env python3
"""Batch embedding of a folder of raw files: bindery-embed --input-dir vs the reference ImageBind code's
data loading + model, in files per second, and the agreement of their embeddings.

    /root/venv-peers/bin/python benchmarks/compare/batch_embed.py [--work /tmp/batch_embed]
        [--bindery build-lead/examples/bindery-embed] [--reps 1] [--threads 1] [--decode-threads 1 2]
        [--limit 200] [--skip-reference-loader] [--json out.json] [--markdown out.md]

PyTorch and the imagebind-unofficial package are used for comparison only (bindery does not need
them). The script builds, under --work (never inside the repository), from ../shared/data:
  folder/fsdd/   1,000 WAVs of fsdd/recordings (8 kHz mono 16-bit; every third of the sorted list),
  folder/mnist/  900 MNIST test images (t10k-images-idx3-ubyte.gz) as 8-bit grayscale PNGs (Pillow),
  folder/photos/ 100 copies of imagebind_assets/{dog,car,bird}_image.jpg (real copies, distinct names);
--limit N scales the three parts down in the same proportions. It also writes model.pth (torch.save of
a state_dict), model_config.json (the format bindery's --config reads) and model_kwargs.json: the reference
ImageBindModel at the tiny fixture size of tests/reference/make_model_fixtures.py (TINY) but with the
real model's audio front end (128 mel bins, 204 frames), every parameter and buffer but the text mask
seeded random (make_model_fixtures.randomize), so that decoding and preprocessing dominate and a small
forward follows.

Measured (wall time by time.perf_counter, files/s = files / wall; nothing is warmed up):
  bindery      `bindery-embed --input-dir folder --batch 64 --shard-size 4096 --threads T
               --decode-threads D --no-progress` as a subprocess, a fresh --out folder per run (the
               process start and the model load are included; they are small at this size).
  ref-seq      what the reference README does, in batches: per modality, the sorted paths in batches
               of 64, imagebind.data.load_and_transform_vision_data / load_and_transform_audio_data
               (num_mel_bins=128, target_length=204, other arguments default), then model(inputs)
               under torch.no_grad() in eval(), torch.set_num_threads(1); model construction excluded.
  ref-loader   the same load functions called per file in a torch DataLoader (batch_size 64,
               num_workers 2, default collate = stack), the forward in the main process on 1 thread.
The repetitions alternate: even ones run bindery first, odd ones the reference first.
Agreement: rows matched by path (bindery's <modality>-NNNNN.txt beside each .npy shard), per modality
the min and mean cosine between bindery's embedding and ref-seq's (and ref-loader's against ref-seq).

Printed: a markdown table (median over the repetitions of wall s, files/s, and ref's per-modality
seconds); written: a JSON (--json, default WORK/batch_embed.json) with every repetition, the cosines,
the package versions and the CPU model. The reference's "Large gap between audio n_frames and
target_length" warnings (FSDD clips are under 2 s) are silenced with logging.disable.
"""
import argparse
import gzip
import json
import logging
import math
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from importlib import metadata

warnings.filterwarnings("ignore")  # pkg_resources / jit deprecation noise from the reference's imports

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

try:
    from imagebind import data as ib_data  # needs torchaudio (and its torchcodec backend to load WAVs)
    DATA_IMPORT_ERROR = None
except Exception as exc:  # noqa: BLE001 - reported, the bindery side still runs
    ib_data = None
    DATA_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
from imagebind.models import imagebind_model  # noqa: E402
from imagebind.models.imagebind_model import ModalityType  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))
BPE = os.path.join(DATA, "imagebind_assets", "bpe_simple_vocab_16e6.txt.gz")
FULL = {"audio": 1000, "mnist": 900, "photos": 100}
BATCH = 64

# tests/reference/make_model_fixtures.py's TINY and randomize (imported after imagebind.data above:
# that script stubs imagebind.data out for itself), with the real model's audio front end (128 x 204).
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
import make_model_fixtures  # noqa: E402

CONFIG = dict(make_model_fixtures.TINY, kernel_size=list(make_model_fixtures.TINY["kernel_size"]),
              audio_num_mel_bins=128, audio_target_len=204)
randomize = make_model_fixtures.randomize
SEED = 20231
CLIP_SCALE = 1.0 / 0.07


def bindery_config(c):
    """CONFIG in the JSON format bindery's --config reads (ib::save_config: {"model": "imagebind",
    "encoders": {...}}, fields of EncoderSpec, absent ones default), as ImageBindConfig::tiny() spells
    the tiny model. (The reference-kwargs dict of tests/reference/model/tiny_config.json is refused:
    'ImageBindConfig JSON: expected {"model": "imagebind", "encoders": {...}}'.)"""
    def image(key, channels, side, kernel, dim, blocks, heads, scale, **extra):
        return dict(stem="image_patches", stem_key=key, input_shape=[channels] + side, kernel=[kernel, kernel],
                    embed_dim=dim, num_blocks=blocks, num_heads=heads, add_bias_kv=True, logit_scale=scale,
                    **extra)
    encoders = {
        "vision": dict(stem="video_patches", stem_key="rgbt_stem", input_shape=[3, c["video_frames"], 224, 224],
                       kernel=list(c["kernel_size"]), stem_norm=False, embed_dim=c["vision_embed_dim"],
                       num_blocks=c["vision_num_blocks"], num_heads=c["vision_num_heads"], pre_transformer_ln=True),
        "text": dict(stem="tokens", stem_key="", input_shape=[77], stem_norm=False, vocab_size=49408,
                     causal_mask=True, embed_dim=c["text_embed_dim"], num_blocks=c["text_num_blocks"],
                     num_heads=c["text_num_heads"], head="eos_token", logit_scale=CLIP_SCALE,
                     learnable_logit_scale=True),
        "audio": image("rgbt_stem", 1, [c["audio_num_mel_bins"], c["audio_target_len"]], c["audio_kernel_size"],
                       c["audio_embed_dim"], c["audio_num_blocks"], c["audio_num_heads"], 20.0,
                       stride=[c["audio_stride"]] * 2, drop_path=c["audio_drop_path"]),
        "depth": image("depth_stem", 1, [224, 224], c["depth_kernel_size"], c["depth_embed_dim"],
                       c["depth_num_blocks"], c["depth_num_heads"], 5.0, drop_path=c["depth_drop_path"]),
        "thermal": image("rgbt_stem", 1, [224, 224], c["thermal_kernel_size"], c["thermal_embed_dim"],
                         c["thermal_num_blocks"], c["thermal_num_heads"], 10.0, drop_path=c["thermal_drop_path"]),
        "imu": dict(stem="imu_patches", stem_key="imu_stem", input_shape=[6, 2000], kernel=[8],
                    embed_dim=c["imu_embed_dim"], num_blocks=c["imu_num_blocks"], num_heads=c["imu_num_heads"],
                    add_bias_kv=True, drop_path=c["imu_drop_path"], head_dropout=0.5, logit_scale=5.0),
    }
    for spec in encoders.values():
        spec["out_dim"] = c["out_embed_dim"]
    return {"model": "imagebind", "encoders": encoders}


# ---- inputs and model ---------------------------------------------------------------------------

def part_sizes(limit):
    if not limit or limit >= sum(FULL.values()):
        return dict(FULL)
    total = sum(FULL.values())
    audio = max(1, round(limit * FULL["audio"] / total))
    mnist = max(1, round(limit * FULL["mnist"] / total))
    return {"audio": audio, "mnist": mnist, "photos": max(1, limit - audio - mnist)}


def read_idx_images(path, count):
    with gzip.open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051 and count <= n, (magic, n)
        pixels = f.read(count * rows * cols)
    return np.frombuffer(pixels, dtype=np.uint8).reshape(count, rows, cols)


def read_idx_labels(path, count):
    with gzip.open(path, "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        assert magic == 2049 and count <= n, (magic, n)
        return np.frombuffer(f.read(count), dtype=np.uint8)


def build_folder(work, sizes):
    """WORK/folder with the three parts; rebuilt only when the sizes differ from the last build."""
    folder = os.path.join(work, "folder")
    stamp = os.path.join(work, "folder.json")
    if os.path.isdir(folder) and os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == sizes:
                return folder
    shutil.rmtree(folder, ignore_errors=True)
    for sub in ("fsdd", "mnist", "photos"):
        os.makedirs(os.path.join(folder, sub))
    wavs = sorted(n for n in os.listdir(os.path.join(DATA, "fsdd", "recordings")) if n.endswith(".wav"))
    step = max(1, len(wavs) // sizes["audio"])
    for name in wavs[::step][:sizes["audio"]]:
        shutil.copyfile(os.path.join(DATA, "fsdd", "recordings", name), os.path.join(folder, "fsdd", name))
    images = read_idx_images(os.path.join(DATA, "mnist", "t10k-images-idx3-ubyte.gz"), sizes["mnist"])
    labels = read_idx_labels(os.path.join(DATA, "mnist", "t10k-labels-idx1-ubyte.gz"), sizes["mnist"])
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image, mode="L").save(os.path.join(folder, "mnist", f"mnist_{i:05d}_{label}.png"))
    photos = ["dog", "car", "bird"]
    for i in range(sizes["photos"]):
        kind = photos[i % 3]
        shutil.copyfile(os.path.join(DATA, "imagebind_assets", f"{kind}_image.jpg"),
                        os.path.join(folder, "photos", f"{kind}_{i:03d}.jpg"))
    with open(stamp, "w") as f:
        json.dump(sizes, f)
    return folder


def folder_files(folder):
    """Sorted absolute paths per modality, by extension as bindery-embed's --input-dir decides."""
    files = {"vision": [], "audio": []}
    for root, _, names in os.walk(folder):
        for name in names:
            ext = os.path.splitext(name)[1].lower()
            path = os.path.abspath(os.path.join(root, name))
            if ext in (".png", ".jpg", ".jpeg"):
                files["vision"].append(path)
            elif ext == ".wav":
                files["audio"].append(path)
    return {m: sorted(p) for m, p in files.items()}


def build_model(work):
    """The seeded model; writes WORK/model.pth and WORK/model_config.json."""
    torch.manual_seed(0)
    kwargs = dict(CONFIG, kernel_size=tuple(CONFIG["kernel_size"]))
    model = imagebind_model.ImageBindModel(**kwargs)
    randomize(model, torch.Generator().manual_seed(SEED))
    model.eval()
    torch.save(model.state_dict(), os.path.join(work, "model.pth"))
    with open(os.path.join(work, "model_config.json"), "w") as f:
        json.dump(bindery_config(CONFIG), f, indent=1)
    with open(os.path.join(work, "model_kwargs.json"), "w") as f:  # the reference constructor's arguments
        json.dump(CONFIG, f, indent=1)
    return model


# ---- bindery side -------------------------------------------------------------------------------

def bindery_common(args):
    work = args.work
    return [args.bindery, "--weights", os.path.join(work, "model.pth"),
            "--config", os.path.join(work, "model_config.json"), "--bpe", BPE]


def bindery_check(args, files):
    """One PNG, one JPEG and one WAV through bindery-embed's per-file mode: does it take the config?"""
    out = os.path.join(args.work, "out_check")
    shutil.rmtree(out, ignore_errors=True)
    cmd = bindery_common(args) + ["--image", files["vision"][0], files["vision"][-1],
                                  "--audio", files["audio"][0], "--threads", "1", "--out", out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bindery-embed refused the model (rc {proc.returncode}):\n{' '.join(cmd)}\n"
                 f"{proc.stdout}\n{proc.stderr}")
    shapes = {n: list(np.load(os.path.join(out, n)).shape) for n in sorted(os.listdir(out)) if n.endswith(".npy")}
    print(f"bindery-embed check: ok, {shapes}", flush=True)
    return out


def run_bindery(args, threads, decode_threads, rep, n_files):
    out = os.path.join(args.work, f"out_bindery_t{threads}_d{decode_threads}_r{rep}")
    shutil.rmtree(out, ignore_errors=True)
    cmd = bindery_common(args) + ["--input-dir", args.folder, "--batch", str(BATCH), "--shard-size", "4096",
                                  "--threads", str(threads), "--decode-threads", str(decode_threads),
                                  "--out", out, "--no-progress"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bindery-embed failed (rc {proc.returncode}):\n{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    summary = (proc.stdout + proc.stderr).strip().splitlines()
    errors = None
    for line in summary:
        m = re.search(r"(\d+)\s+errors?", line)
        if m:
            errors = int(m.group(1))
    times = next((line for line in summary if line.startswith("time:")), "")
    note = re.sub(r"^time:\s*", "", times).replace(" in forward passes", " forward").replace(
        " batching and writing", " batching+writing")
    note = re.sub(r" waiting for the \d+ decode thread\(s\)", " waiting for decode", note)
    return {"side": "bindery", "config": f"T={threads} D={decode_threads}", "rep": rep, "wall_s": wall,
            "note": note,
            "files": n_files, "files_per_s": n_files / wall, "errors": errors, "out": out,
            "summary": summary[-3:], "command": " ".join(cmd)}


def read_bindery_out(out):
    """{modality: {path: embedding}} from the shards <modality>-NNNNN.npy + .txt."""
    rows = {}
    for name in sorted(os.listdir(out)):
        m = re.fullmatch(r"(.+)-(\d+)\.npy", name)
        if not m:
            continue
        emb = np.load(os.path.join(out, name))
        with open(os.path.join(out, name[:-4] + ".txt")) as f:
            paths = [line.rstrip("\n") for line in f if line.strip()]
        assert len(paths) == emb.shape[0], (name, len(paths), emb.shape)
        table = rows.setdefault(m.group(1), {})
        for path, row in zip(paths, emb):
            table[os.path.abspath(path)] = row
    return rows


# ---- reference side -----------------------------------------------------------------------------

def load_fn(modality):
    if modality == "vision":
        return lambda paths: ib_data.load_and_transform_vision_data(paths, "cpu")
    return lambda paths: ib_data.load_and_transform_audio_data(paths, "cpu", num_mel_bins=128, target_length=204)


MODALITY_TYPE = {"vision": ModalityType.VISION, "audio": ModalityType.AUDIO}


def run_reference_sequential(model, files, rep):
    torch.set_num_threads(1)
    result = {"side": "reference", "config": "sequential, 1 thread", "rep": rep, "per_modality_s": {},
              "load_s": {}, "forward_s": {}}
    embeddings = {}
    start = time.perf_counter()
    with torch.no_grad():
        for modality, paths in files.items():
            t0 = time.perf_counter()
            load_s = forward_s = 0.0
            rows = []
            for i in range(0, len(paths), BATCH):
                t1 = time.perf_counter()
                inputs = {MODALITY_TYPE[modality]: load_fn(modality)(paths[i:i + BATCH])}
                t2 = time.perf_counter()
                rows.append(model(inputs)[MODALITY_TYPE[modality]].numpy())
                t3 = time.perf_counter()
                load_s += t2 - t1
                forward_s += t3 - t2
            result["per_modality_s"][modality] = time.perf_counter() - t0
            result["load_s"][modality] = load_s
            result["forward_s"][modality] = forward_s
            embeddings[modality] = dict(zip(paths, np.concatenate(rows)))
    wall = time.perf_counter() - start
    n = sum(len(p) for p in files.values())
    result.update(wall_s=wall, files=n, files_per_s=n / wall,
                  note=f"{sum(result['load_s'].values()):.2f} s loading, "
                       f"{sum(result['forward_s'].values()):.2f} s forward")
    return result, embeddings


class OneFile(torch.utils.data.Dataset):
    def __init__(self, paths, modality):
        self.paths, self.modality = paths, modality

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return load_fn(self.modality)([self.paths[i]])[0]  # vision (3, 224, 224); audio (3, 1, 128, 204)


def run_reference_loader(model, files, rep, workers):
    torch.set_num_threads(1)
    result = {"side": "reference", "config": f"DataLoader {workers} workers, forward 1 thread", "rep": rep,
              "per_modality_s": {}}
    embeddings = {}
    start = time.perf_counter()
    with torch.no_grad():
        for modality, paths in files.items():
            t0 = time.perf_counter()
            loader = torch.utils.data.DataLoader(OneFile(paths, modality), batch_size=BATCH, shuffle=False,
                                                 num_workers=workers)
            rows = [model({MODALITY_TYPE[modality]: batch})[MODALITY_TYPE[modality]].numpy() for batch in loader]
            result["per_modality_s"][modality] = time.perf_counter() - t0
            embeddings[modality] = dict(zip(paths, np.concatenate(rows)))
    wall = time.perf_counter() - start
    n = sum(len(p) for p in files.values())
    result.update(wall_s=wall, files=n, files_per_s=n / wall)
    return result, embeddings


# ---- agreement, report --------------------------------------------------------------------------

def cosines(a, b):
    """{modality: {n, missing, min, mean}} of cosine(a[path], b[path]) over the paths of b."""
    out = {}
    for modality, ref in b.items():
        have = a.get(modality, {})
        common = [p for p in ref if p in have]
        if not common:
            out[modality] = {"n": 0, "missing": len(ref)}
            continue
        x = np.stack([have[p] for p in common]).astype(np.float64)
        y = np.stack([ref[p] for p in common]).astype(np.float64)
        cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        worst = common[int(np.argmin(cos))]
        out[modality] = {"n": len(common), "missing": len(ref) - len(common), "min": float(cos.min()),
                         "mean": float(cos.mean()), "worst": worst,
                         "max_abs_diff": float(np.abs(x - y).max())}
    return out


def versions():
    info = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("torchaudio", "torchcodec", "imagebind-unofficial", "Pillow", "numpy", "torchvision"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    try:
        info["bindery_commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                                capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return info


def table(results):
    groups = {}
    for r in results:
        groups.setdefault((r["side"], r["config"]), []).append(r)
    lines = ["| side | config | reps | wall s (median) | files/s (median) | vision s | audio s | errors | "
             "where the time went (last rep) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for (side, config), rs in groups.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        n = rs[0]["files"]

        def split(m):
            vals = [r["per_modality_s"][m] for r in rs if m in r.get("per_modality_s", {})]
            return f"{statistics.median(vals):.2f}" if vals else "–"
        errors = rs[0].get("errors")
        lines.append(f"| {side} | {config} | {len(rs)} | {wall:.2f} | {n / wall:.1f} | {split('vision')} | "
                     f"{split('audio')} | {'–' if errors is None else errors} | {rs[-1].get('note', '')} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/batch_embed", help="work folder (inputs, model, outputs)")
    parser.add_argument("--bindery", default=os.path.join(REPO, "build-lead", "examples", "bindery-embed"))
    parser.add_argument("--reps", type=int, default=1, help="alternating repetitions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="bindery --threads values")
    parser.add_argument("--decode-threads", type=int, nargs="+", default=[1, 2], help="bindery --decode-threads")
    parser.add_argument("--loader-workers", type=int, default=2, help="ref-loader DataLoader num_workers")
    parser.add_argument("--limit", type=int, default=0, help="scale the folder down to about N files")
    parser.add_argument("--skip-reference", action="store_true", help="bindery only")
    parser.add_argument("--skip-reference-loader", action="store_true", help="no DataLoader variant")
    parser.add_argument("--json", default=None, help="results file (default WORK/batch_embed.json)")
    parser.add_argument("--markdown", default=None, help="also write the table here")
    args = parser.parse_args()

    args.work = os.path.abspath(args.work)
    if os.path.commonpath([args.work, REPO]) == REPO:
        sys.exit(f"--work {args.work} is inside the repository; use a folder outside it")
    os.makedirs(args.work, exist_ok=True)
    logging.disable(logging.WARNING)  # the reference's per-clip "Large gap ... target_length" warnings
    if not args.skip_reference and ib_data is None:
        sys.exit(f"imagebind.data does not import ({DATA_IMPORT_ERROR}); run with --skip-reference")

    sizes = part_sizes(args.limit)
    args.folder = build_folder(args.work, sizes)
    files = folder_files(args.folder)
    n_files = sum(len(p) for p in files.values())
    print(f"folder {args.folder}: {n_files} files ({sizes}); vision {len(files['vision'])}, "
          f"audio {len(files['audio'])}", flush=True)
    model = build_model(args.work)
    bindery_check(args, files)

    results, bindery_rows, ref_rows, loader_rows = [], {}, None, None
    for rep in range(args.reps):
        def bindery_runs():
            for t in args.threads:
                for d in args.decode_threads:
                    r = run_bindery(args, t, d, rep, n_files)
                    print(f"  bindery {r['config']} rep {rep}: {r['wall_s']:.2f} s, {r['files_per_s']:.1f} files/s"
                          f" | {r['summary'][-1] if r['summary'] else ''}", flush=True)
                    results.append(r)
                    bindery_rows[r["config"]] = r["out"]

        def reference_runs():
            nonlocal ref_rows, loader_rows
            if args.skip_reference:
                return
            r, ref_rows = run_reference_sequential(model, files, rep)
            print(f"  reference sequential rep {rep}: {r['wall_s']:.2f} s, {r['files_per_s']:.1f} files/s "
                  f"(load {r['load_s']}, forward {r['forward_s']})", flush=True)
            results.append(r)
            if not args.skip_reference_loader:
                r, loader_rows = run_reference_loader(model, files, rep, args.loader_workers)
                print(f"  reference DataLoader rep {rep}: {r['wall_s']:.2f} s, {r['files_per_s']:.1f} files/s",
                      flush=True)
                results.append(r)
        for run in ((bindery_runs, reference_runs) if rep % 2 == 0 else (reference_runs, bindery_runs)):
            run()

    agreement = {}
    if ref_rows is not None:
        for config, out in bindery_rows.items():
            agreement[f"bindery {config} vs ref-seq"] = cosines(read_bindery_out(out), ref_rows)
        if loader_rows is not None:
            agreement["ref-loader vs ref-seq"] = cosines(loader_rows, ref_rows)

    text = table(results)
    if agreement:
        text += "\n\n| pair | modality | n | missing | min cosine | 1 - min cosine | 1 - mean cosine | max abs diff |\n" \
                "|---|---|---:|---:|---:|---:|---:|---:|\n"
        text += "\n".join(f"| {pair} | {m} | {c['n']} | {c['missing']} | {c.get('min', float('nan')):.6f} | "
                          f"{1 - c.get('min', float('nan')):.1e} | {1 - c.get('mean', float('nan')):.1e} | {c.get('max_abs_diff', float('nan')):.2e} |"
                          for pair, per in agreement.items() for m, c in per.items())
    info = versions()
    print()
    print(text)
    print("\n" + ", ".join(f"{k} {v}" for k, v in info.items()))
    print("(wall times on a shared machine are noisy; see the repetitions in the JSON)")
    path = args.json or os.path.join(args.work, "batch_embed.json")
    with open(path, "w") as f:
        json.dump({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "argv": sys.argv,
                   "sizes": sizes, "files": n_files, "config": CONFIG, "versions": info,
                   "results": results, "agreement": agreement}, f, indent=1)
    print(f"wrote {path}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
