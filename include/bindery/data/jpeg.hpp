// bindery/data/jpeg.hpp — JPEG decoding through libjpeg-turbo, the library Pillow itself uses.
//
// Why libjpeg-turbo and not a decoder of our own. The reference opens images with Pillow, whose
// JPEG decoder is libjpeg-turbo (ISLOW IDCT, fancy upsampling, block smoothing for progressive
// files): calling the same library with the same defaults gives Pillow's pixels bit for bit. bindery
// used stb_image plus its own libjpeg-exact IDCT/upsampling kernels before; stb's 2022 snapshot in
// Debian writes out of bounds on a crafted Huffman table (issue 18), and libjpeg-turbo is the decoder
// that is fuzzed continuously (OSS-Fuzz). Measured on 397 JPEGs (tests/reference/make_image_fixtures.py
// fixtures, the reference's photos, 382 files written by Pillow 13 / libjpeg-turbo 3.2 in every
// subsampling, quality 30-100, baseline/progressive/optimized, with and without restart markers,
// sizes 1x1 to 301x211): Debian's libjpeg-turbo 2.1.5 equals Pillow on all 397, and decodes them in
// half the time of the stb path (0.087 s vs 0.169 s, one run; docs/reliability.md).
//
// Bounded work (ImageLimits): the header's size against max_pixels before anything is allocated;
// libjpeg's own working memory (the whole-image coefficient buffer of a progressive file) against a
// budget that grows with the file's size (a 2 KB file cannot claim 300 MB); at most max_jpeg_scans
// scans (each progressive scan walks the whole image); entropy-coded data that ends early (libjpeg
// would fill the rest with grey, as a truncated download looks) is refused at the moment it is seen,
// so a small file that declares a huge image stops after the blocks it really holds. The output grows
// with the rows actually decoded.
//
// Errors: libjpeg reports fatal errors through error_exit, which must not return. bindery's handler
// longjmps back into decode_jpeg_into, which holds no object with a destructor between its setjmp and
// the libjpeg calls (everything it changes lives in the caller's JpegJob), and the caller turns the
// saved message into a FormatError naming the file and the byte offset.
#pragma once

#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <span>
#include <vector>

#include <new>

#include <jerror.h>
#include <jpeglib.h>

#include "bindery/core/error.hpp"

namespace bindery::data::detail {

/// What a JPEG decode produced or why it failed; filled by decode_jpeg_into.
struct JpegJob {
  // Inputs.
  std::span<const uint8_t> bytes;
  int64_t max_pixels = 0;      // 0 = no limit (header-only reads)
  int64_t max_work_bytes = 0;  // libjpeg's memory (coefficient buffers); 0 = no limit
  int max_scans = 0;
  bool header_only = false;  // stop after the header (inspect_image)
  // Outputs.
  int64_t width = 0, height = 0;
  int channels = 0;  // 1 gray, 3 RGB, 4 CMYK (stored inverted, as Adobe writes it, when `inverted`)
  bool inverted = false;
  bool progressive = false;
  std::vector<uint8_t> pixels;
  // Failure.
  bool failed = false;
  bool too_large = false;                    // width * height over max_pixels (the caller words the message)
  char message[JMSG_LENGTH_MAX + 96] = {0};  // no allocation inside libjpeg's callbacks
  int64_t offset = -1;                       // byte offset into the file where it was noticed, when known
};

/// libjpeg's error manager with the jump target and the job it reports into.
struct JpegErrorManager {
  jpeg_error_mgr pub{};
  std::jmp_buf jump{};
  JpegJob* job = nullptr;
  const uint8_t* start = nullptr;
};

/// Progress hook: counts scans (a progressive image's cost grows with them).
struct JpegProgress {
  jpeg_progress_mgr pub{};
  int max_scans = 0;
};

inline void jpeg_note_failure(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->job->message);
  err->job->failed = true;
  if (!cinfo->is_decompressor) return;
  const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->src != nullptr && d->src->next_input_byte != nullptr && err->start != nullptr)
    err->job->offset = static_cast<int64_t>(d->src->next_input_byte - err->start);
}

[[noreturn]] inline void jpeg_error_exit(j_common_ptr cinfo) {
  jpeg_note_failure(cinfo);
  std::longjmp(reinterpret_cast<JpegErrorManager*>(cinfo->err)->jump, 1);
}

/// Warnings (level -1) that mean the entropy-coded data ran out are fatal: libjpeg would go on and
/// fill the missing blocks, so a 2 KB file could make it decode a 100-megapixel grey picture. Other
/// warnings (extraneous bytes before a marker, which real cameras write) are ignored, as Pillow does.
inline void jpeg_emit_message(j_common_ptr cinfo, int level) {
  if (level != -1) return;  // trace messages
  const int code = cinfo->err->msg_code;
  if (code == JWRN_HIT_MARKER || code == JWRN_JPEG_EOF) jpeg_error_exit(cinfo);
  cinfo->err->num_warnings++;
}

