#!/usr/bin/env python3
"""ImageBind `huge` encoders on the CPU: bindery vs PyTorch, side by side in one run.

    benchmarks/compare/run.sh                       # builds bench_encoders, then runs this script
    python compare_cpu.py --bin build/benchmarks/bench_encoders [--threads 1 2] [--reps 5]
        [--filter REGEX] [--csv out.csv] [--markdown out.md]

The cases are bench_encoders' (its --benchmark_list_tests under --filter; without --filter its
default run, which leaves out the /heavy cases). bindery runs in a `bench_encoders --serve` process,
PyTorch in a `compare_cpu.py --torch-serve` process: two fresh processes per encoder (so each
process's peak RSS is that of one encoder), which hold the same encoder at the same time. For each
case the repetitions alternate between them (bindery first on even repetitions, PyTorch first on odd
ones), so load from other processes falls on both alike. Before the repetitions each side runs one
untimed warm-up iteration. A repetition times `iters` iterations (the same number on both sides,
enough for about --min-seconds) and records their mean.

PyTorch runs the reference's own modules (the imagebind-unofficial package: RGBDT/Audio/Text/IMU
preprocessors, SimpleTransformer of BlockWithMasking with nn.MultiheadAttention, heads,
postprocessors). An encoder is built by the reference's ImageBindModel constructor with `huge`
arguments for the modality under test and tiny ones for the five others (so only one huge encoder
is ever allocated). Inference runs under torch.inference_mode() in eval(); attention there takes
F.multi_head_attention_forward's scaled_dot_product_attention path (need_weights=False) — the
nn.MultiheadAttention fast path does not apply to these modules (batch_first=False, bias_k/v, masks).
Training: train(), loss = sum(embedding * fixed random target), backward, torch.optim.AdamW (fused
CPU kernel when available), as bench_encoders does.

Printed: a markdown table of median ms per iteration, the ratio PyTorch/bindery of the medians
(> 1: bindery faster) and of the best repetitions, GFLOP/s (bench_encoders' analytical FLOP count,
see encoder_flop there) and as % of a measured peak, and peak RSS of each side against the encoder's
weight bytes.
"""
import argparse
import csv
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import types
from datetime import datetime, timezone
from importlib import metadata

# torchaudio may be broken and imagebind.data imports it; the models do not need it.
sys.modules.setdefault("imagebind.data", types.ModuleType("imagebind.data"))

import torch  # noqa: E402
from imagebind.models import imagebind_model  # noqa: E402

MODALITIES = ["vision", "text", "audio", "depth", "thermal", "imu"]
# imagebind_huge()'s constructor arguments (the others are ImageBindModel's defaults).
HUGE = dict(vision_embed_dim=1280, vision_num_blocks=32, vision_num_heads=16,
            text_embed_dim=1024, text_num_blocks=24, text_num_heads=16,
            out_embed_dim=1024, audio_drop_path=0.1, imu_drop_path=0.7)
# Tiny arguments for the modalities not under test (those of tests/reference/make_model_fixtures.py).
TINY = dict(
    vision_embed_dim=16, vision_num_blocks=2, vision_num_heads=2,
    text_embed_dim=8, text_num_blocks=2, text_num_heads=2,
    audio_embed_dim=16, audio_num_blocks=2, audio_num_heads=4, audio_num_mel_bins=36,
    audio_target_len=64,
    depth_embed_dim=16, depth_kernel_size=56, depth_num_blocks=2, depth_num_heads=2,
    thermal_embed_dim=16, thermal_kernel_size=32, thermal_num_blocks=2, thermal_num_heads=2,
    imu_embed_dim=16, imu_num_blocks=2, imu_num_heads=2,
)
OUT_DIM = 1024


# ---- PyTorch side -------------------------------------------------------------------------------

class ReferenceEncoder(torch.nn.Module):
    """One modality of the reference ImageBindModel: preprocessor -> trunk -> head -> postprocessor
    (ImageBindModel.forward for a single-clip input)."""

    def __init__(self, model, modality):
        super().__init__()
        self.modality = modality
        self.pre = model.modality_preprocessors[modality]
        self.trunk = model.modality_trunks[modality]
        self.head = model.modality_heads[modality]
        self.post = model.modality_postprocessors[modality]

    def forward(self, x):
        value = self.pre(**{self.modality: x})
        y = self.trunk(**value["trunk"])
        y = self.head(y, **value["head"])
        return self.post(y)


