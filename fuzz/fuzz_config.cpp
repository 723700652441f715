// fuzz_config: an ImageBind model config (config.json) through parse_json and
// imagebind_config_from_json; what parses must survive to_json -> from_json -> to_json unchanged.
#include "fuzz_target.hpp"

#include <bindery/models/imagebind/config.hpp>

BINDERY_FUZZ_TARGET(config) {
  namespace ib = bindery::models::imagebind;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bindery::fuzz::guarded([&] {
    const auto json = bindery::io::parse_json<nlohmann::ordered_json>(text, "fuzz config.json");
    const ib::ImageBindConfig config = ib::imagebind_config_from_json(json);
    const nlohmann::ordered_json once = ib::to_json(config);
    const nlohmann::ordered_json twice = ib::to_json(ib::imagebind_config_from_json(once));
    if (once != twice) bindery::fuzz::round_trip_failed("config", "to_json -> from_json -> to_json");
  });
  return 0;
}
