#!/usr/bin/env python3
"""Writes the ImageBind parity fixtures that tests/models reads: tests/reference/model/* and
tests/reference/imagebind_huge_keys.txt.

Run:  /work/pyenv/bin/python tests/reference/make_model_fixtures.py
The exact package versions are printed and recorded in tests/reference/model_versions.txt.

What it does:
1. Builds the REFERENCE model (imagebind.models.imagebind_model.ImageBindModel) with the tiny
   constructor arguments of `TINY` below (the C++ `tiny()` preset must equal them), fills every
   parameter and buffer except the text causal mask with seeded random values (cls tokens, position
   embeddings, bias_k/bias_v, LayerNorm affines and the logit scales included, so that nothing is
   trivially 0 or 1), and saves the state_dict as model/tiny.pth (torch.save) and
   model/tiny.safetensors.
2. Makes inputs for the six modalities (images at the native 224 and smaller sizes — the position
   embedding is then interpolated bicubically —, a multi-clip video, multi-clip audio, CLIP-tokenized
   texts incl. one longer than 77 tokens, depth, thermal, IMU), runs the model in eval mode stage by
   stage and saves, per case, the input and the outputs of the preprocessor (tokens), the trunk,
   the head and the postprocessor as .npy (float32; token ids int64). For multi-clip cases the
   stages are on the flattened B*S batch and `final` is the mean over the clips.
3. Dumps the key list (with shapes) of the full imagebind_huge state_dict, built on the meta
   device (no 4.8 GB allocation), and its per-modality parameter counts.
4. Writes model/interp_*.npy: the reference's bicubic position-embedding interpolation
   (interpolate_pos_encoding) of a random (1, 1 + 16*16, 8) embedding to smaller AND larger grids,
   in float64.
"""
import json
import math
import os
import platform
import sys
import types

# torchaudio is broken in this venv and imagebind.data imports it; the models do not need it.
sys.modules["imagebind.data"] = types.ModuleType("imagebind.data")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import torch  # noqa: E402
from importlib import metadata  # noqa: E402
from imagebind.models import imagebind_model  # noqa: E402
from imagebind.models import multimodal_preprocessors as mp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "model")
MODALITIES = ["vision", "text", "audio", "depth", "thermal", "imu"]

# The constructor arguments of the tiny reference model (= bindery's ImageBindConfig::tiny()).
TINY = dict(
    video_frames=2,
    kernel_size=(2, 14, 14),
    out_embed_dim=16,
    vision_embed_dim=16, vision_num_blocks=2, vision_num_heads=2,
    text_embed_dim=6, text_num_blocks=2, text_num_heads=2,  # 6: the 49408-row token table keeps each
    # weights file under the 2 MiB limit for tracked files
    audio_embed_dim=16, audio_num_blocks=2, audio_num_heads=4,
    audio_kernel_size=16, audio_stride=10, audio_num_mel_bins=36, audio_target_len=64,
    audio_drop_path=0.1,
    depth_embed_dim=16, depth_kernel_size=56, depth_num_blocks=2, depth_num_heads=2, depth_drop_path=0.0,
    thermal_embed_dim=16, thermal_kernel_size=32, thermal_num_blocks=2, thermal_num_heads=2,
    thermal_drop_path=0.0,
    imu_embed_dim=16, imu_num_blocks=2, imu_num_heads=2, imu_drop_path=0.7,
)


def versions():
    names = ["torch", "numpy", "timm", "einops", "safetensors", "imagebind-unofficial", "ftfy", "regex"]
    lines = [f"python {platform.python_version()}"]
    for name in names:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} (not installed)")
    lines.append(f"torch.__version__ {torch.__version__}")
    return lines


def randomize(model, generator):
    """Seeded random values for every parameter and buffer except the text causal mask."""
    with torch.no_grad():
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name.endswith("text.mask"):
                continue
            shape = tensor.shape
            leaf = name.rsplit(".", 1)[-1]
            noise = torch.randn(shape, generator=generator, dtype=torch.float32)
            if leaf == "log_logit_scale":
                # text: learnable; exp(4.8) = 121.5 > 100 exercises the clamp. Fixed ones: near their init.
                value = 4.8 if ".text." in name else math.log({"audio": 20.0, "depth": 5.0, "thermal": 10.0,
                                                             "imu": 5.0}[name.split(".")[1]]) + 0.1
                tensor.fill_(value)
            elif "norm" in name or "pre_transformer_layer" in name or name.split(".")[2] == "0" \
                    or ".proj.0." in name:
                # LayerNorm affines (stems, blocks, pre-LN, heads): weight ~ 1 + 0.2 N, bias ~ 0.2 N.
                tensor.copy_(1.0 + 0.2 * noise if leaf == "weight" else 0.2 * noise)
            elif leaf in ("in_proj_bias", "bias"):
                tensor.copy_(0.2 * noise)
            elif leaf in ("bias_k", "bias_v", "cls_token"):
                tensor.copy_(noise)
            elif leaf == "pos_embed":
                tensor.copy_(0.5 * noise)
            elif name.endswith("token_embedding.weight"):
                tensor.copy_(noise)
            else:  # Linear / conv weights: std 1/sqrt(fan_in)
                fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
                tensor.copy_(noise / math.sqrt(fan_in))


def save(name, array):
    array = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else array
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(array))


