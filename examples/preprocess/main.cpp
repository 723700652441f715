// examples/preprocess — raw files to the model's input tensors, saved as .npy.
//
//   preprocess --modality image   dog.jpg car.jpg out.npy           -> (2, 3, 224, 224) float32
//   preprocess --modality depth   --sun-rgbd depth.png out.npy      -> (1, 1, 224, 224)
//   preprocess --modality thermal ir.png out.npy                    -> (1, 1, 224, 224)
//   preprocess --modality video   --fps 30 frames_dir/ out.npy      -> (1, 15, 3, 2, 224, 224)
//   preprocess --modality video   clip.mp4 out.npy                  -> (1, 15, 3, 2, 224, 224) (FFmpeg)
//   preprocess --modality audio   dog.wav car.wav out.npy           -> (2, 3, 1, 128, 204)
//   preprocess --modality text    "a dog" "a car" out.npy           -> (2, 77) int64 token ids
//   preprocess --modality imu     walk.csv out.npy                  -> (1, 6, 2000)
//
// Every input is processed as the reference's data.py (or the documented community recipe for
// depth and thermal) does it; see include/bindery/data/*.hpp. The last positional argument is the
// output; all earlier ones are inputs, batched in order.
//
// TUTORIAL: the modalities are a table of {name, description, function}; adding one is one more
// row. Each function turns the input paths and the parsed options into a tensor.
#include <bindery/data/audio.hpp>
#include <bindery/data/depth.hpp>
#include <bindery/data/image.hpp>
#include <bindery/data/imu.hpp>
#include <bindery/data/thermal.hpp>
#include <bindery/data/text/tokenizer.hpp>
#include <bindery/data/video.hpp>
#include <bindery/data/video_ffmpeg.hpp>
#include <bindery/io/npy.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace {

using bindery::Shape;
using bindery::Tensor;
namespace data = bindery::data;

/// Every option any modality reads (each modality uses its own few).
struct Options {
  int64_t size = 224;
  // depth
  bool sun_rgbd = false;
  double focal_length = 518.857901;
  double baseline = 0.075;
  double depth_scale = 0;  // 0: the default (1000 for integer data, 1 for float .npy)
  // thermal
  bool normalize = false;
  // video
  double fps = 0;
  int64_t clips = 5;
  // text
  std::string bpe = BINDERY_DEFAULT_BPE;
};

/// Images, audio, ... are float32 tensors; text becomes int64 token ids.
using Output = std::variant<Tensor<float>, Tensor<int64_t>>;

struct Modality {
  std::string name;
  std::string description;
  std::function<Output(const std::vector<std::string>&, const Options&)> run;
};