def build_torch_encoder(modality):
    kwargs = dict(HUGE)
    for key, value in TINY.items():
        if not key.startswith(modality + "_"):
            kwargs[key] = value
    torch.manual_seed(0)
    model = imagebind_model.ImageBindModel(**kwargs)
    return ReferenceEncoder(model, modality)


def make_torch_input(modality, batch):
    """Native-size inputs, as bench_encoders' make_input (values differ; speed does not care)."""
    g = torch.Generator().manual_seed(11)
    if modality == "text":
        ids = torch.zeros(batch, 77, dtype=torch.long)
        for b in range(batch):
            eos = min(76, 8 + 5 * b)
            ids[b, 0] = 49406
            for t in range(1, eos):
                ids[b, t] = (1000 + 37 * t + 101 * b) % 49000
            ids[b, eos] = 49407
        return ids
    shape = {"vision": (3, 224, 224), "audio": (1, 128, 204), "depth": (1, 224, 224),
             "thermal": (1, 224, 224), "imu": (6, 2000)}[modality]
    return torch.randn((batch,) + shape, generator=g)


class TorchRunner:
    def __init__(self, encoder, modality, batch, train):
        self.encoder, self.train = encoder, train
        self.x = make_torch_input(modality, batch)
        self.optimizer_kind = ""
        if train:
            encoder.train()
            self.target = torch.randn(batch, OUT_DIM, generator=torch.Generator().manual_seed(13))
            try:
                self.optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-5, fused=True)
                self.optimizer_kind = "fused"
            except (RuntimeError, TypeError, ValueError):
                self.optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-5)
                self.optimizer_kind = "default"
        else:
            encoder.eval()

    def step(self):
        if not self.train:
            with torch.inference_mode():
                return self.encoder(self.x)
        self.optimizer.zero_grad(set_to_none=True)
        loss = (self.encoder(self.x) * self.target).sum()
        loss.backward()
        self.optimizer.step()
        return loss

    def close(self):
        if self.train:
            self.optimizer.zero_grad(set_to_none=True)
            del self.optimizer
            self.encoder.eval()


# ---- memory (the same mechanism as bench_encoders) ------------------------------------------------

def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def torch_serve():
    """The PyTorch twin of `bench_encoders --serve`: 'threads N' | 'run CASE ITERS' | 'quit' on stdin,
    one JSON line per command on stdout. Builds the encoder of a case's modality on first use."""
    encoder, encoder_modality, runner_key, runner = None, None, None, None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "quit":
                print(json.dumps({"ok": True}), flush=True)
                return
            if words[0] == "threads":
                torch.set_num_threads(int(words[1]))
                print(json.dumps({"ok": True, "threads": torch.get_num_threads(), "rss_mb": status_mb("VmRSS")}),
                      flush=True)
            elif words[0] == "run":
                name, iters = words[1], int(words[2])
                train, modality, batch = case_parts(name)
                if encoder_modality != modality:
                    runner, encoder = None, None
                    gc.collect()
                    encoder, encoder_modality = build_torch_encoder(modality), modality
                if runner_key != name:
                    if runner is not None:
                        runner.close()
                    runner, runner_key = TorchRunner(encoder, modality, batch, train), name
                reset_peak_rss()
                seconds = []
                for _ in range(iters):
                    t0 = time.perf_counter()
                    runner.step()
                    seconds.append(time.perf_counter() - t0)
                print(json.dumps({"ok": True, "case": name, "seconds": seconds, "peak_rss_mb": status_mb("VmHWM"),
                                  "optimizer": runner.optimizer_kind, "threads": torch.get_num_threads()}),
                      flush=True)
            else:
                print(json.dumps({"ok": False, "error": f"unknown command '{words[0]}'"}), flush=True)
        except Exception as e:  # noqa: BLE001 -- reported to the driver
            print(json.dumps({"ok": False, "error": repr(e)}), flush=True)


# ---- the driver -----------------------------------------------------------------------------------

class Server:
    """A worker process speaking the line protocol (bench_encoders --serve or --torch-serve)."""

    def __init__(self, command, what):
        self.what = what
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def call(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.what} exited on '{command}'")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"{self.what}: {reply.get('error')}")
        return reply

    def close(self):
        try:
            self.call("quit")
        finally:
            self.proc.wait(timeout=60)


def list_cases(binary, filter_regex):
    cmd = [binary, "--benchmark_list_tests=true"]
    if filter_regex:
        cmd.append(f"--benchmark_filter={filter_regex}")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [re.sub(r"/(min_time:[^/]*|real_time)$", "", re.sub(r"/real_time$", "", line.strip()))
            for line in out.splitlines() if line.strip()]