def run_stages(model, modality, value):
    """The reference forward of one modality, stage by stage (ImageBindModel.forward's body)."""
    reduce_list = value.ndim >= 5
    if reduce_list:
        b, s = value.shape[:2]
        value = value.reshape(b * s, *value.shape[2:])
    pre = model.modality_preprocessors[modality](**{modality: value})
    tokens = pre["trunk"]["tokens"]
    trunk = model.modality_trunks[modality](**pre["trunk"])
    head = model.modality_heads[modality](trunk, **pre["head"])
    post = model.modality_postprocessors[modality](head)
    final = post.reshape(b, s, -1).mean(dim=1) if reduce_list else post
    return {"pre": tokens, "trunk": trunk, "head": head, "post": post, "final": final}


def make_inputs(generator):
    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float32)

    tokenizer = mp.SimpleTokenizer(
        bpe_path=os.path.join(os.path.dirname(mp.__file__), "..", "bpe", "bpe_simple_vocab_16e6.txt.gz"))
    long_text = " ".join(["a photo of a dog playing with a red ball in the park near the river"] * 8)
    texts = ["A dog.", "A car", long_text, "", "Café naïve — 東京 & <b>HTML</b> 123"]
    ids = tokenizer(texts, context_length=77)
    assert ids.shape == (5, 77) and int(ids[2, 76]) == 49407, "the long text must end in EOT (late-2025 fix)"
    return {
        # name: (modality, input)
        "vision_224": ("vision", randn(1, 3, 224, 224)),        # native size: no interpolation
        "vision_42": ("vision", randn(2, 3, 42, 42)),           # 3x3 patches: pos-embed interpolated
        "vision_video": ("vision", randn(1, 2, 3, 2, 28, 28)),  # B x S x C x T x H x W: 2 clips of 2 frames
        "text": ("text", ids),
        "audio": ("audio", randn(2, 1, 36, 64)),
        "audio_clips": ("audio", randn(2, 3, 1, 36, 64)),       # B x S x 1 x mel x frames
        "depth": ("depth", randn(2, 1, 224, 224)),
        "thermal": ("thermal", randn(2, 1, 224, 224)),
        "imu": ("imu", randn(2, 6, 2000)),
    }, texts


def dump_huge():
    linspace = torch.linspace  # SimpleTransformer calls .item() on it: keep it off the meta device
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
    try:
        with torch.device("meta"):
            model = imagebind_model.imagebind_huge()
    finally:
        torch.linspace = linspace
    lines = [f"{k}\t{','.join(str(d) for d in v.shape)}" for k, v in model.state_dict().items()]
    counts = {m: sum(p.numel() for k, p in model.named_parameters() if k.split(".")[1] == m) for m in MODALITIES}
    with open(os.path.join(HERE, "imagebind_huge_keys.txt"), "w") as f:
        f.write("# imagebind_huge state_dict: key<TAB>shape (comma-separated; empty = scalar), in order.\n")
        f.write("# parameters per modality: " + " ".join(f"{m}={counts[m]}" for m in MODALITIES) + "\n")
        f.write("\n".join(lines) + "\n")
    print("huge:", len(lines), "keys;", counts, "total", sum(counts.values()))


def interpolation_fixtures():
    # In float64, so that the C++ test compares against exact-ish values rather than fp32 rounding
    # (16-tap bicubic sums in fp32 carry ~1e-6 relative error), and from a generator of its own, so
    # that a change of the tiny config does not change these files.
    generator = torch.Generator().manual_seed(20232)
    pos = torch.randn(1, 1 + 16 * 16, 8, generator=generator, dtype=torch.float64)
    np.save(os.path.join(OUT, "interp_source.npy"), pos.numpy())
    for side in (3, 5, 20):
        out = mp.interpolate_pos_encoding(side * side, pos, patches_layout=(1, 16, 16), input_shape=(1, 3, 0, 0),
                                          first_patch_idx=1)
        assert out.shape == (1, 1 + side * side, 8) and out.dtype == torch.float64, (out.shape, out.dtype)
        np.save(os.path.join(OUT, f"interp_{side}.npy"), np.ascontiguousarray(out.numpy()))


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = versions()
    print("\n".join(lines))
    with open(os.path.join(HERE, "model_versions.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(20231)

    model = imagebind_model.ImageBindModel(**TINY)
    randomize(model, generator)
    model.eval()
    state = model.state_dict()
    torch.save(state, os.path.join(OUT, "tiny.pth"))
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(OUT, "tiny.safetensors"))
    os.chmod(os.path.join(OUT, "tiny.safetensors"), 0o644)  # the writer makes it private (0600)
    with open(os.path.join(OUT, "tiny_config.json"), "w") as f:
        json.dump({k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items()}, f, indent=1)

    inputs, texts = make_inputs(generator)
    cases = {}
    with torch.no_grad():
        for name, (modality, value) in inputs.items():
            stages = run_stages(model, modality, value)
            whole = model({modality: value})[modality]
            assert torch.equal(whole, stages["final"]), name
            save(f"{name}_input", value)
            for stage, out in stages.items():
                save(f"{name}_{stage}", out)
            cases[name] = modality
            norms = stages["post"].norm(dim=-1)
            print(f"{name:13s} {modality:8s} in {tuple(value.shape)} tokens {tuple(stages['pre'].shape)} "
                  f"final {tuple(stages['final'].shape)} |post| {norms.min():.4f}..{norms.max():.4f}")
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("# case<TAB>modality (files: <case>_{input,pre,trunk,head,post,final}.npy)\n")
        f.write("".join(f"{k}\t{v}\n" for k, v in cases.items()))
    with open(os.path.join(OUT, "texts.txt"), "w") as f:
        f.write("".join(t + "\n" for t in texts))
    interpolation_fixtures()
    dump_huge()
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"fixtures: {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