const std::vector<Modality>& modalities() {
  static const std::vector<Modality> table = {
      {"image", "PNG/JPEG -> (B, 3, S, S), CLIP-normalized (reference data.py)",
       [](const std::vector<std::string>& inputs, const Options& o) {
         data::VisionTransformConfig config;
         config.size = o.size;
         return data::load_and_transform_vision_data<float>(inputs, config);
       }},
      {"depth", "16-bit PNG or .npy depth -> disparity (B, 1, S, S) (community SUN-D recipe)",
       [](const std::vector<std::string>& inputs, const Options& o) {
         data::DepthConfig config;
         config.size = o.size;
         config.sun_rgbd_bitshift = o.sun_rgbd;
         config.focal_length = o.focal_length;
         config.baseline = o.baseline;
         if (o.depth_scale > 0) config.depth_scale = o.depth_scale;
         return data::load_and_transform_depth_data<float>(inputs, config);
       }},
      {"thermal", "gray image -> (B, 1, S, S), unnormalized unless --normalize",
       [](const std::vector<std::string>& inputs, const Options& o) {
         data::ThermalConfig config;
         config.size = o.size;
         config.normalize = o.normalize;
         return data::load_and_transform_thermal_data<float>(inputs, config);
       }},
      {"video",
       std::string("video files (FFmpeg: ") + (data::kHasFfmpeg ? "built in" : "not built in") +
           ") or folders of frames (+ --fps) -> (B, clips*3, 3, 2, S, S) (reference data.py)",
       [](const std::vector<std::string>& inputs, const Options& o) {
         for (const std::string& input : inputs) {
           std::error_code error;
           BINDERY_CHECK(o.fps > 0 || !std::filesystem::is_directory(input, error), ValueError,
                         "--modality video: ", input,
                         " is a folder of frames and needs --fps (the frames' rate)");
         }
         data::VideoConfig config;
         config.size = o.size;
         config.clips_per_video = o.clips;
         // Files decode with FFmpeg (their own rate); without it they fail saying how to get it.
         return data::load_and_transform_videos<float>(inputs, o.fps, config);
       }},
      {"audio", "WAV files -> (B, 3, 1, 128, 204): 16 kHz, 3 clips of 2 s, Kaldi fbank (reference data.py)",
       [](const std::vector<std::string>& inputs, const Options&) {
         std::vector<data::AudioReport> reports;
         Tensor<float> batch = data::load_audio_batch<float>(inputs, {}, &reports);
         for (const auto& report : reports) {
           for (const auto& warning : report.warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
         }
         return batch;
       }},
      {"text", "strings -> (B, 77) int64 CLIP BPE token ids (--bpe: the merges file)",
       [](const std::vector<std::string>& inputs, const Options& o) {
         return data::tokenize(inputs, o.bpe);
       }},
      {"imu", ".npy or CSV, 6 channels x T -> (B, 6, 2000) (center crop / zero pad)",
       [](const std::vector<std::string>& inputs, const Options&) {
         std::vector<Tensor<float>> rows;
         for (const auto& path : inputs) rows.push_back(data::load_imu<float>(path).unsqueeze(0));
         Tensor<float> batch = Tensor<float>::empty(Shape{static_cast<int64_t>(rows.size()), 6, 2000});
         for (size_t i = 0; i < rows.size(); ++i)
           batch.select(0, static_cast<int64_t>(i)).copy_(rows[i].squeeze(0));
         return batch;
       }},
  };
  return table;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Preprocess raw files into ImageBind model inputs (.npy, float32)"};
  std::string modality;
  std::vector<std::string> paths;
  Options o;
  std::vector<std::string> names;
  std::string help = "one of:";
  for (const Modality& m : modalities()) {
    names.push_back(m.name);
    help += "\n  " + m.name + ": " + m.description;
  }
  app.add_option("--modality,-m", modality, help)->required()->check(CLI::IsMember(names));
  app.add_option("paths", paths, "input files (frame folders, or strings for text), then the output .npy")
      ->required()
      ->expected(2, -1);
  app.add_option("--size", o.size, "output height and width")->check(CLI::Range(int64_t{1}, int64_t{4096}));
  app.add_flag("--sun-rgbd", o.sun_rgbd, "depth: undo SUN RGB-D's 3-bit rotation of millimetres");
  app.add_option("--focal-length", o.focal_length, "depth: focal length in pixels");
  app.add_option("--baseline", o.baseline, "depth: stereo baseline in metres");
  app.add_option("--depth-scale", o.depth_scale, "depth: raw units per metre (default 1000 for integers)");
  app.add_flag("--normalize", o.normalize, "thermal: Normalize(0.5, 0.5) (off: the better LLVIP number)");
  app.add_option("--fps", o.fps, "video: frame rate of the frame folders (video files carry their own)");
  app.add_option("--clips", o.clips, "video: clips per video")->check(CLI::Range(int64_t{1}, int64_t{1000}));
  app.add_option("--bpe", o.bpe, "text: CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)");
  CLI11_PARSE(app, argc, argv);

  const std::string output = paths.back();
  paths.pop_back();
  try {
    for (const Modality& m : modalities()) {
      if (m.name != modality) continue;
      std::visit(
          [&](const auto& tensor) {
            bindery::io::write_npy(output, tensor);
            std::printf("%s: %zu input(s) -> %s %s\n", modality.c_str(), paths.size(), output.c_str(),
                        bindery::concat(tensor.shape()).c_str());
          },
          m.run(paths, o));
    }
  } catch (const bindery::Error& error) {
    std::fprintf(stderr, "preprocess: %s\n", error.what());
    return 1;
  }
  return 0;
}