def case_parts(name):
    kind, modality, batch = name.split("/")[:3]
    return kind == "encoder_train", modality, int(batch[1:])


# ---- the run --------------------------------------------------------------------------------------

def machine_info(binary):
    info = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_blas": "MKL" if torch.backends.mkl.is_available() else "?"}
    for name in ("imagebind-unofficial", "numpy"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "not installed"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = (f"{fields.get('Model name', '?')} (family {fields.get('CPU family', '?')} model "
                       f"{fields.get('Model', '?')}), {fields.get('CPU(s)', '?')} CPUs")
    except OSError:
        info["cpu"] = platform.processor()
    try:
        info["gxx"] = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        info["gxx"] = "?"
    try:
        info["openblas"] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libopenblas0-pthread"],
                                          capture_output=True, text=True).stdout or "?"
    except OSError:
        info["openblas"] = "?"
    info["bench_encoders"] = os.path.abspath(binary)
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="path of bench_encoders")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=5, help="alternating repetitions per case")
    parser.add_argument("--filter", default=None,
                        help="regex over bench_encoders' case names (default: its default set)")
    parser.add_argument("--filter-2", dest="filter_2",
                        default=r"encoder_fwd/(text|audio|depth|thermal|imu)/b1",
                        help="regex for thread counts > 1 (default: forward at batch 1 but vision; "
                             "'' = --filter)")
    parser.add_argument("--reps-long", dest="reps_long", type=int, default=3,
                        help="repetitions for cases whose warm-up took over --long-seconds")
    parser.add_argument("--long-seconds", dest="long_seconds", type=float, default=3.0)
    parser.add_argument("--min-seconds", type=float, default=0.5, help="least time of one repetition")
    parser.add_argument("--peak", default="1:105,2:205",
                        help="measured fp32 GEMM peak GFLOP/s per thread count (docs/benchmarks.md)")
    parser.add_argument("--csv", default=None, help="write one row per case and thread count here")
    parser.add_argument("--markdown", default=None, help="also write the tables here")
    args = parser.parse_args()

    peaks = {int(k): float(v) for k, v in (item.split(":") for item in args.peak.split(","))}
    info = machine_info(args.bin)
    load_start = os.getloadavg()
    rows = []
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    for threads in args.threads:
        regex = args.filter_2 if threads > 1 and args.filter_2 else args.filter
        cases = list_cases(args.bin, regex)
        groups = {}  # modality -> its cases, in bench_encoders' order
        for name in cases:
            groups.setdefault(case_parts(name)[1], []).append(name)
        for modality, names in groups.items():
            # Fresh processes per encoder: their peak RSS is this encoder's.
            servers = {"bindery": Server([args.bin, "--serve"], "bench_encoders --serve"),
                       "pytorch": Server([sys.executable, os.path.abspath(__file__), "--torch-serve"],
                                         "compare_cpu.py --torch-serve")}
            try:
                base = {impl: s.call(f"threads {threads}").get("rss_mb", float("nan")) for impl, s in servers.items()}
                for name in names:
                    rows.append(run_case(servers, name, threads, base, args, log))
            finally:
                for s in servers.values():
                    s.close()
    info["load_average_start"] = " ".join(f"{x:.2f}" for x in load_start)
    info["load_average_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = format_report(rows, info, peaks, args)
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report + "\n")
    if args.csv:
        fields = ["case", "threads", "reps", "iters", "bindery_ms", "pytorch_ms", "ratio", "ratio_best", "gflop",
                  "bindery_gflops", "pytorch_gflops", "bindery_samples_s", "pytorch_samples_s", "weights_mb",
                  "bindery_peak_rss_mb", "pytorch_peak_rss_mb", "bindery_base_rss_mb", "pytorch_base_rss_mb",
                  "optimizer", "bindery_all_ms", "pytorch_all_ms"]
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})


