#!/usr/bin/env python3
"""Writes the audio and text parity fixtures that tests/data reads: tests/reference/audio/* and
tests/reference/text/*, from the reference code itself (imagebind-unofficial's data.py and
SimpleTokenizer, torchaudio, pytorchvideo's clip sampler, ftfy, regex).

Run:  /work/pyenv/bin/python tests/reference/make_audio_text_fixtures.py [--audio] [--text] [--tables]
(no flag: all three; --tables regenerates include/bindery/data/text/tables.hpp and
data/text/mojibake_tables.hpp)
The exact package versions are printed and recorded in tests/reference/audio_text_versions.txt.

Environment notes (all recorded in the versions file):
- torchaudio 2.11 refuses to import next to torch 2.15 (a CUDA-version check of its extension,
  irrelevant on CPU): torch.version.cuda is hidden during the import. resample and kaldi.fbank are
  pure Python over torch ops.
- torchaudio >= 2.9's load() decodes through torchcodec, which needs FFmpeg's shared libraries
  (Debian: libavformat59 libavcodec59 libavdevice59 libavfilter8 libswresample4 libswscale6).
- pytorchvideo 0.1.5 imports torchvision.transforms.functional_tensor, renamed _functional_tensor in
  torchvision >= 0.17: an alias is installed before importing imagebind.data.
Real inputs are read in place from ../shared/data (never copied into the repository).
"""
import argparse
import json
import os
import struct
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))
AUDIO_OUT = os.path.join(HERE, "audio")
TEXT_OUT = os.path.join(HERE, "text")


# ---------------------------------------------------------------------------------------------------
# Importing the reference
# ---------------------------------------------------------------------------------------------------
def import_torchaudio():
    import torch

    cuda = torch.version.cuda
    torch.version.cuda = None  # skip torchaudio's CUDA-version check (CPU use only)
    try:
        import torchaudio
    finally:
        torch.version.cuda = cuda
    return torch, torchaudio


def import_reference_data():
    import torchvision.transforms._functional_tensor as functional_tensor

    sys.modules.setdefault("torchvision.transforms.functional_tensor", functional_tensor)
    import_torchaudio()
    import imagebind.data as reference_data

    return reference_data


def import_reference_tokenizer():
    # imagebind.data imports torchaudio and pytorchvideo; the tokenizer does not need them.
    if "imagebind.data" not in sys.modules:
        sys.modules["imagebind.data"] = types.ModuleType("imagebind.data")
    from imagebind.models.multimodal_preprocessors import SimpleTokenizer

    return SimpleTokenizer


def versions():
    import importlib.metadata as md

    lines = [f"python {sys.version.split()[0]}"]
    for name in ["torch", "torchaudio", "torchcodec", "torchvision", "pytorchvideo", "imagebind-unofficial",
                 "numpy", "ftfy", "regex", "iopath"]:
        try:
            lines.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            lines.append(f"{name} (not installed)")
    import unicodedata

    lines.append(f"unicodedata (str.lower, NFC) {unicodedata.unidata_version}")
    try:
        import subprocess

        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libavcodec59"], capture_output=True, text=True)
        lines.append(f"FFmpeg libavcodec59 (Debian) {out.stdout.strip() or 'unknown'}")
    except OSError:
        pass
    import torch

    lines.append(f"torch CPU capability {torch.backends.cpu.get_cpu_capability()} (oneDNN picks its conv kernel by "
                 "it: the float32 rounding of torchaudio's resample depends on the CPU)")
    lines += [
        "note: torchaudio imported with torch.version.cuda hidden (its extension's CUDA-version check; CPU use only)",
        "note: torchcodec and pytorchvideo installed with pip --no-deps; FFmpeg runtime libraries from Debian "
        "(libavformat59 libavcodec59 libavdevice59 libavfilter8 libswresample4 libswscale6) for torchaudio.load",
        "note: torchvision.transforms.functional_tensor aliased to _functional_tensor for pytorchvideo 0.1.5",
    ]
    return lines


# ---------------------------------------------------------------------------------------------------
# Audio
# ---------------------------------------------------------------------------------------------------
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def write_wav(path, samples, rate, kind, extensible=False, extra_chunk=False):
    """samples: (C, N) float64 in about [-1, 1]. kind: u8 s16 s24 s32 f32 f64."""
    channels, frames = samples.shape
    inter = samples.T.reshape(-1)
    if kind == "u8":
        data = np.clip(np.round(inter * 128 + 128), 0, 255).astype(np.uint8).tobytes()
        bits, tag = 8, 1
    elif kind == "s16":
        data = np.clip(np.round(inter * 32768), -32768, 32767).astype("<i2").tobytes()
        bits, tag = 16, 1
    elif kind == "s24":
        v = np.clip(np.round(inter * 2**23), -(2**23), 2**23 - 1).astype("<i4")
        b = v.view(np.uint8).reshape(-1, 4)[:, :3]
        data = b.tobytes()
        bits, tag = 24, 1
    elif kind == "s32":
        data = np.clip(np.round(inter * 2**31), -(2**31), 2**31 - 1).astype("<i4").tobytes()
        bits, tag = 32, 1
    elif kind == "f32":
        data = inter.astype("<f4").tobytes()
        bits, tag = 32, 3
    elif kind == "f64":
        data = inter.astype("<f8").tobytes()
        bits, tag = 64, 3
    else:
        raise ValueError(kind)
    block = channels * bits // 8
    if extensible:
        mask = (1 << channels) - 1
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * block, block, bits)
        fmt += struct.pack("<HHI", 22, bits, mask) + struct.pack("<H", tag) + GUID_TAIL
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:  # an unknown, even-sized chunk between fmt and data: readers must skip it
        info = b"INFOISFT" + struct.pack("<I", 8) + b"bindery\x00"
        chunks += b"LIST" + struct.pack("<I", len(info)) + info
    chunks += b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)


