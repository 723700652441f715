#!/usr/bin/env python3
"""Writes the small reference files that tests/io reads: tests/reference/io/*.

Generated with (also recorded in tests/reference/io_versions.txt):
    Python 3.11.7, torch 2.15.0+cu132 (used on CPU only), numpy 2.4.6, safetensors 0.8.0

Run:  /work/pyenv/bin/python tests/reference/make_io_fixtures.py
Every value below is exact (small integers, dyadic fractions, chosen float16/bfloat16 bit patterns),
so the C++ tests compare bit-for-bit. Expected values of the state dict are written as .npy next to
the files (bfloat16 as float32, which holds every bfloat16 exactly). The total stays far below 500 KB.
"""
import collections
import io
import os
import struct
import sys
import zipfile

import numpy as np
import safetensors
import safetensors.torch
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "io")
EXPECTED = os.path.join(OUT, "expected")


def state_dict():
    """An nn.Module state_dict (OrderedDict with _metadata) extended with every case the loader handles."""
    linear = torch.nn.Linear(3, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.arange(6, dtype=torch.float32).reshape(2, 3) / 8 - 0.25)
        linear.bias.copy_(torch.tensor([0.5, -1.75]))
    sd = linear.state_dict(prefix="linear.")  # OrderedDict with a _metadata attribute -> pickle BUILD
    sd["f64"] = torch.tensor([1.0 / 3.0, -2.5, 1e300], dtype=torch.float64)
    sd["f16"] = torch.tensor([1.5, -0.0, 65504.0, 2.0**-24, float("inf")], dtype=torch.float16)
    sd["bf16"] = torch.tensor([1.0, -3.140625, 1e30, 2.0**-130], dtype=torch.bfloat16)
    sd["i64"] = torch.tensor([-7, 2**40, 0], dtype=torch.int64)
    sd["i32"] = torch.tensor([-2147483648, 123456], dtype=torch.int32)
    sd["u8"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
    sd["flag"] = torch.tensor([True, False, False, True])
    sd["transposed"] = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()  # (4, 3), strides (1, 4)
    base10 = torch.arange(10, dtype=torch.float64) * 0.5
    sd["view_offset"] = base10[3:7]  # storage of 10 elements, offset 3
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) - 5.0
    sd["shared_full"] = base  # these three share one storage
    sd["shared_row"] = base[1]  # offset 4
    sd["shared_col"] = base[:, 2]  # offset 2, stride 4
    sd["scalar"] = torch.tensor(42.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.tensor([0.125, -8.0]))  # torch._utils._rebuild_parameter
    assert sd["transposed"].stride() == (1, 4)
    assert sd["shared_row"].untyped_storage().data_ptr() == sd["shared_full"].untyped_storage().data_ptr()
    return sd


def check_same(loaded, sd, ordered=True):
    if ordered:
        assert list(loaded.keys()) == list(sd.keys()), (list(loaded.keys()), list(sd.keys()))
    assert sorted(loaded.keys()) == sorted(sd.keys())
    for k, v in sd.items():
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
        assert torch.equal(loaded[k], v.detach()), k


def write_expected(sd):
    os.makedirs(EXPECTED, exist_ok=True)
    for name, t in sd.items():
        t = t.detach().contiguous()
        if t.dtype == torch.bfloat16:
            t = t.float()
        np.save(os.path.join(EXPECTED, name + ".npy"), t.numpy())


def rezip_zip64(src, dst):
    """Copies a torch.save archive with zip64 everywhere: local and central zip64 extra fields for sizes
    and offsets, a zip64 end-of-central-directory record + locator, and the classic end record saturated
    (0xFFFF / 0xFFFFFFFF) so a reader must follow the locator, as for a > 4 GiB checkpoint."""
    saved = (zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT)
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 0, 0
    try:
        buffer = io.BytesIO()
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                with zout.open(zipfile.ZipInfo(info.filename), "w", force_zip64=True) as f:
                    f.write(zin.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved
    data = bytearray(buffer.getvalue())
    eocd = data.rindex(b"PK\x05\x06")
    assert data.rfind(b"PK\x06\x07") == eocd - 20, "zip64 locator missing"
    struct.pack_into("<HHHHII", data, eocd + 4, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    with open(dst, "wb") as f:
        f.write(data)


class TinyModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.linear(x)


def write_npy_fixtures():
    def save(name, array, version=None):
        path = os.path.join(OUT, name)
        if version is None:
            np.save(path, array)
        else:
            with open(path, "wb") as f:
                np.lib.format.write_array(f, array, version=version)

    # value of element i (row-major): f(i) below; the C++ test recomputes it.
    save("f4.npy", (np.arange(6, dtype=np.float32) * 0.25 - 1.0).reshape(2, 3))
    save("f8.npy", np.arange(4, dtype=np.float64) / 3.0)
    save("i8.npy", np.array([-(2**40), -1, 0, 2**62], dtype=np.int64))
    save("i4.npy", np.array([[-5, 6], [7, -(2**31)]], dtype=np.int32))
    save("u1.npy", np.arange(0, 256, 51, dtype=np.uint8))  # 0 51 102 153 204 255
    save("b1.npy", np.array([True, False, True]))
    save("f2.npy", np.array([0.5, -2.0, 65504.0, 2.0**-24], dtype=np.float16))
    save("scalar.npy", np.float64(-3.5))
    save("fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
    save("v2.npy", np.arange(3, dtype=np.float32), version=(2, 0))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    sd = state_dict()

    pth = os.path.join(OUT, "state_dict.pth")
    torch.save(sd, pth)
    check_same(torch.load(pth, weights_only=True), sd)
    write_expected(sd)

    zip64 = os.path.join(OUT, "state_dict_zip64.pth")
    rezip_zip64(pth, zip64)
    check_same(torch.load(zip64, weights_only=True), sd)

    # safetensors holds no views and no shared storage: contiguous copies of every tensor.
    flat = collections.OrderedDict((k, v.detach().contiguous().clone()) for k, v in sd.items())
    st = os.path.join(OUT, "state_dict.safetensors")
    safetensors.torch.save_file(flat, st, metadata={"format": "pt", "source": "make_io_fixtures.py"})
    check_same(safetensors.torch.load_file(st), flat, ordered=False)
    # One dtype only: bindery re-saves this file byte for byte (same key order, padding and JSON).
    f32 = {k: v for k, v in flat.items() if v.dtype == torch.float32}
    safetensors.torch.save_file(f32, os.path.join(OUT, "f32_only.safetensors"), metadata={"format": "pt"})

    # Files the loader must refuse.
    torch.jit.save(torch.jit.trace(TinyModule(), torch.zeros(1, 2)), os.path.join(OUT, "torchscript.pt"))
    torch.save({"a": torch.ones(2)}, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)

    write_npy_fixtures()

    versions = (f"python {sys.version.split()[0]}\ntorch {torch.__version__}\nnumpy {np.__version__}\n"
                f"safetensors {safetensors.__version__}\n")
    with open(os.path.join(HERE, "io_versions.txt"), "w") as f:
        f.write(versions)
    print(versions, end="")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT}: {total} bytes")


if __name__ == "__main__":
    main()
