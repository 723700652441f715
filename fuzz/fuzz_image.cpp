// fuzz_image: PNG and JPEG through inspect_image, decode_image (8-bit, as Pillow) and
// decode_image_u16 (raw 16-bit gray), from memory. The pixel limit is lower than the default so
// one input stays fast; check_decodable_size itself is what refuses large headers.
#include "fuzz_target.hpp"

#include <bindery/data/image.hpp>

BINDERY_FUZZ_TARGET(image) {
  const auto bytes = bindery::fuzz::bytes_of(data, size);
  bindery::data::ImageLimits limits;
  limits.max_pixels = int64_t{1} << 22;
  bindery::fuzz::guarded([&] {
    const auto info = bindery::data::inspect_image(bytes, "fuzz image");
    const auto image = bindery::data::decode_image(bytes, "fuzz image", limits);
    if (image.width != info.width || image.height != info.height)
      bindery::fuzz::round_trip_failed("image", "decoded size vs the header");
    (void)bindery::data::to_rgb(image);
  });
  bindery::fuzz::guarded([&] { (void)bindery::data::decode_image_u16(bytes, "fuzz image", limits); });
  return 0;
}