def synth(rate, seconds, channels, seed, peak=0.8):
    rng = np.random.default_rng(seed)
    n = int(round(rate * seconds))
    t = np.arange(n) / rate
    out = []
    for c in range(channels):
        f0 = 110.0 * (c + 1) + 40 * seed
        chirp = np.sin(2 * np.pi * (f0 * t + 0.5 * (rate / 8) * t**2 / max(seconds, 1e-3)))
        tones = 0.5 * np.sin(2 * np.pi * 3 * f0 * t + c) + 0.25 * np.sin(2 * np.pi * 7.3 * f0 * t)
        noise = 0.2 * rng.standard_normal(n)
        env = 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t + seed)
        x = env * (0.5 * chirp + tones) + noise + 0.05 * (c + 1)  # a DC offset per channel
        x[n // 3 : n // 3 + n // 20] = 0.0  # a stretch of digital silence (log floor)
        out.append(x)
    x = np.stack(out)
    return peak * x / np.max(np.abs(x))


# name, rate, seconds, channels, kind, extensible, extra chunk, peak
GENERATED = [
    ("u8_8k_mono_7s", 8000, 7.0, 1, "u8", False, False, 0.8),  # long: clips do not overlap
    ("s16_16k_mono_2p3s", 16000, 2.3, 1, "s16", False, True, 0.8),  # no resampling, overlapping clips
    ("s24_22k05_stereo_0p5s", 22050, 0.5, 2, "s24", False, False, 0.8),  # short: 3 identical clips
    ("s32_48k_mono_0p3s", 48000, 0.3, 1, "s32", False, False, 0.8),
    ("f32_11k025_3ch_0p5s", 11025, 0.5, 3, "f32", False, False, 1.2),  # peaks beyond 1 are kept
    ("f64_24k_mono_0p3s", 24000, 0.3, 1, "f64", False, False, 0.8),
    ("ext_s16_44k1_stereo_0p3s", 44100, 0.3, 2, "s16", True, False, 0.8),
    ("ext_f32_16k_mono_1p1s", 16000, 1.1, 1, "f32", True, False, 0.8),
]
# Shared files (the reference's dog/car/bird WAVs, FSDD) are never copied into the repository, not even as
# derived arrays: their parity was measured in place when the pipeline was written, and the tests read them
# in place without stored outputs. Add paths here only to measure locally, never to commit the results.
ASSETS = []
FSDD = []
FULL_INPUT = {"dog_audio"}  # the final (3, 1, 128, 204) is stored whole for these; strided for the rest
FBANK_FULL = {"fsdd_0_george_0"}  # per-clip fbank stored whole for these


def strided(x, max_values):
    """x flattened, every `step`-th value, with step >= size / max_values and coprime with 2, 3 and 17
    (so that the kept values wander over the rows and columns of 128 x 204 arrays)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    step = max(1, -(-flat.size // max_values))
    while step > 1 and (step % 2 == 0 or step % 3 == 0 or step % 17 == 0):
        step += 1
    return flat[::step].copy(), step


def make_audio():
    import torch

    reference_data = import_reference_data()
    _, torchaudio = import_torchaudio()
    from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler

    os.makedirs(os.path.join(AUDIO_OUT, "wav"), exist_ok=True)
    for name, rate, seconds, channels, kind, ext, extra, peak in GENERATED:
        seed = sum(map(ord, name)) % 97
        write_wav(os.path.join(AUDIO_OUT, "wav", name + ".wav"), synth(rate, seconds, channels, seed, peak), rate,
                  kind, ext, extra)

    cases = [(n, os.path.join(AUDIO_OUT, "wav", n + ".wav"), "tests/reference/audio/wav/" + n + ".wav")
             for n, *_ in GENERATED]
    cases += [(os.path.splitext(os.path.basename(p))[0], os.path.join(SHARED, p), "shared:" + p) for p in ASSETS]
    cases += [("fsdd_" + os.path.splitext(os.path.basename(p))[0], os.path.join(SHARED, p), "shared:" + p)
              for p in FSDD]

    manifest = {"sample_rate": 16000, "mean": -4.268, "std": 9.138, "cases": []}
    for name, path, rel in cases:
        waveform, sr = torchaudio.load(path)  # the reference's first step
        resampled = waveform.clone() if sr == 16000 else torchaudio.functional.resample(waveform, orig_freq=sr,
                                                                               new_freq=16000)
        # data.py's loop, step by step, to expose the intermediates (checked against the real call below).
        sampler = ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=3)
        timepoints = reference_data.get_clip_timepoints(sampler, resampled.size(1) / 16000)
        # Save before the loop: like data.py, the loop below modifies the waveform in place. (No clone:
        # resample returns a strided view, and the layout changes torch's reduction order for the mean.)
        values, step = strided(resampled.numpy(), 2048)
        np.save(os.path.join(AUDIO_OUT, name + ".resampled.npy"), values)
        resampled_step = step
        work = resampled
        spans, fbanks, fbanks64 = [], [], []
        for start, end in timepoints:
            a, b = int(start * 16000), int(end * 16000)
            clip = work[:, a:b]
            clip -= clip.mean()  # in place on `work`, as data.py does on its waveform
            kwargs = dict(htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
                          num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10)
            fb = torchaudio.compliance.kaldi.fbank(clip, **kwargs)
            # The same call on the same clip in float64: how far torchaudio's own float32 rounding
            # moves the features (near-silent bands: ~1e-3; the tests use it to bound our error).
            fbanks64.append(torchaudio.compliance.kaldi.fbank(clip.double(), **kwargs).numpy())
            spans.append([a, min(b, resampled.size(1))])
            fbanks.append(fb.numpy())
        final = reference_data.load_and_transform_audio_data([path], "cpu")[0].numpy()  # (3, 1, 128, 204)
        # The mirrored loop must agree with the reference function exactly.
        for k, fb in enumerate(fbanks):
            mine = np.zeros((128, 204), np.float32)
            frames = min(fb.shape[0], 204)
            mine[:, :frames] = fb[:frames].T
            mine = torch.from_numpy(mine).sub_(torch.tensor(-4.268)).div_(torch.tensor(9.138)).numpy()
            assert np.array_equal(mine, final[k, 0]), (name, k)

        case = {"name": name, "path": rel, "source_rate": sr, "channels": int(waveform.shape[0]),
                "source_frames": int(waveform.shape[1]), "resampled_frames": int(resampled.shape[1]),
                "clips": spans, "clip_frames": [int(f.shape[0]) for f in fbanks]}
        # Loaded waveform: a strided subset (<= 1024 values).
        values, step = strided(waveform.numpy(), 1024)
        np.save(os.path.join(AUDIO_OUT, name + ".load.npy"), values)
        case["load_step"] = step
        case["resampled_step"] = resampled_step
        # Per-clip fbank before normalization, (frames, 128) each, concatenated over the clips.
        fb_all = np.concatenate(fbanks, axis=0)
        values, step = strided(fb_all, fb_all.size if name in FBANK_FULL else 3000)
        np.save(os.path.join(AUDIO_OUT, name + ".fbank.npy"), values)
        case["fbank_step"] = step
        values64 = np.concatenate(fbanks64, axis=0).astype(np.float32).reshape(-1)[::step].copy()
        np.save(os.path.join(AUDIO_OUT, name + ".fbank64.npy"), values64)
        case["fbank_float32_vs_float64"] = float(np.abs(fb_all.astype(np.float64) -
                                                        np.concatenate(fbanks64, axis=0)).max())
        # The model input.
        values, step = strided(final, final.size if name in FULL_INPUT else 3000)
        np.save(os.path.join(AUDIO_OUT, name + ".input.npy"), values)
        case["input_step"] = step
        manifest["cases"].append(case)
        print(f"{name:28s} sr {sr:6d} ch {case['channels']} frames {case['source_frames']:7d} -> "
              f"{case['resampled_frames']:7d} clips {spans} fbank frames {case['clip_frames']} "
              f"torchaudio fp32 vs fp64 {case['fbank_float32_vs_float64']:.2e}")
    with open(os.path.join(AUDIO_OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


# ---------------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------------
WORDS = ("a dog the car bird cat plays runs on in with of and photo picture sky tree red blue green small "
         "large happy old new two three man woman child street city beach mountain river night day").split()
DIGITS = "zero one two three four five six seven eight nine".split()
SNIPPETS = [
    # accents, composed and decomposed (NFC), Latin extended
    "Café crème brûlée", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e", "naïve façade Über Straße",
    "Ångström Øresund Łódź Čeština Ærøskøbing", "São Paulo, Bogotá, Zürich", "Ĳsselmeer ĳs ǅemal ǈubljana",
    "e\u0301\u0301 a\u0308\u0304 o\u0328\u0301",
    # Greek, Cyrillic, Arabic, Hebrew, Devanagari, Thai, Georgian, Armenian
    "ΟΔΥΣΣΕΥΣ Ὀδυσσεύς", "ΣΊΣΥΦΟΣ ΣΑΣ Σ. ΑΣ' Σ", "Καλημέρα κόσμε", "Привет, мир! ЁЖИК в тумане",
    "مرحبا بالعالم ١٢٣٤٥", "שלום עולם", "नमस्ते दुनिया १२३", "สวัสดีชาวโลก", "გამარჯობა", "Բարեւ աշխարհ",
    # CJK and widths
    "你好，世界！", "日本語のテキスト、カタカナとひらがな。", "ｶﾀｶﾅ ﾃｽﾄ", "ＬＯＵＤ　ＮＯＩＳＥＳ！１２３",
    "한국어 문장입니다", "中文標點：「引號」《書名》", "漢字かな交じり文",
    # emoji
    "I love 🍕 and 🍺!", "👨\u200d👩\u200d👧\u200d👦 family", "👍🏽👍🏿 ok", "🇺🇸🇫🇷🇯🇵 flags", "1\ufe0f\u20e3 keycap",
    "❤️🔥✨💯", "smile 😀😃😄😁", "🐶🐱🐦 dog cat bird",
    # punctuation runs and quotes
    "Wait... what?!?!", "---===+++***", "«quoted» „German“ ‘single’ “double”", "it’s ‘fine’ — really…",
    "(parens) [brackets] {braces} <angles>", "a@b.c #hash $100 %50 ^caret &and *star", "~`|\\/_",
    # HTML entities
    "Tom &amp; Jerry", "&lt;b&gt;bold&lt;/b&gt;", "&quot;quoted&quot; &#39;single&#39; &#x27;hex&#x27;",
    "caf&eacute; cr&egrave;me &copy; 2024 &reg; &trade;", "P&EACUTE;REZ BUNDESSTRA&SZLIG;E", "&amp;amp;amp; triple",
    "&amp;lt;tag&amp;gt;", "this&not that &notin; &notit; &notinva;", "&nbsp;non&nbsp;breaking&nbsp;",
    "&#128512; &#x1F600; &#0; &#x110000; &#55296; &#13; &#128; &#x9f; &#11;", "&ampx &amp &lt3 &gtgt",
    "x < y &amp; z", "line one &amp; two\nline <two> &amp; three", "&Jscr;ohn &HilbertSpace;ancock &checkmark;",
    "&#65;&#x42;&#X43; &#x41x; &#; &#x; &; &unknownentity; &AMP; &AMP", "&frac12; &frac34; &sup2; &micro;",
    "&#99999999999999999999; &#x0000000041; &fflig; &FFLIG; &ffilig;",
    # numbers
    "1234567890", "3.14159 2.71828 -42 +7 1e10", "٣٤٥ ۱۲۳ १२३ ๑๒๓", "x² y³ ½ ¾ ⅞ Ⅻ ① ⑳ ㊿", "0x1F 0b1010 0o777",
    "2023-11-27 12:34:56", "$1,234.56 €99 £5 ¥1000",
    # contractions
    "don't won't can't isn't I'm you're we'll they've she'd it's", "O'Reilly's rock 'n' roll", "Y'ALL'RE DON'T",
    "it’s he’ll ʼtis", "''s '''t 's 't", "'ſ 'S 'T 'RE 'VE 'M 'LL 'D", "dog's bird's car's", "rock'n'roll",
    # whitespace oddities
    "  leading and trailing  ", "tabs\tand\ttabs", "new\nlines\r\nand\rreturns", "nbsp\u00a0em\u2003space\u3000ideo",
    "zero\u200bwidth\u200cjoiner\u200d", "bom\ufeffinside", "nel\u0085line sep\u2028para\u2029", "\u1680ogham\u205fmath",
    "\x07bell\x08back\x0bvt\x0cff\x1fus\x7fdel", "\x1b[31mred\x1b[0m normal \x1b[1;4mbold\x1b[m",
    "\u206aformat\u206f \ufff9ann\ufffc", "", "   ", "\t\n\r ",
    # case
    "HeLLo WoRLD", "İstanbul DİYARBAKIR", "ΣΊΣΥΦΟΣ", "ǅ ǈ ǋ ǲ", "ẞ STRASSE", "ÀÉÎÕÜ", "MIXED case Words",
    "ＡＢＣ ａｂｃ", "Ⓐⓑⓒ ⅠⅡⅢ ⅰⅱⅲ", "ﬁnancial ﬂow ﬀ ﬃ ﬄ ﬅ ﬆ",
    # special tokens
    "<|startoftext|>", "hello <|endoftext|> world", "<|EndOfText|> and <|STARTOFTEXT|>", "<|startoftext|><|endoftext|>",
    "<|ſtartoftext|> long s", "<|endoftext|", "|endoftext|>",
    # combining marks and oddities
    "\u0345 ypogegrammeni \u1fb3 \u03b1\u0345", "a\u0300\u0316 z\u0361z", "Z̸̢͎̲̈́̍a̴͔̓l̵̘̈g̶̻̈́o̷͚͝",
    "\ue000 private \U000f0000", "unassigned \u0378\u0379 \U000E0001\U000E0041", "tag\U000E0020chars",
    "\U0001D400\U0001D401 math bold \U0001D7CE\U0001D7CF", "𐍈 gothic 𓀀 hieroglyph",
    # mojibake (ftfy re-decodes it)
    "Ã©tÃ© Ã  la plage", "donâ€™t â€œquoteâ€\x9d", "The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows.",
    "\x80\x85\x91\x92\x93 C1 controls", "sÃ³ some text",
]


def random_strings(rng, count):
    """Strings drawn from a pool of scripts, symbols, spaces and marks."""
    pools = [
        (0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x2FF), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
        (0x530, 0x58F), (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x10A0, 0x10FF),
        (0x1E00, 0x1EFF), (0x1F00, 0x1FFF), (0x2000, 0x206F), (0x2070, 0x209F), (0x20A0, 0x20CF),
        (0x2100, 0x214F), (0x2150, 0x218F), (0x2190, 0x21FF), (0x2460, 0x24FF), (0x2500, 0x257F),
        (0x3000, 0x303F), (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0xFB00, 0xFB4F),
        (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x1D400, 0x1D7FF), (0x1F300, 0x1F6FF), (0x1F900, 0x1F9FF),
        (0x20000, 0x200FF), (0x30000, 0x300FF), (0x31350, 0x313FF), (0x11F00, 0x11F5F), (0x1E030, 0x1E08F),
    ]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(int(rng.integers(1, 12))):
            kind = rng.random()
            if kind < 0.35:
                parts.append(WORDS[int(rng.integers(len(WORDS)))])
            elif kind < 0.45:
                parts.append(str(rng.choice([" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2009"])))
            else:
                lo, hi = pools[int(rng.integers(len(pools)))]
                chars = [chr(int(c)) for c in rng.integers(lo, hi + 1, size=int(rng.integers(1, 8)))]
                parts.append("".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF))
        out.append(" ".join(parts) if rng.random() < 0.5 else "".join(parts))
    return out


def corpus(rng):
    texts = list(SNIPPETS)
    texts += ["A dog.", "A car", "A bird", "a photo of a dog", "a photo of a car", "a photo of a bird"]
    texts += [f"a person saying {d}" for d in DIGITS] + [f"The number {i} is spoken by {n}." for i, n in
                                                       enumerate(["george", "jackson", "lucas", "nicolas"])]
    for _ in range(250):  # captions with random case, punctuation and spacing
        words = [WORDS[int(i)] for i in rng.integers(len(WORDS), size=int(rng.integers(2, 14)))]
        if rng.random() < 0.3:
            words = [w.upper() if rng.random() < 0.5 else w.capitalize() for w in words]
        texts.append(" ".join(words) + str(rng.choice([".", "!", "?", "...", "", " :)", "!!!"])))
    for n in [76, 77, 78, 100, 200]:  # > 77 tokens: truncated to 76 + EOT
        texts.append(" ".join(WORDS[i % len(WORDS)] for i in range(n)))
        texts.append("".join(chr(0x4E00 + 37 * i) for i in range(n)))
    texts.append("🍕" * 60)
    texts.append("supercalifragilisticexpialidocious " * 20)
    for snippet in SNIPPETS:  # the snippets again inside sentences, and upper-cased
        texts.append(f"Look: {snippet} (end)")
        texts.append(snippet.upper())
    texts += random_strings(rng, 1100 - len(texts))
    return texts


# Mojibake: real text whose UTF-8 was decoded with a single-byte codec (once or twice), alone or next
# to correct text, and text that ftfy must leave alone. Appended to the corpus after the strings
# above (their own random generator, so that the first 1,100 strings stay as they were).
MOJIBAKE_SOURCES = [
    "Café crème brûlée", "naïve façade Über Straße", "São Paulo, Bogotá, Zürich", "Ångström Øresund Łódź",
    "Čeština a slovenčina", "Ærøskøbing à la carte", "été à la plage", "où est l'hôtel ?", "piñata jalapeño",
    "Καλημέρα κόσμε", "Привет, мир! Ёжик", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    "你好，世界！", "日本語のテキスト", "한국어 문장입니다", "I love 🍕 and 🍺!", "smile 😀😃 ok 👍🏽",
    "it’s “quoted” and ‘single’", "don’t stop — really…", "«guillemets» „German“", "50 °C ± 2 ½ price ¼",
    "price: 5 € or £4 or ¥500", "non\u00a0breaking\u00a0space", "a\u00a0b and c\u00a0d", "• bullet ™ © ®",
    "x² + y³ = z", "✔ No problems", "¯\\_(ツ)_/¯", "Straße in München", "Ελληνικά και English",
    "İstanbul Şişli Ğ", "Dvořák Janáček Smetana", "Wałęsa Kraków Gdańsk", "Mañana, señor", "Lumière’s “film”",
]
MOJIBAKE_CODECS = ["latin-1", "windows-1252", "sloppy-windows-1252", "windows-1251", "sloppy-windows-1250",
                   "windows-1253", "windows-1254", "windows-1257", "iso-8859-2", "macroman", "cp437"]
MOJIBAKE_SNIPPETS = [
    # ftfy's own documented examples
    "âœ” No problems", "&macr;\\_(ã\x83\x84)_/&macr;", "sÃ³", "voilÃ le travail", "Ã³", "&ATILDE;&SUP3;",
    "The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows.", "â€œ like this â€\ufffd",
    # restore_byte_a0: NBSP turned into a space; "Ã " for "à ", except Portuguese às, àquele...
    "Ã la carte", "fÃ cil", "Ã s vezes Ã quele Ã quela Ã quilo", "Ã  la plage", "caf\u00c3 \u00a9", "Â 50",
    "â€ test", "ðŸ ˜€ emoji", "ð\u0178\u02dc\u20ac", "Ã‰ric et Ã‰lise",
    # lossy sequences: bytes lost to U+FFFD, or to '?'
    "donâ€™t â€œquoteâ€\ufffd", "Ã? and Ã\ufffd", "â\ufffd\ufffd three", "ðŸ\ufffd\ufffd four",
    # CESU-8 and Java's null, and ftfy's quirk of the final "\n" after byte C0 (the newline is lost)
    "\u00ed\u00a0\u00bd\u00ed\u00b8\u0080 cesu", "Ã©tÃ© À\x80 java null", "Ã©tÃ© À\nnext line",
    "Ã©tÃ© \u00ed\u00a0\u0080\u00ed\u00b0\nnext",
    # decode_inconsistent_utf8: mojibake next to correct text
    "Ã©tÃ© and été", "日本語 Ã©tÃ©", "✔ ok âœ” fixed", "— dash and â€” dash", "naïve cafÃ©",
    # C1 controls (Latin-1 meant as Windows-1252)
    "\x80\x85\x91\x92\x93 C1 controls", "caf\u00e9\x92s", "\x81\x8d\x8f\x90\x9d undefined",
    # MacRoman, CP437, Windows-1251 mojibake
    "caf‚àö¬© macroman", "‚Äú quoted ‚Äù", "├⌐t├⌐ cp437", "Р В Р’ double", "вЂ” dash", "Ð Ð¸Ñ Ð¾Ð½",
    # text that only looks a bit like mojibake (ftfy leaves most of it alone)
    "Ãlvaro", "PÉREZ ÀÉÎÕÜ", "naïve café Øresund", "1° C and 2 × 3", "┐(°‿°)┌ kaomoji", "Ελληνικά",
    "Русский текст ВГРС", "½ ¼ ¾ ± µ", "Â is a letter", "à la française", "ÃÂ", "© 2024 ® ™",
    "ŒUVRE œuvre", "Ø and Ù", "×²", "a Ã b", "EURO€ POUND£", "√2 ≈ 1.414", "“Élan”", "Ā€",
]


def mojibake_corpus(rng):
    texts = list(MOJIBAKE_SNIPPETS)

    def garble(s, codec):
        return s.encode("utf-8").decode(codec, errors="replace")  # strict codecs: unassigned bytes -> U+FFFD

    for i in range(260):
        source = MOJIBAKE_SOURCES[i % len(MOJIBAKE_SOURCES)]
        codec = MOJIBAKE_CODECS[int(rng.integers(len(MOJIBAKE_CODECS)))]
        kind = i % 5
        if kind == 0:  # once
            text = garble(source, codec)
        elif kind == 1:  # twice, same codec or another
            text = garble(garble(source, codec), MOJIBAKE_CODECS[int(rng.integers(len(MOJIBAKE_CODECS)))])
        elif kind == 2:  # next to correct text
            other = MOJIBAKE_SOURCES[int(rng.integers(len(MOJIBAKE_SOURCES)))]
            text = f"{other} {garble(source, codec)}" if rng.random() < 0.5 else f"{garble(source, codec)} — {other}"
        elif kind == 3:  # NBSP lost: byte A0 written as a space
            text = garble(source, codec).replace("\u00a0", " ")
        else:  # over several lines, one of them garbled
            text = f"{source}\n{garble(source, codec)}\n{WORDS[i % len(WORDS)]}"
        texts.append(text)
    return texts


def python_lower_table():
    """(code point, its str.lower()) for every code point that lower() changes."""
    return [(c, chr(c).lower()) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and chr(c).lower() != chr(c)]


def split_classes():
    """Per code point, the alternative of the CLIP split pattern that takes it: L (letters), N (one
    number), S (whitespace: skipped), O (other run), X (none: skipped) -- with regex's IGNORECASE."""
    import regex

    letter = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    number = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    space = regex.compile(r"\s", regex.IGNORECASE)
    other = regex.compile(r"[^\s\p{L}\p{N}]", regex.IGNORECASE)
    out = []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        k = "L" if letter.match(ch) else "N" if number.match(ch) else "S" if space.match(ch) else (
            "O" if other.match(ch) else "X")
        out.append((c, k))
    return out


def sigma_classes():
    """Per code point, how str.lower() treats it around a capital sigma: I (case-ignorable),
    C (cased, not ignorable), - (neither). Probed through lower() itself."""
    out = []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        alone, after_cased = (ch + "\u03a3").lower()[-1], ("A" + ch + "\u03a3").lower()[-1]
        out.append((c, "I" if after_cased == "\u03c2" and alone == "\u03c3" else "C" if alone == "\u03c2" else "-"))
    return out


def run_lengths(pairs):
    runs = []
    for c, k in pairs:
        if runs and runs[-1][2] == k and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c, k])
    return runs


