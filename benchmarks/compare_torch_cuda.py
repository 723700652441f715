#!/usr/bin/env python3
"""Side by side: bindery's CUDA GEMM and fused attention against PyTorch on the same shapes.

Reads the Google Benchmark JSON of bench_cuda (whose benchmark names carry the shapes), times
PyTorch on exactly those problems on the same GPU with CUDA events, and prints a markdown table of
milliseconds, GFLOP/s and the bindery / PyTorch time ratio (> 1: bindery is slower).

    bench_cuda --benchmark_out=cuda.json --benchmark_out_format=json
    python3 benchmarks/compare_torch_cuda.py cuda.json

PyTorch runs: torch.matmul (TF32 off, or on for the bindery_tf32 rows) and
torch.nn.functional.scaled_dot_product_attention in fp32 (whatever backend PyTorch picks), forward,
and forward + backward. Without torch the bindery numbers are printed alone.
"""
import json
import sys


def parse(path):
    data = json.load(open(path))
    rows = []
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        group, shape, impl = b["run_name"].split("/")[:3]
        label, dims = shape.split(":")[:2]
        extra = shape.split(":")[2] if shape.count(":") == 2 else ""
        ms = b["real_time"] if b.get("time_unit") == "ms" else b["real_time"] / 1e6
        rows.append(dict(group=group, label=label, dims=[int(x) for x in dims.split("x")], extra=extra,
                         impl=impl, ms=ms, gflops=b.get("GFLOP/s", 0.0) / 1e9))
    return data.get("context", {}), rows


def torch_timer(torch, fn, min_time=0.2, warmup=2):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, total = [], 0.0
    while total < min_time * 1e3 or len(times) < 5:
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
        total += times[-1]
    times.sort()
    return times[len(times) // 2]  # median ms


def time_torch(torch, row):
    dev = "cuda"
    if row["group"] == "gemm_f32":
        m, n, k = row["dims"]
        torch.backends.cuda.matmul.allow_tf32 = row["impl"] == "bindery_tf32"
        a = torch.randn(m, k, device=dev)
        b = torch.randn(n, k, device=dev) if row["extra"] == "nt" else torch.randn(k, n, device=dev)
        op = (lambda: a @ b.t()) if row["extra"] == "nt" else (lambda: a @ b)
        ms = torch_timer(torch, op)
        torch.backends.cuda.matmul.allow_tf32 = False
        return ms
    batch, heads, length, dim = row["dims"]
    backward = row["impl"] == "forward_backward"
    q, k, v = (torch.randn(batch, heads, length, dim, device=dev, requires_grad=backward) for _ in range(3))
    dout = torch.randn(batch, heads, length, dim, device=dev)
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def run():
        out = sdpa(q, k, v)
        if backward:
            out.backward(dout)

    if not backward:
        with torch.no_grad():
            return torch_timer(torch, run)
    return torch_timer(torch, run)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    context, rows = parse(sys.argv[1])
    try:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError("torch has no CUDA device")
        torch_info = f"PyTorch {torch.__version__} (CUDA {torch.version.cuda})"
    except Exception as error:  # noqa: BLE001 - any import or device problem: bindery alone
        torch, torch_info = None, f"PyTorch unavailable ({error})"
    print(f"Device: {context.get('device', '?')}; {torch_info}; medians, CUDA-event times.\n")
    print("| problem | shape | bindery ms | bindery GFLOP/s | PyTorch ms | PyTorch GFLOP/s | bindery / PyTorch time |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        shape = "x".join(map(str, row["dims"])) + (f" {row['extra']}" if row["extra"] else "")
        name = f"{row['group']} {row['label']} {row['impl']}"
        if torch is not None:
            ms = time_torch(torch, row)
            gflops = row["gflops"] * row["ms"] / ms if ms > 0 else 0.0
            print(f"| {name} | {shape} | {row['ms']:.3f} | {row['gflops']:.0f} | {ms:.3f} | {gflops:.0f} | "
                  f"{row['ms'] / ms:.2f} |")
        else:
            print(f"| {name} | {shape} | {row['ms']:.3f} | {row['gflops']:.0f} | - | - | - |")


if __name__ == "__main__":
    main()
