// The include paths that moved in 0.1 (text stack -> data/text/, datasets -> datasets/, charts ->
// plot/) still work through forwarding headers until the next release, with the old qualified names.
// Each old path is included BEFORE its new one: were an old header a stale copy instead of a
// forwarder, the second definition of its contents would not compile.
#include "test_util.hpp"

#include <bindery/data/fsdd.hpp>
#include <bindery/data/mnist.hpp>
#include <bindery/data/synth_digits.hpp>
#include <bindery/data/synth_digits_pen.hpp>
#include <bindery/data/synth_digits_sensors.hpp>
#include <bindery/data/text_clean.hpp>
#include <bindery/data/text_mojibake.hpp>
#include <bindery/data/text_mojibake_tables.hpp>
#include <bindery/data/text_tables.hpp>
#include <bindery/data/tokenizer.hpp>
#include <bindery/eval/plot.hpp>
#include <bindery/eval/plot_axes.hpp>
#include <bindery/eval/plot_heatmap.hpp>
#include <bindery/eval/svg.hpp>

#include <bindery/data/text/clean.hpp>
#include <bindery/data/text/mojibake.hpp>
#include <bindery/data/text/mojibake_tables.hpp>
#include <bindery/data/text/tables.hpp>
#include <bindery/data/text/tokenizer.hpp>
#include <bindery/datasets/all.hpp>
#include <bindery/plot/all.hpp>

#include <string>
#include <type_traits>
#include <vector>

namespace data = bindery::data;
namespace eval = bindery::eval;

TEST_CASE("forwarding headers: old include paths and old qualified names still work", "[data][layout]") {
  // data/tokenizer.hpp, data/text_clean.hpp, data/text_mojibake*.hpp, data/text_tables.hpp
  STATIC_REQUIRE(std::is_class_v<data::ClipTokenizer>);
  CHECK(data::text::whitespace_clean(U"  a \t b  ") == U"a b");
  CHECK(data::text::ftfy_fix_encoding(U"\u00c3\u009f\u65e5!") == U"\u00df\u65e5!");  // fixture line 3
  CHECK(data::tables::kMbCommon == 1u);
  CHECK(data::tables::CodepointRange{0x41, 0x5A}.last == 0x5A);

  // data/mnist.hpp, data/fsdd.hpp, data/synth_digits*.hpp
  CHECK(data::kIdxImagesMagic == 2051);
  data::FsddRecording recording;
  REQUIRE(data::parse_fsdd_name("7_theo_12.wav", "recordings", recording));
  CHECK(recording.digit == 7);
  CHECK(recording.speaker == "theo");
  CHECK(std::string(data::synth::digit_word(3)) == "three");
  CHECK(data::synth::kImageMean.size() == 3);
  CHECK(data::synth::pen_trajectory(data::synth::SynthConfig{}, 0).size() ==
        static_cast<size_t>(data::synth::kTrajectoryPoints));

  // eval/plot.hpp, eval/plot_axes.hpp, eval/plot_heatmap.hpp, eval/svg.hpp
  CHECK(eval::xml_escape("a<b") == "a&lt;b");
  CHECK(eval::nice_ticks(0, 10) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(eval::heatmap({1, 2, 3, 4}, 2, 2).rfind("<svg", 0) == 0);
  CHECK(eval::line_chart({eval::Series{.name = "s", .x = {0, 1}, .y = {1, 2}}}).rfind("<svg", 0) == 0);
}
