// examples/06_imagebind_in_30_lines — the real ImageBind: images, sounds and texts from raw files into
// one embedding space, and how similar each pair is. From the config to the printed matrices it is
// about 30 lines; the rest reads the command line.
//
//   ./06_imagebind_in_30_lines --weights imagebind_huge.pth --image dog_image.jpg car_image.jpg
//       --audio dog_audio.wav car_audio.wav --text "A dog." "A car."      (one command line)
//
// --config tiny runs the 16-dimensional test model (tests/reference/model/tiny.pth): the whole path
// runs, but its numbers mean nothing; they do with imagebind_huge.pth (--config huge, the default).
#include <bindery/data/all.hpp>
#include <bindery/models/imagebind/imagebind.hpp>
#include <bindery/ops/matmul.hpp>
#include <bindery/ops/softmax.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

using namespace bindery;
namespace ib = bindery::models::imagebind;
using ib::Modality;

int main(int argc, char** argv) try {
  std::string weights, config_name = "huge", bpe = BINDERY_DEFAULT_BPE;
  std::vector<std::string> images, sounds, texts;
  CLI::App app{"ImageBind in 30 lines: embed images, sounds and texts; print their similarities"};
  app.add_option("--weights", weights, "imagebind_huge.pth or .safetensors")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--config", config_name, "huge, tiny, or a config .json")->capture_default_str();
  app.add_option("--image", images, "JPEG / PNG files")->required()->check(CLI::ExistingFile);
  app.add_option("--audio", sounds, "WAV files")->required()->check(CLI::ExistingFile);
  app.add_option("--text", texts, "strings")->required();
  app.add_option("--bpe", bpe, "the CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // TUTORIAL: a config is a table of encoder specs, one per modality; from_checkpoint builds only the
  // encoders asked for and streams their weights in (keys as the reference's state_dict).
  const ib::ImageBindConfig config = config_name == "huge"   ? ib::ImageBindConfig::huge()
                                     : config_name == "tiny" ? ib::ImageBindConfig::tiny()
                                                             : ib::load_config(config_name);
  const auto model = ib::ImageBindModel<float>::from_checkpoint(
      weights, config, {Modality::kVision, Modality::kText, Modality::kAudio});

  // TUTORIAL: raw files -> model inputs with the reference's data.py pipelines, sized by the config's
  // input shapes (huge: 224 px images; 3 clips of 128 mel bins x 204 frames; 77 tokens).
  data::VisionTransformConfig vision;
  vision.size = config.at(Modality::kVision).input_shape.back();
  data::AudioOptions audio;
  audio.num_mel_bins = config.at(Modality::kAudio).input_shape[1];
  audio.target_length = config.at(Modality::kAudio).input_shape[2];
  const int64_t context = config.at(Modality::kText).context_length();

  NoGrad no_grad;  // inference: record no tape
  const Tensor<float> image =
      model->encode(Modality::kVision, data::load_and_transform_vision_data<float>(images, vision)).value();
  const Tensor<float> sound =
      model->encode(Modality::kAudio, data::load_audio_batch<float>(sounds, audio)).value();
  const Tensor<float> text = model->encode(Modality::kText, data::tokenize(texts, bpe, context)).value();

  // TUTORIAL: softmax(a @ b^T) over the columns, as the reference README prints it.
  auto show = [](const char* title, const Tensor<float>& a, const Tensor<float>& b,
                 const std::vector<std::string>& rows, const std::vector<std::string>& cols) {
    const std::vector<float> p = ops::softmax_forward(ops::matmul_forward(a, b, false, true), -1).to_vector();
    std::printf("%s\n%18s", title, "");
    for (const std::string& c : cols) std::printf(" %16.16s", c.c_str());
    for (size_t r = 0; r < rows.size(); ++r) {
      std::printf("\n%18.18s", rows[r].c_str());
      for (size_t c = 0; c < cols.size(); ++c) std::printf(" %16.4f", p[r * cols.size() + c]);
    }
    std::printf("\n\n");
  };
  auto names = [](std::vector<std::string> files) {
    for (std::string& f : files) f = std::filesystem::path(f).filename().string();
    return files;
  };
  show("Vision x Text:", image, text, names(images), texts);
  show("Audio x Text:", sound, text, names(sounds), texts);
  show("Vision x Audio:", image, sound, names(images), names(sounds));
  if (config_name != "huge")
    std::printf(
        "note: these numbers are meaningful with imagebind_huge.pth (--config huge), not a test model\n");
  return 0;
} catch (const bindery::Error& e) {
  std::fprintf(stderr, "06_imagebind_in_30_lines: %s\n", e.what());
  return 2;
}