def make_text():
    import ftfy

    SimpleTokenizer = import_reference_tokenizer()
    import imagebind.models.multimodal_preprocessors as mp

    bpe = os.path.join(SHARED, "imagebind_assets", "bpe_simple_vocab_16e6.txt.gz")
    tokenizer = SimpleTokenizer(bpe_path=bpe)
    os.makedirs(TEXT_OUT, exist_ok=True)
    texts = corpus(np.random.default_rng(1234))
    texts += mojibake_corpus(np.random.default_rng(4321))
    mojibake = 0
    with open(os.path.join(TEXT_OUT, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for text in texts:
            ids = tokenizer(text).tolist()  # (77,): the reference's __call__ (SOT, BPE, truncation, EOT, zeros)
            eot = len(ids) - 1 - ids[::-1].index(49407)  # the last EOT: text may hold "<|endoftext|>" too
            clean = mp.whitespace_clean(mp.basic_clean(text)).lower()
            # "mojibake": ftfy's mojibake repair (fix_encoding) changes the string; "ftfy": fix_text's
            # output, only where it differs from the input
            flagged = ftfy.fix_text(text) != ftfy.fix_text(text, fix_encoding=False)
            mojibake += flagged
            record = {"text": text, "clean": clean, "ids": ids[: eot + 1], "mojibake": flagged}
            if ftfy.fix_text(text) != text:
                record["ftfy"] = ftfy.fix_text(text)
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(os.path.join(TEXT_OUT, "decode.jsonl"), "w", encoding="utf-8") as f:
        for text in texts[:300]:
            ids = tokenizer.encode(text)
            f.write(json.dumps({"ids": ids, "text": tokenizer.decode(ids)}, ensure_ascii=False) + "\n")
    with open(os.path.join(TEXT_OUT, "lowercase.tsv"), "w", encoding="utf-8") as f:
        for c, low in python_lower_table():
            f.write(f"{c:X}\t{' '.join(f'{ord(x):X}' for x in low)}\n")
    with open(os.path.join(TEXT_OUT, "split_classes.tsv"), "w") as f:
        for a, b, k in run_lengths(split_classes()):
            f.write(f"{a:X}\t{b:X}\t{k}\n")
    with open(os.path.join(TEXT_OUT, "sigma_classes.tsv"), "w") as f:
        for a, b, k in run_lengths(sigma_classes()):
            f.write(f"{a:X}\t{b:X}\t{k}\n")
    print(f"text: {len(texts)} strings ({mojibake} flagged as mojibake), tables written")
    make_mojibake_probes()


def badness_alternatives():
    """The alternatives of ftfy.badness.BADNESS_RE, parsed by Python's own regex parser (3.11's
    re._parser): (whether it is anchored at the start, a sampler of strings it matches)."""
    import re
    import re._compiler
    import re._constants as c
    import re._parser

    import ftfy.badness

    parsed = re._parser.parse(ftfy.badness.BADNESS_RE.pattern, re.VERBOSE)
    assert len(parsed) == 1 and parsed[0][0] == c.BRANCH
    universe = [chr(x) for x in range(0x20, 0x2600)] + list("\t\n\u3000\uf8ff\ufb01\ufb02\ufffd")
    members = {}

    def sample(rng, item):
        op, av = item
        if op == c.LITERAL:
            return chr(av)
        if op == c.ANY:
            return rng.choice(universe)
        if op == c.AT:
            return ""
        if op == c.MAX_REPEAT:  # \s?
            lo, hi, sub = av
            return "".join(sample(rng, s) for _ in range(rng.randint(lo, min(hi, 1))) for s in sub)
        assert op == c.IN, op
        key = repr(av)
        if key not in members:
            prog = re._compiler.compile(re._parser.SubPattern(re._parser.State(), [(c.IN, av)]), 0)
            members[key] = [u for u in universe if prog.match(u)]
        return rng.choice(members[key])

    return [(any(op == c.AT for op, _ in alt), lambda rng, alt=alt: "".join(sample(rng, item) for item in alt))
            for alt in parsed[0][1][1]]


def mojibake_probes():
    """Short strings for ftfy's badness heuristic and mojibake repair: strings each pattern of
    BADNESS_RE matches (and near misses: one character changed), random strings over the characters
    the heuristic classifies, and UTF-8 with altered bytes read with ftfy's codecs."""
    import random
    import re

    import ftfy.badness
    import ftfy.chardata

    rng = random.Random(2024)
    classes = dict(ftfy.badness.MOJIBAKE_CATEGORIES)
    classes.update(ftfy.chardata.UTF8_CLUES)
    classified = sorted({chr(x) for body in classes.values() for x in range(0x2600)
                         if re.match("[" + body + "]", chr(x))} | set("\uf8ff\ufb01\ufb02\ufffd"))
    context = list("ab Z.,!?\n\t_1") + ["é", "Ã", "â", "€", "™", "°", "х", "日"]
    texts = []
    for anchored, draw in badness_alternatives():
        for k in range(14):
            s = list(draw(rng))
            if k % 2 and s:  # a near miss
                s[rng.randrange(len(s))] = rng.choice(classified + context)
            prefix = "" if anchored and k % 4 < 2 else "".join(rng.choice(context) for _ in range(rng.randint(0, 2)))
            texts.append(prefix + "".join(s) + "".join(rng.choice(context) for _ in range(rng.randint(0, 2))))
    words = ["café", "naïve", "日本語", "привет", "Καλημέρα", "“q”", "it’s", "—", "…", "🍕", "½", "°C", "à la", "às",
             "\u00a0", "Čeština", "the", "dog"]
    codecs = ftfy.chardata.CHARMAP_ENCODINGS
    for k in range(300):
        if k % 3 == 0:
            pool = classified if k % 2 else classified + list("abcxyz ,.?!") * 4
            texts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        else:
            data = bytearray(" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))).encode("utf-8"))
            for _ in range(rng.randint(0, 2)):  # bytes lost, NBSP as space, stray C0 / ED / continuation bytes
                if data:
                    data[rng.randrange(len(data))] = rng.choice([0x20, 0x1A, 0x3F, 0xA0, 0xC0, 0x80, 0xED])
            texts.append(bytes(data).decode(codecs[rng.randrange(len(codecs))], errors="replace"))
    return texts


def make_mojibake_probes():
    import ftfy
    import ftfy.badness

    texts = mojibake_probes()
    with open(os.path.join(TEXT_OUT, "mojibake.jsonl"), "w", encoding="utf-8") as f:
        for text in texts:
            # "encoding": ftfy.fix_encoding's output, only where it changes the text; "fixed":
            # ftfy.fix_text's, only where it differs from fix_encoding's
            record = {"text": text, "bad": int(ftfy.badness.is_bad(text))}
            encoding, fixed = ftfy.fix_encoding(text), ftfy.fix_text(text)
            if encoding != text:
                record["encoding"] = encoding
            if fixed != encoding:
                record["fixed"] = fixed
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"mojibake probes: {len(texts)} strings, {sum(ftfy.badness.is_bad(t) for t in texts)} bad")


def cxx_bytes(text):
    """A C++ string-literal body for `text` (UTF-8), printable ASCII kept, the rest as octal escapes."""
    out = []
    for b in text.encode("utf-8"):
        ch = chr(b)
        out.append(ch if 0x20 <= b < 0x7F and ch not in '"\\?' else f"\\{b:03o}")
    return "".join(out)


def cxx_ranges(name, codepoints, comment):
    runs = run_lengths([(c, 0) for c in sorted(codepoints)])
    lines = [f"/// {comment}", f"inline constexpr CodepointRange {name}[] = {{"]
    row = []
    for a, b, _ in runs:
        row.append(f"{{0x{a:X}, 0x{b:X}}}")
        if len(row) == 6:
            lines.append("    " + ", ".join(row) + ",")
            row = []
    if row:
        lines.append("    " + ", ".join(row) + ",")
    lines.append("};")
    return "\n".join(lines)


def cxx_entity_table(name, pairs, comment):
    lines = [f"/// {comment}", f"/// Each entry: name, \\037, value (UTF-8), \\036.", f"inline constexpr std::string_view {name} ="]
    for i in range(0, len(pairs), 8):
        chunk = "".join(f"{cxx_bytes(k)}\\037{cxx_bytes(v)}\\036" for k, v in pairs[i : i + 8])
        lines.append(f'    "{chunk}"')
    lines[-1] += ";"
    return "\n".join(lines)


def make_tables():
    """Writes include/bindery/data/text/tables.hpp: data the tokenizer's cleaning needs to agree with
    Python's html, ftfy, regex and str.lower (facts of those versions, not code)."""
    import html.entities
    import unicodedata

    import ftfy.chardata
    import regex

    html5 = sorted(html.entities.html5.items())
    ftfy_upper = sorted((k[1:], v) for k, v in ftfy.chardata.HTML_ENTITIES.items() if k[1:] not in html.entities.html5)
    letter = regex.compile(r"[\p{L}]", regex.IGNORECASE)
    number = regex.compile(r"[\p{N}]", regex.IGNORECASE)
    sup_l, sup_n = [], []
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF or unicodedata.category(chr(c)) != "Cn":
            continue
        if letter.match(chr(c)):
            sup_l.append(c)
        elif number.match(chr(c)):
            sup_n.append(c)
    unassigned = regex.compile(r"\p{Cn}")
    assigned_later = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and
                      unicodedata.category(chr(c)) == "Cn" and not unassigned.match(chr(c))]
    sigma = sigma_classes()
    ignorable_extra = [c for c, k in sigma if k == "I" and unicodedata.category(chr(c)) not in ("Mn", "Me", "Cf", "Lm", "Sk")]
    cased_extra = [c for c, k in sigma if k == "C" and unicodedata.category(chr(c)) not in ("Lu", "Ll", "Lt")]
    import importlib.metadata as md

    version = unicodedata.unidata_version
    blocks = [
        cxx_entity_table("kHtml5Entities", html5, f"The {len(html5)} HTML5 named character references "
                         "(html.entities.html5), sorted; names with and without ';'."),
        cxx_entity_table("kFtfyUpperEntities", ftfy_upper, f"ftfy's {len(ftfy_upper)} extra all-caps entities "
                         "(&EACUTE; -> É): lowercase names upper-cased, value upper-cased."),
        cxx_ranges("kRegexLetterSupplement", sup_l, f"Letters (\\p{{L}}) of the regex module that are unassigned "
                   f"in Unicode {version} ({len(sup_l)} code points)."),
        cxx_ranges("kRegexNumberSupplement", sup_n, f"Numbers (\\p{{N}}) of the regex module that are unassigned "
                   f"in Unicode {version} ({len(sup_n)} code points)."),
        cxx_ranges("kAssignedAfterPythonUnicode", assigned_later, f"Code points unassigned in Python's Unicode "
                   f"{version} but assigned in the regex module's ({len(assigned_later)}): str.lower() sees them as "
                   "neither cased nor case-ignorable."),
        cxx_ranges("kCaseIgnorableExtra", ignorable_extra, "Case_Ignorable code points outside the categories "
                   "Mn Me Cf Lm Sk (Word_Break MidLetter, MidNumLet, Single_Quote)."),
        cxx_ranges("kCasedExtra", cased_extra, "Cased code points outside Lu Ll Lt and not case-ignorable "
                   "(Other_Lowercase, Other_Uppercase)."),
    ]
    python = sys.version.split()[0]
    header = (
        "// bindery/data/text/tables.hpp — GENERATED by tests/reference/make_audio_text_fixtures.py --tables\n"
        f"// (do not edit). Data, not code: what Python {python} (html.entities, unicodedata {version}),\n"
        f"// ftfy {md.version('ftfy')} and regex {md.version('regex')} know and utf8proc's tables do not, so that\n"
        "// data/text/clean.hpp cleans and splits text exactly as the reference tokenizer does.\n"
        "#pragma once\n\n#include <cstdint>\n#include <string_view>\n\nnamespace bindery::data::tables {\n\n"
        "/// An inclusive range of code points.\nstruct CodepointRange {\n  uint32_t first, last;\n};\n\n"
        + "\n\n".join(blocks) + "\n\n}  // namespace bindery::data::tables\n"
    )
    path = os.path.join(REPO, "include", "bindery", "data", "text", "tables.hpp")
    with open(path, "w") as f:
        f.write(header)
    import shutil
    import subprocess

    if shutil.which("clang-format"):  # the repository's .clang-format, so that the file is format-clean
        subprocess.run(["clang-format", "-i", path], check=True)
    print(f"wrote {path}: {len(html5)} + {len(ftfy_upper)} entities, {len(sup_l)} + {len(sup_n)} supplement code points")


# The bits of data/text/mojibake_tables.hpp's class table: ftfy.badness.MOJIBAKE_CATEGORIES, then
# ftfy.chardata.UTF8_CLUES (the C++ names of the constants, in bit order).
MOJIBAKE_CLASS_BITS = [
    ("common", "kMbCommon"), ("c1", "kMbC1"), ("bad", "kMbBad"), ("law", "kMbLaw"), ("currency", "kMbCurrency"),
    ("start_punctuation", "kMbStart"), ("end_punctuation", "kMbEnd"), ("numeric", "kMbNumeric"),
    ("kaomoji", "kMbKaomoji"), ("upper_accented", "kMbUpperAccented"), ("lower_accented", "kMbLowerAccented"),
    ("upper_common", "kMbUpperCommon"), ("lower_common", "kMbLowerCommon"), ("box", "kMbBox"),
    ("utf8_first_of_2", "kMbFirstOf2"), ("utf8_first_of_3", "kMbFirstOf3"), ("utf8_first_of_4", "kMbFirstOf4"),
    ("utf8_continuation", "kMbContinuation"), ("utf8_continuation_strict", "kMbContinuationStrict"),
]


def make_mojibake_tables():
    """Writes include/bindery/data/text/mojibake_tables.hpp: the data of ftfy's mojibake repair
    (fix_encoding) -- the byte maps of the codecs it re-encodes with, and the membership of every code
    point in the character classes of its badness heuristic and of its UTF-8 detector."""
    import importlib.metadata as md
    import re

    import ftfy.badness
    import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-* codecs)
    import ftfy.chardata

    classes = dict(ftfy.badness.MOJIBAKE_CATEGORIES)
    classes.update(ftfy.chardata.UTF8_CLUES)
    assert sorted(classes) == sorted(name for name, _ in MOJIBAKE_CLASS_BITS), "ftfy's classes changed"
    masks = {}
    for bit, (name, _) in enumerate(MOJIBAKE_CLASS_BITS):
        member = re.compile("[" + classes[name] + "]")  # the classes are regex class bodies (with ranges)
        for c in range(0x110000):
            if member.match(chr(c)):
                masks[c] = masks.get(c, 0) | (1 << bit)
    assert max(masks) <= 0xFFFF

    codecs = []
    for name in ftfy.chardata.CHARMAP_ENCODINGS:
        table = bytes(range(256)).decode(name)
        sloppy = name.startswith("sloppy-")
        for b in range(0x80):  # ASCII maps to itself, except byte 1A of the sloppy codecs (U+FFFD)
            assert table[b] == ("\ufffd" if sloppy and b == 0x1A else chr(b)), (name, b)
        assert len(set(table)) == 256 and all(ord(ch) <= 0xFFFF for ch in table), name
        # possible_encoding() accepts exactly the text this table can encode
        assert ftfy.chardata.possible_encoding(table, name) and not ftfy.chardata.possible_encoding(
            "\x1a" if sloppy else "\ufffd", name), name
        codecs.append((name, sloppy, [ord(ch) for ch in table[0x80:]]))
    assert [n for n, _, _ in codecs][-2:] == ["macroman", "cp437"]

    lines = []
    lines.append("/// Bits of kMojibakeClasses: ftfy.badness.MOJIBAKE_CATEGORIES, then ftfy.chardata.UTF8_CLUES.")
    for bit, (name, cxx) in enumerate(MOJIBAKE_CLASS_BITS):
        lines.append(f"inline constexpr uint32_t {cxx} = 1u << {bit};  // {name}")
    lines.append("")
    lines.append("/// A code point and the classes (bits above) it belongs to.")
    lines.append("struct MojibakeClassEntry {\n  uint32_t codepoint, classes;\n};")
    lines.append("")
    lines.append(f"/// Every code point in at least one class ({len(masks)}), sorted.")
    lines.append("inline constexpr MojibakeClassEntry kMojibakeClasses[] = {")
    entries = [f"{{0x{c:X}, 0x{m:X}}}" for c, m in sorted(masks.items())]
    for i in range(0, len(entries), 6):
        lines.append("    " + ", ".join(entries[i : i + 6]) + ",")
    lines.append("};")
    lines.append("")
    lines.append("/// A single-byte codec of ftfy.chardata.CHARMAP_ENCODINGS: bytes 00-7F are ASCII, except byte 1A")
    lines.append("/// of the `sloppy` codecs, which stands for U+FFFD; `high` holds bytes 80-FF.")
    lines.append("struct MojibakeCodec {\n  std::string_view name;\n  bool sloppy;\n  char16_t high[128];\n};")
    lines.append("")
    lines.append(f"/// The {len(codecs)} codecs, in the order ftfy tries them.")
    lines.append(f"inline constexpr MojibakeCodec kMojibakeCodecs[{len(codecs)}] = {{")
    for name, sloppy, high in codecs:
        lines.append(f'    {{"{name}", {"true" if sloppy else "false"}, {{')
        for i in range(0, 128, 12):
            lines.append("        " + ", ".join(f"0x{c:X}" for c in high[i : i + 12]) + ",")
        lines.append("    }},")
    lines.append("};")

    python = sys.version.split()[0]
    header = (
        "// bindery/data/text/mojibake_tables.hpp — GENERATED by tests/reference/make_audio_text_fixtures.py\n"
        f"// --tables (do not edit). Data, not code: what ftfy {md.version('ftfy')} (Python {python}) knows for\n"
        "// its mojibake repair: the code point classes of ftfy.badness and of ftfy.chardata.UTF8_CLUES, and\n"
        "// the byte maps of ftfy's single-byte codecs. data/text/mojibake.hpp reads them.\n"
        "#pragma once\n\n#include <cstdint>\n#include <string_view>\n\nnamespace bindery::data::tables {\n\n"
        + "\n".join(lines) + "\n\n}  // namespace bindery::data::tables\n"
    )
    path = os.path.join(REPO, "include", "bindery", "data", "text", "mojibake_tables.hpp")
    with open(path, "w") as f:
        f.write(header)
    import shutil
    import subprocess

    if shutil.which("clang-format"):
        subprocess.run(["clang-format", "-i", path], check=True)
    print(f"wrote {path}: {len(masks)} classified code points, {len(codecs)} codecs")


# ---------------------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", action="store_true")
    parser.add_argument("--text", action="store_true")
    parser.add_argument("--tables", action="store_true", help="regenerate include/bindery/data/text/tables.hpp and data/text/mojibake_tables.hpp")
    args = parser.parse_args()
    both = not args.audio and not args.text and not args.tables
    if args.audio or both:
        make_audio()
    if args.text or both:
        make_text()
    if args.tables or both:
        make_tables()
        make_mojibake_tables()
    lines = versions()
    print("\n".join(lines))
    with open(os.path.join(HERE, "audio_text_versions.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