def run_case(servers, name, threads, base, args, log):
    """Warm-up, then args.reps alternating repetitions of `name`; returns the table row."""
    train, modality, batch = case_parts(name)
    warm = {impl: s.call(f"run {name} 1") for impl, s in servers.items()}  # bindery builds on first use
    peak = {impl: warm[impl]["peak_rss_mb"] for impl in servers}
    fastest = min(w["seconds"][0] for w in warm.values())
    iters = min(50, max(1, round(args.min_seconds / max(fastest, 1e-6))))
    reps = args.reps if fastest <= args.long_seconds else min(args.reps, args.reps_long)
    times = {impl: [] for impl in servers}
    for rep in range(reps):
        for impl in (["bindery", "pytorch"] if rep % 2 == 0 else ["pytorch", "bindery"]):
            reply = servers[impl].call(f"run {name} {iters}")
            times[impl].append(sum(reply["seconds"]) / iters)
            peak[impl] = max(peak[impl], reply["peak_rss_mb"])
    med_b, med_t = statistics.median(times["bindery"]), statistics.median(times["pytorch"])
    gflop = warm["bindery"]["gflop"]
    row = {
        "case": name, "threads": threads, "reps": reps, "iters": iters,
        "bindery_ms": 1e3 * med_b, "pytorch_ms": 1e3 * med_t,
        "ratio": med_t / med_b, "ratio_best": min(times["pytorch"]) / min(times["bindery"]),
        "gflop": gflop, "bindery_gflops": gflop / med_b, "pytorch_gflops": gflop / med_t,
        "bindery_samples_s": batch / med_b, "pytorch_samples_s": batch / med_t,
        "weights_mb": warm["bindery"]["weights_mb"],
        "bindery_peak_rss_mb": peak["bindery"], "pytorch_peak_rss_mb": peak["pytorch"],
        "bindery_base_rss_mb": base["bindery"], "pytorch_base_rss_mb": base["pytorch"],
        "optimizer": warm["pytorch"].get("optimizer", ""),
        "bindery_all_ms": " ".join(f"{1e3 * t:.1f}" for t in times["bindery"]),
        "pytorch_all_ms": " ".join(f"{1e3 * t:.1f}" for t in times["pytorch"]),
    }
    log(f"[{threads}t] {name}: bindery {row['bindery_ms']:.1f} ms, PyTorch {row['pytorch_ms']:.1f} ms, "
        f"ratio {row['ratio']:.2f} (best {row['ratio_best']:.2f}); bindery {row['bindery_all_ms']}; "
        f"PyTorch {row['pytorch_all_ms']}; peak RSS {peak['bindery']:.0f} / {peak['pytorch']:.0f} MB")
    return row


def format_report(rows, info, peaks, args):
    out = []
    out.append(f"Machine: {info['cpu']}; load average {info['load_average_start']} at the start, "
               f"{info['load_average_end']} at the end; {info['date']}.")
    out.append(f"bindery: {info['gxx']}, Release (-O3), OpenBLAS {info['openblas']} (pthreads). "
               f"PyTorch {info['torch']} ({info['torch_blas']}, CPU capability {info['torch_cpu_capability']}), "
               f"imagebind-unofficial {info['imagebind-unofficial']}, Python {info['python']}.")
    out.append(f"{args.reps} alternating repetitions per case ({args.reps_long} where one iteration takes over "
               f"{args.long_seconds:g} s) after one warm-up each; medians of ms per "
               "iteration. Ratio = PyTorch time / bindery time (> 1: bindery faster); in parentheses the "
               "ratio of the best repetitions. % peak: of the measured fp32 GEMM peak "
               + ", ".join(f"{v:g} GFLOP/s at {k} thread{'s' if k > 1 else ''}" for k, v in sorted(peaks.items()))
               + ".")
    out.append("")
    out.append("Peak RSS: each side's process high-water mark over the case (one fresh process per encoder); "
               "in parentheses the same process's RSS before it built the encoder (libraries, runtime).")
    out.append("")
    out.append("| case | threads | GFLOP / iter | bindery ms | PyTorch ms | ratio | bindery GFLOP/s (% peak) | "
               "PyTorch GFLOP/s (% peak) | weights MB | peak RSS MB bindery | peak RSS MB PyTorch |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        peak = peaks.get(r["threads"])
        pct = (lambda g: f" ({100 * g / peak:.0f}%)") if peak else (lambda g: "")
        label = r["case"].replace("encoder_", "").replace("/heavy", "")
        out.append(f"| {label} | {r['threads']} | {r['gflop']:.1f} | {r['bindery_ms']:.1f} | {r['pytorch_ms']:.1f} | "
                   f"**{r['ratio']:.2f}** ({r['ratio_best']:.2f}) | {r['bindery_gflops']:.1f}{pct(r['bindery_gflops'])} | "
                   f"{r['pytorch_gflops']:.1f}{pct(r['pytorch_gflops'])} | {r['weights_mb']:.0f} | "
                   f"{r['bindery_peak_rss_mb']:.0f} ({r['bindery_base_rss_mb']:.0f}) | "
                   f"{r['pytorch_peak_rss_mb']:.0f} ({r['pytorch_base_rss_mb']:.0f}) |")
    return "\n".join(out)


if __name__ == "__main__":
    if "--torch-serve" in sys.argv[1:]:
        torch_serve()
    else:
        main()
