// bindery/io/convert.hpp — checkpoint conversion: a torch.save state_dict (.pth) as safetensors.
//
//   io::pth_to_safetensors("imagebind_huge.pth", "imagebind_huge.safetensors");
//
// Streams: the safetensors header is built from the pickle alone (names, dtypes, shapes), then each
// tensor's bytes go from the zip member to the new file in chunks of at most 16 MiB, so converting
// the 4.8 GB ImageBind checkpoint takes megabytes of memory, not the file's size. Element types are
// kept as they are (F16 stays F16: no conversion happens). safetensors holds neither views nor shared
// storage: a view (transposed, offset, one of several tensors of a storage) is written as the
// contiguous copy of its elements, which costs its storage in memory while it is gathered.
// Every check of load_pth runs first; the output appears atomically (SafetensorsWriter).
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindery/io/pth.hpp"
#include "bindery/io/safetensors.hpp"

namespace bindery::io {

/// Writes the tensors of the torch.save state_dict `pth_path` that options.key_filter accepts (all
/// when empty) as the safetensors file `safetensors_path`, in its element types, with `metadata` as
/// its "__metadata__" (none when empty). Memory: a 16 MiB buffer, plus one storage while a
/// non-contiguous view of it is gathered. Throws what load_pth throws for a bad input, IoError for a
/// failed write (the target is then left untouched).
inline void pth_to_safetensors(const std::string& pth_path, const std::string& safetensors_path,
                               const PthOptions& options = {},
                               const std::map<std::string, std::string>& metadata = {}) {
  const detail::PthArchive archive = detail::open_pth(pth_path, options);
  const auto& storages = archive.pickle.storages;
  std::vector<SafetensorsWriter::Entry> entries;
  std::unordered_map<std::string, const TensorRecord*> records;
  for (const auto& [name, index] : archive.named) {
    if (!accepts(options.key_filter, name)) continue;
    const TensorRecord& t = archive.pickle.tensors[static_cast<size_t>(index)];
    entries.push_back({name, storages[static_cast<size_t>(t.storage)].dtype, Shape(t.sizes)});
    records.emplace(name, &t);
  }
  SafetensorsWriter out(safetensors_path, std::move(entries), metadata);

  constexpr int64_t kChunkBytes = int64_t{16} << 20;
  std::vector<unsigned char> buffer;
  std::vector<bool> verified(storages.size(), false);
  for (const SafetensorsWriter::Entry& entry : out.entries()) {
    const TensorRecord& t = *records.at(entry.name);
    const int64_t numel = entry.shape.numel();
    if (numel == 0) continue;
    const auto s = static_cast<size_t>(t.storage);
    const ZipEntry& member = *archive.storage_entries[s];
    if (options.verify_checksums && !verified[s]) {
      archive.zip.verify_crc32(member);
      verified[s] = true;
    }
    const int64_t item = dtype_size(entry.dtype);
    const std::string what =
        ::bindery::detail::concat(pth_path, ": tensor '", entry.name, "' (storage '", storages[s].key, "')");
    // Row-major strides: the elements are one byte range of the member (sizes and the extent were
    // checked against the storage by the unpickler).
    bool contiguous = true;
    int64_t expected = 1;
    for (int64_t d = entry.shape.rank() - 1; d >= 0; --d) {
      const int64_t extent = entry.shape[d];
      if (extent != 1 && t.strides[static_cast<size_t>(d)] != expected) contiguous = false;
      expected *= extent;
    }
    if (contiguous) {
      const int64_t begin = member.data_offset + t.offset * item, bytes = numel * item;
      buffer.resize(static_cast<size_t>(std::min(bytes, kChunkBytes)));
      for (int64_t done = 0; done < bytes;) {
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(buffer.size()), bytes - done);
        archive.zip.file().read_at(begin + done, buffer.data(), n, what);
        out.write(buffer.data(), n);
        done += n;
      }
      continue;
    }
    // A strided view: read its storage, gather its elements in row-major order.
    std::vector<unsigned char> storage(static_cast<size_t>(storages[s].numel * item));
    archive.zip.file().read_at(member.data_offset, storage.data(), static_cast<int64_t>(storage.size()),
                               what);
    std::vector<unsigned char> gathered(static_cast<size_t>(numel * item));
    std::vector<int64_t> index(static_cast<size_t>(entry.shape.rank()), 0);
    int64_t source = t.offset;
    for (int64_t k = 0; k < numel; ++k) {
      std::copy_n(storage.data() + source * item, item, gathered.data() + k * item);
      for (int64_t d = entry.shape.rank() - 1; d >= 0; --d) {  // odometer step
        const auto ud = static_cast<size_t>(d);
        source += t.strides[ud];
        if (++index[ud] < entry.shape[d]) break;
        source -= index[ud] * t.strides[ud];
        index[ud] = 0;
      }
    }
    out.write(gathered.data(), static_cast<int64_t>(gathered.size()));
  }
  out.commit();
}

}  // namespace bindery::io
