#!/usr/bin/env python3
"""ImageBind `huge` encoders on the CPU: bindery vs PyTorch and OpenVINO, side by side in one run.

    benchmarks/compare/run.sh                       # builds bench_encoders, then runs this script
    python compare_cpu.py --bin build/benchmarks/bench_encoders [--threads 1 2] [--reps 5]
        [--filter REGEX] [--csv out.csv] [--markdown out.md]
        [--peers pytorch,openvino] [--precisions fp32,bf16,int8]

With --peers openvino, a third process (`--ov-serve`) runs the same reference encoder converted by
openvino.convert_model; with --precisions, each encoder runs at each precision in fresh processes
(bindery: nn::quantize at load; PyTorch: CPU autocast to bf16, quantize_dynamic int8; OpenVINO:
inference precision hint bf16, NNCF int8 weight compression; see torch_precision_encoder and
OpenVinoServer). bf16 / int8 run the inference cases only, OpenVINO the inference cases only.

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


PRECISIONS = ["fp32", "bf16", "int8"]


def torch_precision_encoder(modality, precision):
    """The reference encoder as PyTorch runs it at `precision`: fp32 as built; bf16 under CPU autocast
    (TorchRunner); int8 by dynamic quantization (torch.ao.quantization.quantize_dynamic: int8
    per-channel weights of every nn.Linear, activations quantized per call; nn.MultiheadAttention's
    own projections are not nn.Linear and stay fp32, as in PyTorch)."""
    encoder = build_torch_encoder(modality)
    if precision == "int8":
        encoder.eval()
        encoder = torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return encoder


class TorchRunner:
    def __init__(self, encoder, modality, batch, train, precision="fp32"):
        if train and precision != "fp32":
            raise ValueError(f"training runs in fp32 only, not {precision}")
        self.encoder, self.train, self.precision = encoder, train, precision
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
                if self.precision == "bf16":
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        return self.encoder(self.x)
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


PROTOCOL = None  # the serve loops' replies: the process's real stdout (libraries' prints go to stderr)


def reply(message):
    PROTOCOL.write(json.dumps(message) + "\n")
    PROTOCOL.flush()


def protocol_to_stdout():
    """Keeps fd 1 for the JSON replies alone: Python's and C libraries' output goes to stderr."""
    global PROTOCOL
    import warnings
    warnings.filterwarnings("ignore")  # tracer and deprecation warnings, once per process
    PROTOCOL = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def serve(server):
    """The line protocol of `bench_encoders --serve`, for a Python server object: 'threads N' |
    'precision P' | 'run CASE ITERS' | 'quit' on stdin, one JSON line per command on stdout.
    server.threads(n), server.precision(p) and server.prepare(case) -> (step, extra reply fields)."""
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "quit":
                reply({"ok": True})
                return
            if words[0] == "threads":
                reply({"ok": True, "threads": server.threads(int(words[1])), "rss_mb": status_mb("VmRSS")})
            elif words[0] == "precision":
                if words[1] not in PRECISIONS:
                    raise ValueError(f"precision '{words[1]}' is not one of {PRECISIONS}")
                server.precision(words[1])
                reply({"ok": True, "precision": words[1]})
            elif words[0] == "run":
                name, iters = words[1], int(words[2])
                step, extra = server.prepare(name)
                reset_peak_rss()
                seconds = []
                for _ in range(iters):
                    t0 = time.perf_counter()
                    step()
                    seconds.append(time.perf_counter() - t0)
                reply({"ok": True, "case": name, "seconds": seconds, "peak_rss_mb": status_mb("VmHWM"), **extra})
            else:
                reply({"ok": False, "error": f"unknown command '{words[0]}'"})
        except Exception as e:  # noqa: BLE001 -- reported to the driver
            reply({"ok": False, "error": repr(e)})


class TorchServer:
    """The PyTorch twin of `bench_encoders --serve`. Builds the encoder of a case's modality on first
    use (at the current precision, see torch_precision_encoder)."""

    def __init__(self):
        self.encoder, self.modality, self.runner_key, self.runner = None, None, None, None
        self.precision_name = "fp32"

    def threads(self, n):
        torch.set_num_threads(n)
        return torch.get_num_threads()

    def precision(self, name):
        if name != self.precision_name:
            self.runner, self.runner_key, self.encoder, self.modality = None, None, None, None
            gc.collect()
        self.precision_name = name

    def prepare(self, name):
        train, modality, batch = case_parts(name)
        if self.modality != modality:
            self.runner, self.encoder = None, None
            gc.collect()
            self.encoder, self.modality = torch_precision_encoder(modality, self.precision_name), modality
        if self.runner_key != name:
            if self.runner is not None:
                self.runner.close()
            self.runner = TorchRunner(self.encoder, modality, batch, train, self.precision_name)
            self.runner_key = name
        return self.runner.step, {"optimizer": self.runner.optimizer_kind, "threads": torch.get_num_threads()}


def imu_patchify_by_reshape(self, imu):
    """The reference IMUPreprocessor.forward with its unfold(-1, k, k) written as the reshape it equals
    (2000 samples = 250 whole windows of 8): OpenVINO's converter fails on that aten::unfold."""
    b, c, t = imu.shape
    imu = imu[..., : (t // self.kernel_size) * self.kernel_size]
    imu = imu.reshape(b, c, t // self.kernel_size, self.kernel_size).permute(0, 2, 1, 3)
    imu = imu.reshape(imu.size(0), imu.size(1), -1)
    return {"trunk": {"tokens": self.tokenize_input_and_cls_pos(imu, self.imu_stem)}, "head": {}}


class OpenVinoServer:
    """The OpenVINO twin of `bench_encoders --serve` (inference only): the reference encoder of a case
    converted by openvino.convert_model (traced from the PyTorch module with the case's input, so the
    batch is static) and compiled for the CPU with the case's threads, one stream, latency hint:
      fp32  INFERENCE_PRECISION_HINT f32;
      bf16  INFERENCE_PRECISION_HINT bf16 (OpenVINO picks what runs in bf16: matmuls, convolutions,
            most element-wise work);
      int8  the converted model's weights compressed by nncf.compress_weights(INT8_SYM): int8 per
            output channel; the CPU plugin quantizes the activations of those matmuls on the fly
            (DYNAMIC_QUANTIZATION_GROUP_SIZE, its default) -- OpenVINO's own recipe for weights-only
            int8 without a calibration set, as bindery's int8 is.
    The compiled model is kept per (batch, threads); conversion and compilation are outside the timing."""

    def __init__(self):
        import openvino as ov
        self.ov, self.core = ov, ov.Core()
        self.n_threads, self.precision_name = 1, "fp32"
        self.torch_encoder, self.modality = None, None
        self.models, self.compiled = {}, {}

    def threads(self, n):
        self.n_threads = n
        return n

    def precision(self, name):
        if name != self.precision_name:
            self.models, self.compiled = {}, {}
            gc.collect()
        self.precision_name = name

    def prepare(self, name):
        train, modality, batch = case_parts(name)
        if train:
            raise ValueError("OpenVINO runs inference only")
        if self.modality != modality:
            self.models, self.compiled, self.torch_encoder = {}, {}, None
            gc.collect()
            self.torch_encoder, self.modality = build_torch_encoder(modality).eval(), modality
            if modality == "imu":
                self.torch_encoder.pre.forward = types.MethodType(imu_patchify_by_reshape, self.torch_encoder.pre)
        x = make_torch_input(modality, batch)
        if batch not in self.models:
            with torch.no_grad():
                model = self.ov.convert_model(self.torch_encoder, example_input=x)
            if self.precision_name == "int8":
                import nncf
                model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
            self.models[batch] = model
        key = (batch, self.n_threads)
        if key not in self.compiled:
            config = {"INFERENCE_NUM_THREADS": self.n_threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_PRECISION_HINT": "bf16" if self.precision_name == "bf16" else "f32"}
            compiled = self.core.compile_model(self.models[batch], "CPU", config)
            self.compiled[key] = (compiled, compiled.create_infer_request())
        request, feed = self.compiled[key][1], {0: x.numpy()}
        return (lambda: request.infer(feed)), {"threads": self.n_threads}


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
    for name in ("imagebind-unofficial", "numpy", "openvino", "nncf"):
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
    parser.add_argument("--peers", default="pytorch",
                        help="comma-separated peers run beside bindery: pytorch, openvino (default: pytorch)")
    parser.add_argument("--precisions", default="fp32",
                        help="comma-separated: fp32, bf16, int8 (default fp32); at bf16 / int8 only the "
                             "inference cases run (bindery: nn::quantize; PyTorch: autocast bf16, "
                             "quantize_dynamic int8; OpenVINO: precision hint bf16, nncf int8 weights)")
    parser.add_argument("--csv", default=None, help="write one row per case and thread count here")
    parser.add_argument("--markdown", default=None, help="also write the tables here")
    args = parser.parse_args()

    peaks = {int(k): float(v) for k, v in (item.split(":") for item in args.peak.split(","))}
    info = machine_info(args.bin)
    load_start = os.getloadavg()
    rows = []
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    peers = [p for p in args.peers.split(",") if p]
    precisions = [p for p in args.precisions.split(",") if p]
    for bad in [p for p in peers if p not in ("pytorch", "openvino")] + [p for p in precisions if p not in PRECISIONS]:
        parser.error(f"unknown peer or precision '{bad}'")
    commands = {"bindery": ([args.bin, "--serve"], "bench_encoders --serve"),
                "pytorch": ([sys.executable, os.path.abspath(__file__), "--torch-serve"], "compare_cpu.py --torch-serve"),
                "openvino": ([sys.executable, os.path.abspath(__file__), "--ov-serve"], "compare_cpu.py --ov-serve")}
    for threads in args.threads:
        regex = args.filter_2 if threads > 1 and args.filter_2 else args.filter
        cases = list_cases(args.bin, regex)
        groups = {}  # modality -> its cases, in bench_encoders' order
        for name in cases:
            groups.setdefault(case_parts(name)[1], []).append(name)
        for modality, names in groups.items():
            for precision in precisions:
                # Fresh processes per encoder and precision: their peak RSS is this encoder's.
                impls = ["bindery"] + peers
                servers = {impl: Server(*commands[impl]) for impl in impls}
                try:
                    base = {impl: s.call(f"threads {threads}").get("rss_mb", float("nan"))
                            for impl, s in servers.items()}
                    for s in servers.values():
                        s.call(f"precision {precision}")
                    for name in names:
                        train = case_parts(name)[0]
                        if train and precision != "fp32":
                            continue
                        active = {i: s for i, s in servers.items() if not (train and i == "openvino")}
                        rows.append(run_case(active, name, threads, base, args, log, precision))
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
        fields = ["case", "precision", "threads", "reps", "iters", "bindery_ms", "pytorch_ms", "openvino_ms", "ratio",
                  "ratio_best", "ratio_openvino", "ratio_best_openvino", "gflop", "bindery_gflops", "pytorch_gflops",
                  "openvino_gflops", "bindery_samples_s", "pytorch_samples_s", "openvino_samples_s", "weights_mb",
                  "bindery_peak_rss_mb", "pytorch_peak_rss_mb", "openvino_peak_rss_mb", "bindery_base_rss_mb",
                  "pytorch_base_rss_mb", "openvino_base_rss_mb", "optimizer", "bindery_all_ms", "pytorch_all_ms",
                  "openvino_all_ms"]
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()})


def run_case(servers, name, threads, base, args, log, precision="fp32"):
    """Warm-up, then args.reps repetitions of `name` on every server, the order rotating from one
    repetition to the next; returns the table row."""
    train, modality, batch = case_parts(name)
    impls = list(servers)
    warm = {impl: s.call(f"run {name} 1") for impl, s in servers.items()}  # each builds on first use
    peak = {impl: warm[impl]["peak_rss_mb"] for impl in servers}
    fastest = min(w["seconds"][0] for w in warm.values())
    iters = min(50, max(1, round(args.min_seconds / max(fastest, 1e-6))))
    reps = args.reps if fastest <= args.long_seconds else min(args.reps, args.reps_long)
    times = {impl: [] for impl in servers}
    for rep in range(reps):
        order = impls[rep % len(impls):] + impls[:rep % len(impls)]
        if rep % 2 == 1:
            order.reverse()
        for impl in order:
            reply = servers[impl].call(f"run {name} {iters}")
            times[impl].append(sum(reply["seconds"]) / iters)
            peak[impl] = max(peak[impl], reply["peak_rss_mb"])
    med = {impl: statistics.median(t) for impl, t in times.items()}
    gflop = warm["bindery"]["gflop"]
    row = {
        "case": name, "precision": precision, "threads": threads, "reps": reps, "iters": iters,
        "gflop": gflop, "weights_mb": warm["bindery"]["weights_mb"],
        "optimizer": warm["pytorch"].get("optimizer", "") if "pytorch" in warm else "",
        "bindery_samples_s": batch / med["bindery"], "bindery_gflops": gflop / med["bindery"],
    }
    for impl in impls:
        row[f"{impl}_ms"] = 1e3 * med[impl]
        row[f"{impl}_peak_rss_mb"] = peak[impl]
        row[f"{impl}_base_rss_mb"] = base.get(impl, float("nan"))
        row[f"{impl}_all_ms"] = " ".join(f"{1e3 * t:.1f}" for t in times[impl])
        if impl != "bindery":
            suffix = "" if impl == "pytorch" else f"_{impl}"  # "ratio" stays PyTorch's (the chart reads it)
            row[f"ratio{suffix}"] = med[impl] / med["bindery"]
            row[f"ratio_best{suffix}"] = min(times[impl]) / min(times["bindery"])
            row[f"{impl}_gflops"] = gflop / med[impl]
            row[f"{impl}_samples_s"] = batch / med[impl]
    log(f"[{threads}t {precision}] {name}: " + "; ".join(
        f"{impl} {row[f'{impl}_ms']:.1f} ms ({row[f'{impl}_all_ms']}), peak RSS {peak[impl]:.0f} MB" for impl in impls))
    return row


def format_report(rows, info, peaks, args):
    peers = [p for p in ("pytorch", "openvino") if any(f"{p}_ms" in r for r in rows)]
    title = {"pytorch": "PyTorch", "openvino": "OpenVINO"}
    out = []
    out.append(f"Machine: {info['cpu']}; load average {info['load_average_start']} at the start, "
               f"{info['load_average_end']} at the end; {info['date']}.")
    out.append(f"bindery: {info['gxx']}, Release (-O3), OpenBLAS {info['openblas']} (pthreads). "
               f"PyTorch {info['torch']} ({info['torch_blas']}, CPU capability {info['torch_cpu_capability']}), "
               f"imagebind-unofficial {info['imagebind-unofficial']}, OpenVINO {info['openvino']}, "
               f"NNCF {info['nncf']}, Python {info['python']}.")
    out.append(f"{args.reps} repetitions per case, rotating the order of the implementations ({args.reps_long} where "
               f"one iteration takes over {args.long_seconds:g} s), after one warm-up each; medians of ms per "
               "iteration. Ratio = peer time / bindery time (> 1: bindery faster); in parentheses the "
               "ratio of the best repetitions. % peak: of the measured fp32 GEMM peak "
               + ", ".join(f"{v:g} GFLOP/s at {k} thread{'s' if k > 1 else ''}" for k, v in sorted(peaks.items()))
               + ".")
    out.append("")
    out.append("Peak RSS: each process's high-water mark over the case (one fresh process per encoder and "
               "precision); in parentheses the same process's RSS before it built the encoder.")
    out.append("")
    head = ["case", "precision", "threads", "GFLOP / iter", "bindery ms"] + [f"{title[p]} ms" for p in peers]
    head += [f"vs {title[p]}" for p in peers] + ["bindery GFLOP/s (% fp32 peak)", "weights MB"]
    head += [f"peak RSS MB {n}" for n in ["bindery"] + [title[p] for p in peers]]
    out.append("| " + " | ".join(head) + " |")
    out.append("|---|---|" + "---:|" * (len(head) - 2))
    for r in rows:
        peak = peaks.get(r["threads"])
        pct = f" ({100 * r['bindery_gflops'] / peak:.0f}%)" if peak else ""
        cells = [r["case"].replace("encoder_", "").replace("/heavy", ""), r["precision"], str(r["threads"]),
                 f"{r['gflop']:.1f}", f"{r['bindery_ms']:.1f}"]
        cells += [f"{r[p + '_ms']:.1f}" if p + "_ms" in r else "—" for p in peers]
        for p in peers:
            key = "ratio" if p == "pytorch" else f"ratio_{p}"
            cells.append(f"**{r[key]:.2f}** ({r[key.replace('ratio', 'ratio_best')]:.2f})" if key in r else "—")
        cells += [f"{r['bindery_gflops']:.1f}{pct}", f"{r['weights_mb']:.0f}"]
        for impl in ["bindery"] + peers:
            cells.append(f"{r[impl + '_peak_rss_mb']:.0f} ({r[impl + '_base_rss_mb']:.0f})"
                         if impl + "_peak_rss_mb" in r else "—")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    if "--torch-serve" in sys.argv[1:]:
        protocol_to_stdout()
        serve(TorchServer())
    elif "--ov-serve" in sys.argv[1:]:
        protocol_to_stdout()
        serve(OpenVinoServer())
    else:
        main()