inline void jpeg_silent_output(j_common_ptr) {}

inline void jpeg_progress_monitor(j_common_ptr cinfo) {
  const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  const auto* progress = reinterpret_cast<const JpegProgress*>(cinfo->progress);
  if (d->input_scan_number > progress->max_scans) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    err->job->failed = true;
    std::snprintf(err->job->message, sizeof err->job->message,
                  "more than %d scans (ImageLimits::max_jpeg_scans; each progressive scan walks the whole "
                  "image)",
                  progress->max_scans);
    std::longjmp(err->jump, 1);
  }
}

/// The whole decode; see the file comment for the setjmp discipline: from the setjmp on, this frame
/// creates no object with a destructor, and the only state it changes is in `job` (the caller's).
inline void decode_jpeg_into(JpegJob& job) {
  jpeg_decompress_struct cinfo{};
  JpegErrorManager err;
  JpegProgress progress;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_error_exit;
  err.pub.emit_message = jpeg_emit_message;
  err.pub.output_message = jpeg_silent_output;
  err.job = &job;
  err.start = job.bytes.data();
  progress.pub.progress_monitor = jpeg_progress_monitor;
  progress.max_scans = job.max_scans;
  if (setjmp(err.jump) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  jpeg_create_decompress(&cinfo);
  if (job.max_work_bytes > 0) cinfo.mem->max_memory_to_use = static_cast<long>(job.max_work_bytes);
  cinfo.progress = &progress.pub;
  jpeg_mem_src(&cinfo, job.bytes.data(), static_cast<unsigned long>(job.bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  job.width = cinfo.image_width;
  job.height = cinfo.image_height;
  job.progressive = cinfo.progressive_mode != 0;
  int64_t pixels = 0;
  if (job.max_pixels > 0 &&
      (__builtin_mul_overflow(job.width, job.height, &pixels) || pixels > job.max_pixels)) {
    job.failed = job.too_large = true;
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  // Pillow's modes: 1 component "L", 3 "RGB" (libjpeg converts from YCbCr or keeps RGB), 4 "CMYK"
  // read as Adobe-inverted ("CMYK;I", always: Pillow assumes Photoshop's polarity); others refused.
  if (cinfo.num_components != 1 && cinfo.num_components != 3 && cinfo.num_components != 4) {
    job.failed = true;
    std::snprintf(job.message, sizeof job.message, "cannot handle %d-component JPEGs (1, 3 or 4)",
                  cinfo.num_components);
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  cinfo.out_color_space =
      cinfo.num_components == 1 ? JCS_GRAYSCALE : (cinfo.num_components == 3 ? JCS_RGB : JCS_CMYK);
  job.inverted = cinfo.num_components == 4;
  job.channels = cinfo.num_components;
  if (job.header_only) {
    jpeg_destroy_decompress(&cinfo);
    return;
  }
  jpeg_start_decompress(&cinfo);
  job.channels = cinfo.output_components;
  const size_t row = static_cast<size_t>(cinfo.output_width) * static_cast<size_t>(cinfo.output_components);
  // Grow with the rows decoded (doubling), never to the header's promise before the data is seen.
  while (cinfo.output_scanline < cinfo.output_height) {
    const size_t need = (static_cast<size_t>(cinfo.output_scanline) + 1) * row;
    if (job.pixels.size() < need) {
      const size_t all = static_cast<size_t>(cinfo.output_height) * row;
      try {
        job.pixels.resize(std::min(all, std::max(need, 2 * job.pixels.size())));
      } catch (const std::bad_alloc&) {
        job.failed = true;
        std::snprintf(job.message, sizeof job.message, "out of memory for the decoded rows");
        jpeg_destroy_decompress(&cinfo);
        return;
      }
    }
    JSAMPROW target = job.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * row;
    jpeg_read_scanlines(&cinfo, &target, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
}

/// Pillow's CMYK -> RGB (Convert.c cmyk2rgb): r = clip(nk - c * nk / 255) with nk = 255 - k, the
/// division rounded as its MULDIV255 does. Inverted (Adobe) files are complemented first.
inline void jpeg_cmyk_to_rgb(std::vector<uint8_t>& pixels, bool inverted) {
  const size_t n = pixels.size() / 4;
  for (size_t i = 0; i < n; ++i) {
    uint8_t p[4];
    for (int c = 0; c < 4; ++c)
      p[c] = inverted ? static_cast<uint8_t>(255 - pixels[i * 4 + c]) : pixels[i * 4 + c];
    const int nk = 255 - p[3];
    for (int c = 0; c < 3; ++c) {
      const int tmp = p[c] * nk + 128;
      const int v = nk - (((tmp >> 8) + tmp) >> 8);
      pixels[i * 3 + static_cast<size_t>(c)] = static_cast<uint8_t>(v < 0 ? 0 : v);
    }
  }
  pixels.resize(n * 3);
}

}  // namespace bindery::data::detail
