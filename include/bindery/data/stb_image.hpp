// bindery/data/stb_image.hpp — stb_image (Debian's libstb-dev), compiled privately inside bindery.
//
// How stb is linked, and why. stb_image is a single header whose implementation must be compiled
// once (STB_IMAGE_IMPLEMENTATION). A header-only library has no .cpp of its own, and asking users to
// define the implementation in "exactly one" of their files breaks as soon as two libraries do the
// same. So this header compiles stb's implementation with STB_IMAGE_STATIC inside
// `bindery::data::detail::stb`: every translation unit that decodes images gets its own private
// copy (internal linkage: no duplicate symbols, nothing exported), at the cost of compiling ~8k lines
// of C once per such translation unit. The public stb names are renamed (bindery_stbi_*) so that a
// user's own `#include <stb/stb_image.h>` in the same file, before or after this one, still works
// (tests/data/test_image_decode.cpp checks both orders); only stb's IMPLEMENTATION must then live in
// a file that does not include bindery's data headers.
//
// Hardening (shared/reference/reliability.md, stb_image section):
//   - PNG and JPEG only (STBI_ONLY_PNG, STBI_ONLY_JPEG): the GIF/PSD/TGA/HDR decoders and their CVEs
//     are not compiled; no stdio (we read files ourselves), no global vertical-flip state used.
//   - STBI_MAX_DIMENSIONS caps each side at 2^17; image.hpp also calls stbi_info first and refuses
//     a decode above its pixel budget (100 MP by default) before stb allocates anything.
//   - every stb allocation goes through a per-decode arena with a byte budget (a zlib bomb in a PNG
//     gets "out of memory" instead of exhausting the machine), and the arena frees whatever stb
//     leaks on its error paths;
//   - stb's internal asserts throw instead of aborting (the arena then frees everything).
// JPEG reconstruction (IDCT, chroma upsampling, YCbCr->RGB) is replaced by the libjpeg-turbo-exact
// kernels of data/jpeg_kernels.hpp, so decoded pixels equal Pillow's (see that file).
#pragma once

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "bindery/data/jpeg_kernels.hpp"

