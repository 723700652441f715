#!/usr/bin/env python3
"""Side by side: bindery's CUDA GEMM and fused attention against PyTorch on the same shapes.

Reads the Google Benchmark JSON of bench_cuda (whose benchmark names carry the shapes), times
PyTorch on exactly those problems on the same GPU with CUDA events, and prints a markdown table of
milliseconds, GFLOP/s and the bindery / PyTorch time ratio (> 1: bindery is slower).

    bench_cuda --benchmark_out=cuda.json --benchmark_out_format=json
    python3 benchmarks/compare_torch_cuda.py cuda.json

PyTorch runs: torch.matmul (TF32 off, or on for the bindery_tf32 rows; bfloat16 tensors for the
gemm_bf16 rows), torch.nn.functional.scaled_dot_product_attention in fp32 (whatever backend PyTorch
picks), forward, and forward + backward, and for the encoder rows ImageBind's huge vision encoder
written out in plain torch below (same layers and shapes as the reference's, eval, no_grad; bf16 =
torch.autocast(dtype=torch.bfloat16), PyTorch's own mixed precision). Without torch the bindery
numbers are printed alone.
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


def vision_huge(torch):
    """ImageBind's vision encoder (ViT-H/14) in plain torch: PadIm2Video(2) + Conv3d(2,14,14) patches,
    class token + positions, a LayerNorm before the 32 pre-norm blocks (nn.MultiheadAttention, as the
    reference), LayerNorm + class token + Linear(1280, 1024, no bias) + L2 normalisation."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, width=1280, heads=16):
            super().__init__()
            self.norm_1, self.norm_2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
            self.attn = nn.MultiheadAttention(width, heads, bias=True)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def forward(self, x):  # x: (L, B, D), as the reference's attention takes it
            h = self.norm_1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            return x + self.mlp(self.norm_2(x))

    class Vision(nn.Module):
        def __init__(self, width=1280):
            super().__init__()
            self.patch = nn.Conv3d(3, width, kernel_size=(2, 14, 14), stride=(2, 14, 14), bias=False)
            self.cls = nn.Parameter(torch.zeros(1, 1, width))
            self.pos = nn.Parameter(torch.zeros(1, 257, width))
            self.pre = nn.LayerNorm(width, eps=1e-6)
            self.blocks = nn.ModuleList(Block(width) for _ in range(32))
            self.head_norm = nn.LayerNorm(width, eps=1e-6)
            self.head = nn.Linear(width, 1024, bias=False)

        def forward(self, image):
            x = image.unsqueeze(2).repeat(1, 1, 2, 1, 1)  # (B, 3, 2, 224, 224)
            x = self.patch(x).flatten(2).transpose(1, 2)  # (B, 256, D)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
            x = self.pre(x).transpose(0, 1)  # (L, B, D)
            for block in self.blocks:
                x = block(x)
            x = self.head(self.head_norm(x[0]))
            return torch.nn.functional.normalize(x, dim=-1)

    return Vision().cuda().eval()


_vision = None


def time_torch(torch, row):
    global _vision
    dev = "cuda"
    if row["group"] == "encoder_vision_huge":
        if _vision is None:
            _vision = vision_huge(torch)
        image = torch.randn(row["dims"][0], 3, 224, 224, device=dev)
        bf16 = row["extra"] == "bf16"

        def forward():
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                return _vision(image)

        return torch_timer(torch, forward)
    if row["group"] == "gemm_bf16":
        m, n, k = row["dims"]
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(n, k, device=dev, dtype=torch.bfloat16) if row["extra"] == "nt" else \
            torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        op = (lambda: a @ b.t()) if row["extra"] == "nt" else (lambda: a @ b)
        return torch_timer(torch, op)
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