namespace bindery::data::detail {

/// Thrown by stb's asserts (compiled as C++, so unwinding through stb frames is fine); the decoder
/// turns it into a FormatError naming the file.
struct StbAssertFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The allocations of one decode: a byte budget, and the blocks still live (freed at the end, so
/// stb's error-path leaks do not accumulate).
class StbArena {
 public:
  explicit StbArena(int64_t budget_bytes) : budget_(budget_bytes) {}
  StbArena(const StbArena&) = delete;
  StbArena& operator=(const StbArena&) = delete;
  ~StbArena() {
    for (auto& [pointer, size] : live_) std::free(pointer);
  }
  void* allocate(size_t size) {
    if (size == 0) size = 1;
    // Compared unsigned: a size_t above INT64_MAX must not turn negative and pass.
    if (size > static_cast<uint64_t>(budget_ - used_)) return nullptr;  // stb reports "outofmem"
    void* pointer = std::malloc(size);
    if (pointer == nullptr) return nullptr;
    live_.emplace(pointer, size);
    used_ += static_cast<int64_t>(size);
    return pointer;
  }
  void* reallocate(void* pointer, size_t size) {
    if (pointer == nullptr) return allocate(size);
    const auto it = live_.find(pointer);
    if (it == live_.end()) return nullptr;
    if (size == 0) size = 1;
    if (size > static_cast<uint64_t>(budget_ - used_) + it->second) return nullptr;  // unsigned, as above
    const int64_t growth = static_cast<int64_t>(size) - static_cast<int64_t>(it->second);
    void* moved = std::realloc(pointer, size);
    if (moved == nullptr) return nullptr;  // the old block stays live and tracked
    live_.erase(it);
    live_.emplace(moved, size);
    used_ += growth;
    return moved;
  }
  void release(void* pointer) {
    if (pointer == nullptr) return;
    const auto it = live_.find(pointer);
    if (it == live_.end()) return;
    used_ -= static_cast<int64_t>(it->second);
    live_.erase(it);
    std::free(pointer);
  }
  int64_t used() const { return used_; }

 private:
  int64_t budget_;
  int64_t used_ = 0;
  std::unordered_map<void*, size_t> live_;
};

/// The arena of the decode running on this thread (stb calls back without a context pointer).
inline thread_local StbArena* current_stb_arena = nullptr;

/// Makes `arena` the current one for its lifetime (decodes never nest, but restore anyway).
class StbArenaScope {
 public:
  explicit StbArenaScope(StbArena& arena) : previous_(current_stb_arena) { current_stb_arena = &arena; }
  StbArenaScope(const StbArenaScope&) = delete;
  StbArenaScope& operator=(const StbArenaScope&) = delete;
  ~StbArenaScope() { current_stb_arena = previous_; }

 private:
  StbArena* previous_;
};

inline void* stb_malloc(size_t size) {
  return current_stb_arena != nullptr ? current_stb_arena->allocate(size) : nullptr;
}
inline void* stb_realloc(void* pointer, size_t size) {
  return current_stb_arena != nullptr ? current_stb_arena->reallocate(pointer, size) : nullptr;
}
inline void stb_free(void* pointer) {
  if (current_stb_arena != nullptr) current_stb_arena->release(pointer);
}
[[noreturn]] inline void stb_assert_failed(const char* condition) {
  throw StbAssertFailure(std::string("internal check failed: ") + condition);
}

}  // namespace bindery::data::detail

// Everything below is stb's code: no warnings from it (it is also under /usr/include).
#pragma GCC system_header

namespace bindery::data::detail::stb {

// The libjpeg-turbo-exact kernels, under the names stb's JPEG decoder stores in its function
// pointers. The function-like macros further down rename stb's own definitions of these names
// (a definition is followed by '('); stb's assignments `kernel = stbi__idct_block;` are not, so they
// pick these. Signatures are stb v2.27's.
static void stbi__idct_block(unsigned char* out, int out_stride, short data[64]) {
  ::bindery::data::detail::jpeg_idct_islow(out, out_stride, data);
}
static void stbi__YCbCr_to_RGB_row(unsigned char* out, const unsigned char* y, const unsigned char* pcb,
                                   const unsigned char* pcr, int count, int step) {
  ::bindery::data::detail::jpeg_ycbcr_to_rgb_row(out, y, pcb, pcr, count, step);
}
static unsigned char* stbi__resample_row_hv_2(unsigned char* out, unsigned char* in_near,
                                              unsigned char* in_far, int w, int /*hs*/) {
  ::bindery::data::detail::jpeg_upsample_h2v2(out, in_near, in_far, w);
  return out;
}
static unsigned char* stbi__resample_row_h_2(unsigned char* out, unsigned char* in_near,
                                             unsigned char* /*in_far*/, int w, int /*hs*/) {
  ::bindery::data::detail::jpeg_upsample_h2v1(out, in_near, w);
  return out;
}
static unsigned char* stbi__resample_row_v_2(unsigned char* out, unsigned char* in_near,
                                             unsigned char* in_far, int w, int /*hs*/) {
  // Chroma rows live in one buffer top to bottom: a far row after the near one is the row below.
  ::bindery::data::detail::jpeg_upsample_h1v2(out, in_near, in_far, w, in_far > in_near);
  return out;
}

}  // namespace bindery::data::detail::stb

// ---- configure stb, include it inside the namespace, then undo every macro -----------------------
#pragma push_macro("STBI_INCLUDE_STB_IMAGE_H")
#pragma push_macro("STBIDEF")
#undef STBI_INCLUDE_STB_IMAGE_H
#undef STBIDEF

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_SIMD  // the SIMD kernels would replace the libjpeg-exact ones
#define STBI_MAX_DIMENSIONS (1 << 17)
#define STBI_MALLOC(size) ::bindery::data::detail::stb_malloc(size)
#define STBI_REALLOC(pointer, size) ::bindery::data::detail::stb_realloc(pointer, size)
#define STBI_FREE(pointer) ::bindery::data::detail::stb_free(pointer)
#define STBI_ASSERT(condition) \
  ((condition) ? static_cast<void>(0) : ::bindery::data::detail::stb_assert_failed(#condition))

#define stbi__idct_block(...) stbi__idct_block_unused_by_bindery(__VA_ARGS__)
#define stbi__YCbCr_to_RGB_row(...) stbi__YCbCr_to_RGB_row_unused_by_bindery(__VA_ARGS__)
#define stbi__resample_row_hv_2(...) stbi__resample_row_hv_2_unused_by_bindery(__VA_ARGS__)
#define stbi__resample_row_h_2(...) stbi__resample_row_h_2_unused_by_bindery(__VA_ARGS__)
#define stbi__resample_row_v_2(...) stbi__resample_row_v_2_unused_by_bindery(__VA_ARGS__)

// stb declares its API `extern "C"`; C-linkage names in two namespaces would be the same function,
// so give ours distinct names (a user's global stb keeps the plain ones).
#define stbi_convert_iphone_png_to_rgb bindery_stbi_convert_iphone_png_to_rgb
#define stbi_convert_iphone_png_to_rgb_thread bindery_stbi_convert_iphone_png_to_rgb_thread
#define stbi_convert_wchar_to_utf8 bindery_stbi_convert_wchar_to_utf8
#define stbi_failure_reason bindery_stbi_failure_reason
#define stbi_hdr_to_ldr_gamma bindery_stbi_hdr_to_ldr_gamma
#define stbi_hdr_to_ldr_scale bindery_stbi_hdr_to_ldr_scale
#define stbi_image_free bindery_stbi_image_free
#define stbi_info bindery_stbi_info
#define stbi_info_from_callbacks bindery_stbi_info_from_callbacks
#define stbi_info_from_file bindery_stbi_info_from_file
#define stbi_info_from_memory bindery_stbi_info_from_memory
#define stbi_is_16_bit bindery_stbi_is_16_bit
#define stbi_is_16_bit_from_callbacks bindery_stbi_is_16_bit_from_callbacks
#define stbi_is_16_bit_from_file bindery_stbi_is_16_bit_from_file
#define stbi_is_16_bit_from_memory bindery_stbi_is_16_bit_from_memory
#define stbi_is_hdr bindery_stbi_is_hdr
#define stbi_is_hdr_from_callbacks bindery_stbi_is_hdr_from_callbacks
#define stbi_is_hdr_from_file bindery_stbi_is_hdr_from_file
#define stbi_is_hdr_from_memory bindery_stbi_is_hdr_from_memory
#define stbi_ldr_to_hdr_gamma bindery_stbi_ldr_to_hdr_gamma
#define stbi_ldr_to_hdr_scale bindery_stbi_ldr_to_hdr_scale
#define stbi_load bindery_stbi_load
#define stbi_load_16 bindery_stbi_load_16
#define stbi_load_16_from_callbacks bindery_stbi_load_16_from_callbacks
#define stbi_load_16_from_memory bindery_stbi_load_16_from_memory
#define stbi_load_from_callbacks bindery_stbi_load_from_callbacks
#define stbi_load_from_file bindery_stbi_load_from_file
#define stbi_load_from_file_16 bindery_stbi_load_from_file_16
#define stbi_load_from_memory bindery_stbi_load_from_memory
#define stbi_load_gif_from_memory bindery_stbi_load_gif_from_memory
#define stbi_loadf bindery_stbi_loadf
#define stbi_loadf_from_callbacks bindery_stbi_loadf_from_callbacks
#define stbi_loadf_from_file bindery_stbi_loadf_from_file
#define stbi_loadf_from_memory bindery_stbi_loadf_from_memory
#define stbi_set_flip_vertically_on_load bindery_stbi_set_flip_vertically_on_load
#define stbi_set_flip_vertically_on_load_thread bindery_stbi_set_flip_vertically_on_load_thread
#define stbi_set_unpremultiply_on_load bindery_stbi_set_unpremultiply_on_load
#define stbi_set_unpremultiply_on_load_thread bindery_stbi_set_unpremultiply_on_load_thread
#define stbi_zlib_decode_buffer bindery_stbi_zlib_decode_buffer
#define stbi_zlib_decode_malloc bindery_stbi_zlib_decode_malloc
#define stbi_zlib_decode_malloc_guesssize bindery_stbi_zlib_decode_malloc_guesssize
#define stbi_zlib_decode_malloc_guesssize_headerflag bindery_stbi_zlib_decode_malloc_guesssize_headerflag
#define stbi_zlib_decode_noheader_buffer bindery_stbi_zlib_decode_noheader_buffer
#define stbi_zlib_decode_noheader_malloc bindery_stbi_zlib_decode_noheader_malloc

namespace bindery::data::detail::stb {
#include <stb/stb_image.h>
}  // namespace bindery::data::detail::stb

#undef stbi_convert_iphone_png_to_rgb
#undef stbi_convert_iphone_png_to_rgb_thread
#undef stbi_convert_wchar_to_utf8
#undef stbi_failure_reason
#undef stbi_hdr_to_ldr_gamma
#undef stbi_hdr_to_ldr_scale
#undef stbi_image_free
#undef stbi_info
#undef stbi_info_from_callbacks
#undef stbi_info_from_file
#undef stbi_info_from_memory
#undef stbi_is_16_bit
#undef stbi_is_16_bit_from_callbacks
#undef stbi_is_16_bit_from_file
#undef stbi_is_16_bit_from_memory
#undef stbi_is_hdr
#undef stbi_is_hdr_from_callbacks
#undef stbi_is_hdr_from_file
#undef stbi_is_hdr_from_memory
#undef stbi_ldr_to_hdr_gamma
#undef stbi_ldr_to_hdr_scale
#undef stbi_load
#undef stbi_load_16
#undef stbi_load_16_from_callbacks
#undef stbi_load_16_from_memory
#undef stbi_load_from_callbacks
#undef stbi_load_from_file
#undef stbi_load_from_file_16
#undef stbi_load_from_memory
#undef stbi_load_gif_from_memory
#undef stbi_loadf
#undef stbi_loadf_from_callbacks
#undef stbi_loadf_from_file
#undef stbi_loadf_from_memory
#undef stbi_set_flip_vertically_on_load
#undef stbi_set_flip_vertically_on_load_thread
#undef stbi_set_unpremultiply_on_load
#undef stbi_set_unpremultiply_on_load_thread
#undef stbi_zlib_decode_buffer
#undef stbi_zlib_decode_malloc
#undef stbi_zlib_decode_malloc_guesssize
#undef stbi_zlib_decode_malloc_guesssize_headerflag
#undef stbi_zlib_decode_noheader_buffer
#undef stbi_zlib_decode_noheader_malloc

#undef stbi__idct_block
#undef stbi__YCbCr_to_RGB_row
#undef stbi__resample_row_hv_2
#undef stbi__resample_row_h_2
#undef stbi__resample_row_v_2

#undef STB_IMAGE_STATIC
#undef STB_IMAGE_IMPLEMENTATION
#undef STBI_ONLY_PNG
#undef STBI_ONLY_JPEG
#undef STBI_NO_STDIO
#undef STBI_NO_LINEAR
#undef STBI_NO_HDR
#undef STBI_NO_SIMD
#undef STBI_MAX_DIMENSIONS
#undef STBI_MALLOC
#undef STBI_REALLOC
#undef STBI_FREE
#undef STBI_ASSERT
#undef STBI_REALLOC_SIZED
// ...and the STBI_NO_<format> switches stb derived from STBI_ONLY_*.
#undef STBI_NO_BMP
#undef STBI_NO_PSD
#undef STBI_NO_TGA
#undef STBI_NO_GIF
#undef STBI_NO_PIC
#undef STBI_NO_PNM

#undef STBI_INCLUDE_STB_IMAGE_H
#undef STBIDEF
#pragma pop_macro("STBIDEF")
#pragma pop_macro("STBI_INCLUDE_STB_IMAGE_H")
