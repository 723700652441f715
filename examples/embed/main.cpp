// examples/embed — bindery-embed: ImageBind embeddings from the command line, of raw files or of
// preprocessed arrays, and checkpoint conversion.
//
//   bindery-embed --weights imagebind_huge.pth --image dog.jpg car.jpg --text "a dog" "a car"
//                 --audio dog.wav car.wav --out embeddings/
//   bindery-embed --weights imagebind_huge.pth --config huge --vision images.npy --text ids.npy
//                 --audio clips.npy --out embeddings/
//   bindery-embed convert imagebind_huge.pth imagebind_huge.safetensors
//
// Each modality option takes one or more values. Every value is decided on its own, and the values
// of one option, in order, make that modality's batch (a raw file is one sample, an array its N):
//   --vision, --image, --video  (one option, three names) a folder: video frames (PNG/JPEG sorted
//             by name, needs --fps) -> 15 views; a video file (.mp4, .mkv, .avi, .mov, .webm, ...:
//             data::is_video_file_name; decoded with FFmpeg when built with it, rate from the file)
//             -> 15 views; X.npy: preprocessed (N, 3, 224, 224) images or (N, V, 3, 2, 224, 224)
//             video views; anything else: an image file.
//   --text    X.npy: int64 token ids (N, 77) (it must exist: a typo is an error, not a sentence);
//             anything else: a string, tokenized with the CLIP BPE merges of --bpe.
//   --audio   X.npy: preprocessed (N, 1, 128, 204) or (N, 3, 1, 128, 204); anything else: a WAV.
//   --thermal X.npy: preprocessed (N, 1, 224, 224); anything else: a gray image.
//   --depth   a 16-bit PNG (millimetres), or X.npy by the shape rule below.
//   --imu     a CSV (6 columns, or 7 with a time column first), or X.npy by the shape rule below.
//   --input NAME=VALUE  any modality of the config by name, the user's own included (a config .json
//             with "extra_modalities"): built-in names take the values above; a modality of your own
//             takes preprocessed .npy batches (N, *its input shape), or int64 ids for a token stem.
// The .npy rule: an .npy is a preprocessed batch, EXCEPT that depth and IMU also have raw .npy
// forms (a depth map (H, W), (1, H, W) or (H, W, 1); a recording (6, T), (T, 6) or (1, 6, T)), so
// for them the shape decides: exactly (N, *the model's input shape) — (N, 1, 224, 224) and
// (N, 6, 2000) for huge — is preprocessed and used as is; any other shape is raw data and goes
// through the loader. The shapes can meet only in a (1, 6, 2000) recording, which the IMU loader
// leaves unchanged, so both readings give the same tensor. No flag is needed, and no file is ever
// read two ways.
// Raw files go through the very pipelines of examples/preprocess (bindery/data/*.hpp) with its
// defaults — in float32 as it computes them, widened for --dtype double — so `bindery-embed --image
// a.jpg` and `preprocess -m image a.jpg a.npy; bindery-embed --vision a.npy` give byte-identical
// embeddings. Sizes come from the model's config: the image/depth/thermal/video size, the audio
// clips' mel bins x frames (128 x 204 for huge: preprocess's; 36 x 64 for the tiny test model) and
// the IMU length. For other settings (--sun-rgbd depth, --normalize thermal, ...) use preprocess.
//
// Only the encoders of the modalities given are loaded, after every input has been read (a typo
// should not cost a 4.8 GB load). Writes <out>/<modality>.npy (N, 1024) and prints, for each pair
// of modalities given, the reference README's softmax similarity matrix, e.g. "Vision x Text:" =
// softmax(vision @ text.T, dim=-1): row i says which text matches sample i best.
// --precision bf16 | int8 converts the fp32 checkpoint's Linear and attention-projection weights
// as the checkpoint is read (bf16 or int8 x·Wᵀ kernels, everything else fp32; --dtype float only;
// no fp32 copy of those weights is held); fp32 (the default, --dtype float) packs them after the
// load for the fp32 inference kernel (nn::freeze). `convert IN OUT --dtype bf16|int8` writes a bf16 / int8
// safetensors file (docs/models.md), which loads at its own precision.
// `convert` turns a torch.save state_dict into safetensors tensor by tensor (a few MiB of memory,
// whatever the file's size); safetensors then loads with no unpickling at all.
// Batch mode, for thousands of files: --input-dir DIR (recursive; .png/.jpg/.jpeg and video files
// vision, .wav audio, .txt text, .csv IMU, or --modality for all) and --input-list FILE (PATH or
// MODALITY<TAB>PATH per line). --decode-threads workers decode ahead of the model (bounded), rows
// keep the sorted input order; every --shard-size inputs of a modality make <modality>-NNNNN.npy
// (embeddings), .txt (paths) and .json (model, inputs with sizes, errors): a rerun skips the shards
// whose .json still matches. Files that fail go to <out>/errors.txt (--fail-fast: exit 2).
// Exit codes: 0 success, 2 usage errors and every bindery::Error (its message, which names the
// file, goes to stderr): a missing, unreadable or corrupt input included.
#include <bindery/data/audio.hpp>
#include <bindery/data/depth.hpp>
#include <bindery/data/image.hpp>
#include <bindery/data/imu.hpp>
#include <bindery/data/thermal.hpp>
#include <bindery/data/text/tokenizer.hpp>
#include <bindery/data/video.hpp>
#include <bindery/data/video_ffmpeg.hpp>
#include <bindery/io/convert.hpp>
#include <bindery/io/npy.hpp>
#include <bindery/models/imagebind/imagebind.hpp>
#include <bindery/nn/lowp_io.hpp>
#include <bindery/nn/quantize.hpp>
#include <bindery/ops/matmul.hpp>
#include <bindery/ops/softmax.hpp>
#include <bindery/io/file.hpp>
#include <bindery/train/progress.hpp>

#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using namespace bindery;
namespace ib = bindery::models::imagebind;

namespace {

struct EmbedOptions {
  std::string weights, config = "huge", out, dtype = "float";
  std::map<ib::Modality, std::vector<std::string>> inputs;  // modality -> files, folders, strings
  std::string bpe = BINDERY_DEFAULT_BPE;                    // text: the CLIP BPE merges
  double fps = 0;                                           // video: the frame folders' rate
  int threads = 0;                                          // 0: every core
  std::string precision = "fp32";                           // Linear weights: fp32, bf16 or int8
  /// Where the pipelines' warnings go (batch mode: a file, thread-safe); unset: stderr.
  std::function<void(const std::string&)> warn;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// --precision: the Linear and attention weights converted as the checkpoint is read (no fp32 copy of
/// them is ever held; ImageBindModel::load), or taken as stored from a bf16 / int8 file.
template <class T>
std::shared_ptr<ib::ImageBindModel<T>> load_model(const EmbedOptions& options,
                                                  const ib::ImageBindConfig& config,
                                                  const std::vector<ib::Modality>& modalities) {
  const nn::WeightPrecision precision = nn::parse_weight_precision(options.precision);
  if (!std::is_same_v<T, float> && precision != nn::WeightPrecision::kFloat32)
    throw ValueError(bindery::concat("--precision ", options.precision, " needs --dtype float"));
  const auto start = std::chrono::steady_clock::now();
  auto model = ib::ImageBindModel<T>::from_checkpoint(options.weights, config, modalities, precision);
  // Loaded as fp32 (not bf16 / int8, converted or as stored): the weights packed for the fp32
  // inference kernel (nn::freeze; the same values, faster products than the layout training needs).
  if constexpr (std::is_same_v<T, float>) {
    if (!nn::has_frozen_weights(*model)) nn::freeze(*model, nn::WeightPrecision::kFloat32);
  }
  int64_t converted = 0, bytes = 0;
  const char* held = "fp32";
  if constexpr (std::is_same_v<T, float>) {
    for (const auto& [key, slot] : nn::lowp_slots(*model)) {
      const nn::LowpBlocks blocks = slot.current();
      if (blocks.empty()) continue;
      converted += 1;
      held = nn::to_string(blocks.front()->precision());
      for (const auto& block : blocks) bytes += static_cast<int64_t>(block->bytes());
    }
  }
  std::printf("loaded %zu encoder(s), %.1f M parameters, from %s in %.2f s\n", modalities.size(),
              static_cast<double>(model->num_parameters()) / 1e6, options.weights.c_str(),
              seconds_since(start));
  if (converted > 0)
    std::printf("froze %lld layers at %s for inference: %.1f MB of weights\n",
                static_cast<long long>(converted), held, static_cast<double>(bytes) * 1e-6);
  return model;
}

std::string capitalized(ib::Modality m) {
  std::string name = m == ib::Modality::kImu ? "IMU" : ib::modality_name(m);
  name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  return name;
}

ib::ImageBindConfig config_named(const std::string& name) {
  if (name == "huge") return ib::ImageBindConfig::huge();
  if (name == "tiny") return ib::ImageBindConfig::tiny();
  return ib::load_config(name);  // a JSON file (ib::save_config / to_json)
}

bool is_npy(std::string_view value) {
  return value.size() >= 4 && value.substr(value.size() - 4) == ".npy";
}

/// An input value of one modality, read: where it came from and its (n, ...) tensor.
template <class U>
struct Part {
  std::string source;
  Tensor<U> tensor;
};

/// The float32 pipelines' output as T (widening is exact: equal to reading preprocess's float32 .npy).
template <class T>
Tensor<T> as_type(const Tensor<float>& x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    return x.template cast<T>();
  }
}

/// The .npy rule for depth and IMU: exactly (N, *input_shape) is a preprocessed batch; any other
/// shape is raw data for the loader.
bool is_preprocessed_batch(const std::string& path, const std::vector<int64_t>& input_shape) {
  const Shape shape = io::inspect_npy(path).shape;
  if (shape.rank() != static_cast<int64_t>(input_shape.size()) + 1) return false;
  for (size_t i = 0; i < input_shape.size(); ++i) {
    if (shape[static_cast<int64_t>(i) + 1] != input_shape[i]) return false;
  }
  return true;
}

/// "(N, 1, 224, 224)" for the input shape (1, 224, 224).
std::string batch_shape(const std::vector<int64_t>& input_shape) {
  std::string out = "(N";
  for (int64_t d : input_shape) out += ", " + std::to_string(d);
  return out + ")";
}

template <class Report>
void print_warnings(const Report& report, const EmbedOptions& options) {
  for (const auto& warning : report.warnings) {
    if (options.warn)
      options.warn(warning);
    else
      std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }
}

/// One raw file (or frame folder) through preprocess's pipeline for modality m -> (1, ...) float32,
/// sized for the model's input shape `in`.
Tensor<float> load_raw(ib::Modality m, const std::string& path, const std::vector<int64_t>& in,
                       const EmbedOptions& options) {
  if (m == ib::Modality::kVision) {
    if (std::filesystem::is_directory(path)) {
      BINDERY_CHECK(options.fps > 0, ValueError, "--video ", path,
                    ": a folder of frames needs --fps (the frames' rate)");
      data::VideoConfig config;
      config.size = in.back();
      return data::load_and_transform_video_frames<float>({path}, options.fps, config);
    }
    if (data::is_video_file_name(path)) {  // without FFmpeg: an IoError saying how to get it
      data::VideoConfig config;
      config.size = in.back();
      return data::load_video_file<float>(path, config).unsqueeze(0);
    }
    data::VisionTransformConfig config;
    config.size = in.back();
    return data::load_and_transform_vision_data<float>({path}, config);
  }
  if (m == ib::Modality::kAudio) {
    data::AudioOptions config;  // (1, mel bins, frames): 128 x 204 for huge
    config.num_mel_bins = in[1];
    config.target_length = in[2];
    std::vector<data::AudioReport> reports;
    Tensor<float> clips = data::load_audio_batch<float>({path}, config, &reports);
    for (const auto& report : reports) print_warnings(report, options);
    return clips;
  }
  if (m == ib::Modality::kDepth) {
    data::DepthConfig config;
    config.size = in.back();
    return data::load_and_transform_depth_data<float>({path}, config);
  }
  if (m == ib::Modality::kThermal) {
    data::ThermalConfig config;
    config.size = in.back();
    return data::load_and_transform_thermal_data<float>({path}, config);
  }
  if (m == ib::Modality::kImu) {
    data::ImuOptions config;
    config.target_length = in[1];
    data::ImuReport report;
    Tensor<float> recording = data::load_imu<float>(path, config, &report).unsqueeze(0);
    print_warnings(report, options);
    return recording;
  }
  if (m != ib::Modality::kText) {
    throw ValueError(bindery::concat("--input ", ib::modality_name(m), "=", path,
                                     ": a modality of your own takes preprocessed .npy batches ",
                                     batch_shape(in), ", not raw files"));
  }
  throw ValueError("load_raw: text is not a file modality");
}

/// The parts of one modality, concatenated along the batch axis; their other dimensions must agree.
template <class U>
Tensor<U> batch_of(ib::Modality m, const std::vector<Part<U>>& parts) {
  if (parts.size() == 1) return parts[0].tensor;
  const Shape first = parts[0].tensor.shape();
  std::vector<U> values;
  int64_t batch = 0;
  for (const Part<U>& part : parts) {
    const Shape shape = part.tensor.shape();
    bool same = shape.rank() == first.rank();
    for (int64_t d = 1; same && d < shape.rank(); ++d) same = shape[d] == first[d];
    BINDERY_CHECK(same, ShapeError, "--", ib::modality_name(m), ": '", parts[0].source, "' gives ", first,
                  " but '", part.source, "' gives ", shape,
                  "; the inputs of one modality must agree in every dimension but the first");
    const std::vector<U> more = part.tensor.to_vector();
    values.insert(values.end(), more.begin(), more.end());
    batch += shape[0];
  }
  std::vector<int64_t> dims = first.dims();
  dims[0] = batch;
  return Tensor<U>::from_vector(values, Shape(dims));
}

/// Reads every value of modality m (files, folders, .npy arrays, or strings for text) -> its input.
template <class T>
ib::ModalityInput<T> read_input(ib::Modality m, const std::vector<std::string>& values,
                                const ib::ImageBindConfig& config, const EmbedOptions& options) {
  const std::vector<int64_t>& in = config.at(m).input_shape;
  if (m == ib::Modality::kText || (!m.is_builtin() && config.at(m).stem == ib::StemKind::kTokens)) {
    std::vector<Part<int64_t>> parts;
    for (const std::string& value : values) {
      if (is_npy(value)) {
        parts.push_back({value, io::read_npy<int64_t>(value)});
      } else {
        parts.push_back({"\"" + value + "\"", data::tokenize({value}, options.bpe, in[0])});
      }
    }
    return batch_of(m, parts);
  }
  std::vector<Part<T>> parts;
  for (const std::string& value : values) {
    BINDERY_CHECK(std::filesystem::exists(value), IoError, "--", ib::modality_name(m), " ", value,
                  ": no such file or folder");
    const bool has_raw_npy = m == ib::Modality::kDepth || m == ib::Modality::kImu;  // own modalities: none
    if (is_npy(value) && (!has_raw_npy || is_preprocessed_batch(value, in))) {
      parts.push_back({value, io::read_npy<T>(value)});
    } else if (is_npy(value)) {  // raw depth / IMU data; say what a preprocessed batch would need
      try {
        parts.push_back({value, as_type<T>(load_raw(m, value, in, options))});
      } catch (const FormatError& e) {
        throw FormatError(bindery::concat(e.what(), " (read as raw ", ib::modality_name(m),
                                          " data: a preprocessed batch has shape ", batch_shape(in), ")"));
      }
    } else {
      parts.push_back({value, as_type<T>(load_raw(m, value, in, options))});
    }
  }
  return batch_of(m, parts);
}

/// The pairs the reference README prints: "<x> x Text" first (text as the labels: each row is a
/// distribution over the texts), then the other pairs in the model's modality order.
std::vector<std::pair<ib::Modality, ib::Modality>> similarity_pairs(const std::vector<ib::Modality>& given) {
  std::vector<std::pair<ib::Modality, ib::Modality>> pairs;
  const bool text = std::find(given.begin(), given.end(), ib::Modality::kText) != given.end();
  if (text) {
    for (ib::Modality m : given)
      if (m != ib::Modality::kText) pairs.emplace_back(m, ib::Modality::kText);
  }
  for (size_t i = 0; i < given.size(); ++i) {
    for (size_t j = i + 1; j < given.size(); ++j) {
      if (given[i] != ib::Modality::kText && given[j] != ib::Modality::kText)
        pairs.emplace_back(given[i], given[j]);
    }
  }
  return pairs;
}

template <class T>
void print_matrix(const Tensor<T>& m) {  // (R, C), as torch prints it
  const std::vector<T> v = m.to_vector();
  const int64_t rows = m.size(0), cols = m.size(1);
  for (int64_t r = 0; r < rows; ++r) {
    std::printf("%s[", r == 0 ? "[" : " ");
    for (int64_t c = 0; c < cols; ++c)
      std::printf("%.4e%s", static_cast<double>(v[static_cast<size_t>(r * cols + c)]),
                  c + 1 < cols ? ", " : "");
    std::printf("]%s\n", r + 1 < rows ? "," : "]");
  }
}

template <class T>
int run_embed(const EmbedOptions& options) {
  const ib::ImageBindConfig config = config_named(options.config);
  // Read (and so check) every input before the weights: a typo should not cost a 4.8 GB load.
  std::map<ib::Modality, ib::ModalityInput<T>> inputs;
  for (const auto& [m, values] : options.inputs) inputs.emplace(m, read_input<T>(m, values, config, options));
  std::vector<ib::Modality> modalities;
  for (const auto& [m, input] : inputs) modalities.push_back(m);

  const auto model = load_model<T>(options, config, modalities);

  std::filesystem::create_directories(options.out);
  NoGrad no_grad;
  std::map<ib::Modality, Tensor<T>> embeddings;
  for (const auto& [m, input] : inputs) {
    const auto start = std::chrono::steady_clock::now();
    const Tensor<T> embedding = model->encode(m, input).value();  // (N, out)
    const double took = seconds_since(start);
    const std::string path =
        (std::filesystem::path(options.out) / (std::string(ib::modality_name(m)) + ".npy")).string();
    io::write_npy(path, embedding);
    std::ostringstream shapes;
    shapes << input.shape() << " -> " << embedding.shape();
    std::printf("%-8s %s in %.3f s -> %s\n", ib::modality_name(m), shapes.str().c_str(), took, path.c_str());
    embeddings.emplace(m, embedding);
  }
  for (const auto& [a, b] : similarity_pairs(modalities)) {
    std::printf("%s x %s:\n", capitalized(a).c_str(), capitalized(b).c_str());
    print_matrix(
        ops::softmax_forward(ops::matmul_forward(embeddings.at(a), embeddings.at(b), false, true), -1));
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Batch mode (--input-dir / --input-list): thousands of files, decoded on a thread pool ahead of
// the model, embedded in batches, written in shards that a rerun skips when complete.

struct BatchOptions {
  std::vector<std::string> dirs, lists;
  std::string modality;  // empty: by extension
  int64_t batch = 64, shard_size = 1024;
  int decode_threads = 0;  // 0: hardware threads
  bool fail_fast = false, progress = true;
};

/// One input of a batch run: its modality and path.
struct BatchItem {
  ib::Modality modality;
  std::string path;
};

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

/// The extension map of --input-dir: images and video files -> vision, .wav -> audio, .txt -> text
/// (the file's contents, one caption), .csv -> IMU; anything else is not an input (nullopt).
/// Depth and thermal PNGs look like images: give them with --modality or a list's "modality<TAB>".
std::optional<ib::Modality> modality_of_extension(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || data::is_video_file_name(path))
    return ib::Modality::kVision;
  if (ext == ".wav") return ib::Modality::kAudio;
  if (ext == ".txt") return ib::Modality::kText;
  if (ext == ".csv") return ib::Modality::kImu;
  return std::nullopt;
}

/// Every input of the run, sorted by (modality name, path), duplicates dropped: the order of the
/// shards' rows, whatever order the folder listing or the threads give.
std::vector<BatchItem> collect_batch_items(const BatchOptions& batch, const ib::ImageBindConfig& config,
                                           int64_t* ignored) {
  std::vector<BatchItem> items;
  const auto add = [&](const std::string& path, std::optional<ib::Modality> m) {
    if (!m && !batch.modality.empty()) m = ib::Modality(batch.modality);
    if (!m) m = modality_of_extension(path);
    if (!m) {
      ++*ignored;
      return;
    }
    if (!config.has(*m)) {
      std::string names;
      for (const auto& [have, spec] : config.encoders)
        names += (names.empty() ? "" : ", ") + std::string(have.name());
      throw ValueError(
          bindery::concat(path, ": modality '", m->name(), "' is not in the model's config (", names, ")"));
    }
    items.push_back({*m, path});
  };
  for (const std::string& dir : batch.dirs) {
    BINDERY_CHECK(std::filesystem::is_directory(dir), IoError, "--input-dir ", dir, ": not a folder");
    for (const auto& entry : std::filesystem::recursive_directory_iterator(
             dir, std::filesystem::directory_options::follow_directory_symlink)) {
      if (entry.is_regular_file()) add(entry.path().string(), std::nullopt);
    }
  }
  for (const std::string& list : batch.lists) {
    std::ifstream in(list);
    BINDERY_CHECK(in.good(), IoError, "--input-list ", list, ": cannot open");
    std::string line;
    int64_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      const size_t tab = line.find('\t');
      if (tab == std::string::npos) {
        add(line, std::nullopt);
        continue;
      }
      const std::string name = line.substr(0, tab);
      BINDERY_CHECK(ib::Modality::is_valid_name(name) && tab + 1 < line.size(), ValueError, "--input-list ",
                    list, ":", number, ": expected PATH or MODALITY<TAB>PATH, got '", line, "'");
      add(line.substr(tab + 1), ib::Modality(name));
    }
  }
  std::sort(items.begin(), items.end(), [](const BatchItem& a, const BatchItem& b) {
    return a.modality != b.modality ? a.modality < b.modality : a.path < b.path;
  });
  items.erase(std::unique(items.begin(), items.end(),
                          [](const BatchItem& a, const BatchItem& b) {
                            return a.modality == b.modality && a.path == b.path;
                          }),
              items.end());
  return items;
}

/// One file -> a batch of one sample. Text files hold one caption (trailing whitespace dropped).
template <class T>
ib::ModalityInput<T> decode_file(const BatchItem& item, const ib::ImageBindConfig& config,
                                 const EmbedOptions& options) {
  BINDERY_CHECK(std::filesystem::is_regular_file(item.path), IoError, item.path, ": no such file");
  ib::ModalityInput<T> input;
  if (item.modality == ib::Modality::kText && !is_npy(item.path)) {
    std::ifstream in(item.path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BINDERY_CHECK(!in.bad(), IoError, item.path, ": cannot read");
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    input = data::tokenize({text}, options.bpe, config.at(item.modality).input_shape[0]);
  } else {
    input = read_input<T>(item.modality, {item.path}, config, options);
  }
  BINDERY_CHECK(input.shape()[0] == 1, ShapeError, item.path, ": holds ", input.shape()[0],
                " samples; batch mode embeds one sample per file (give batches with --", item.modality.name(),
                ")");
  return input;
}

/// A decoded file, or why it failed.
template <class T>
struct Decoded {
  ib::ModalityInput<T> input;
  std::string error;  // empty: decoded
};

/// Decodes jobs[0..n) on `threads` threads ahead of the consumer, at most `capacity` results ahead
/// of it (memory stays bounded); take(i) hands them back in job order whatever the timing.
template <class T>
class DecodePool {
 public:
  DecodePool(std::vector<const BatchItem*> jobs, int threads, size_t capacity,
             std::function<ib::ModalityInput<T>(const BatchItem&)> decode)
      : jobs_(std::move(jobs)), results_(jobs_.size()), capacity_(capacity), decode_(std::move(decode)) {
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  ~DecodePool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    room_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }
  DecodePool(const DecodePool&) = delete;
  DecodePool& operator=(const DecodePool&) = delete;

  /// Job i's result (call with i = 0, 1, 2, ... in order); blocks until it is decoded.
  Decoded<T> take(size_t i) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [&] { return results_[i].has_value(); });
    Decoded<T> out = std::move(*results_[i]);
    results_[i].reset();
    taken_ = i + 1;
    lock.unlock();
    room_.notify_all();
    return out;
  }

 private:
  void work() {
#if defined(_OPENMP)
    // One file per thread: the pipelines' own OpenMP loops stay serial here (a new thread would
    // otherwise start a team of every core, whose spinning starves the model and the other workers).
    omp_set_num_threads(1);
#endif
    for (;;) {
      size_t i = 0;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        room_.wait(lock, [&] { return stop_ || next_ >= jobs_.size() || next_ < taken_ + capacity_; });
        if (stop_ || next_ >= jobs_.size()) return;
        i = next_++;
      }
      Decoded<T> result;
      try {
        result.input = decode_(*jobs_[i]);
      } catch (const std::exception& e) {  // bindery::Error and std::filesystem / allocation errors
        result.error = e.what();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        results_[i] = std::move(result);
      }
      ready_.notify_all();
    }
  }

  std::vector<const BatchItem*> jobs_;
  std::vector<std::optional<Decoded<T>>> results_;
  size_t capacity_, next_ = 0, taken_ = 0;
  bool stop_ = false;
  std::function<ib::ModalityInput<T>(const BatchItem&)> decode_;
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::vector<std::thread> workers_;
};

/// A shard: up to --shard-size consecutive inputs of one modality.
struct Shard {
  std::string name;  // "vision-00000"
  ib::Modality modality;
  std::vector<const BatchItem*> items;
};

int64_t file_size_or(const std::string& path, int64_t missing) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? missing : static_cast<int64_t>(size);
}

/// What a shard's record must say for it to be reused: the model, and its inputs with their sizes.
nlohmann::json shard_key(const Shard& shard, const EmbedOptions& options) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const BatchItem* item : shard.items) inputs.push_back({item->path, file_size_or(item->path, -1)});
  return {{"modality", std::string(shard.modality.name())},
          {"weights", options.weights},
          {"weights_bytes", file_size_or(options.weights, -1)},
          {"config", options.config},
          {"dtype", options.dtype},
          {"precision", options.precision},
          {"inputs", inputs}};
}

void write_text_atomically(const std::string& path, const std::string& text) {
  io::AtomicFileWriter out(path);
  out.write(text.data(), static_cast<int64_t>(text.size()));
  out.commit();
}

/// The shard's record (<name>.json), if it is complete for `key`: same model and inputs, and its
/// .npy / .txt of the recorded sizes; otherwise null.
nlohmann::json complete_record(const std::filesystem::path& out, const Shard& shard,
                               const nlohmann::json& key) {
  const std::filesystem::path record_path = out / (shard.name + ".json");
  if (!std::filesystem::exists(record_path)) return nullptr;
  nlohmann::json record;
  try {
    std::ifstream in(record_path);
    record = nlohmann::json::parse(in);
  } catch (const std::exception&) {
    return nullptr;  // torn or edited: recompute
  }
  if (!record.is_object() || record.value("key", nlohmann::json()) != key) return nullptr;
  const int64_t rows = record.value("rows", int64_t{-1});
  if (rows < 0) return nullptr;
  if (rows > 0) {
    for (const char* ext : {".npy", ".txt"}) {
      const std::string field = std::string(ext + 1) + "_bytes";
      if (file_size_or((out / (shard.name + ext)).string(), -2) != record.value(field, int64_t{-1}))
        return nullptr;
    }
  }
  return record;
}

template <class T>
int run_batch(const EmbedOptions& given, const BatchOptions& batch) {
  const auto start = std::chrono::steady_clock::now();
  // The pipelines' warnings (short clips, ...) go to <out>/warnings.txt: thousands of files would
  // bury the progress bar.
  std::mutex warnings_mutex;
  std::string warnings;
  int64_t warning_count = 0;
  EmbedOptions options = given;
  options.warn = [&](const std::string& warning) {
    std::lock_guard<std::mutex> lock(warnings_mutex);
    warnings += warning + "\n";
    ++warning_count;
  };
  const ib::ImageBindConfig config = config_named(options.config);
  int64_t ignored = 0;
  const std::vector<BatchItem> items = collect_batch_items(batch, config, &ignored);
  BINDERY_CHECK(!items.empty(), ValueError, "no inputs found",
                ignored > 0 ? " (every file has an extension without a modality: give --modality)" : "");
  std::printf(
      "%zu input files%s\n", items.size(),
      ignored > 0
          ? bindery::concat(" (", ignored, " other files ignored: no modality for their extension)").c_str()
          : "");
  const std::filesystem::path out(options.out);
  std::filesystem::create_directories(out);

  // Shards: per modality, consecutive runs of --shard-size inputs.
  std::vector<Shard> shards;
  for (size_t i = 0; i < items.size();) {
    const ib::Modality m = items[i].modality;
    for (int64_t k = 0; i < items.size() && items[i].modality == m; ++k) {
      char name[64];
      std::snprintf(name, sizeof(name), "%s-%05lld", m.c_str(), static_cast<long long>(k));
      Shard shard{name, m, {}};
      for (; i < items.size() && items[i].modality == m &&
             static_cast<int64_t>(shard.items.size()) < batch.shard_size;
           ++i)
        shard.items.push_back(&items[i]);
      shards.push_back(std::move(shard));
    }
  }
  std::vector<nlohmann::json> keys, records(shards.size());
  std::vector<const Shard*> pending;
  std::vector<const BatchItem*> jobs;
  std::vector<ib::Modality> modalities;
  int64_t skipped_files = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    keys.push_back(shard_key(shards[s], options));
    records[s] = complete_record(out, shards[s], keys[s]);
    if (!records[s].is_null()) {
      std::printf("skip %s: complete (%zu files)\n", shards[s].name.c_str(), shards[s].items.size());
      skipped_files += static_cast<int64_t>(shards[s].items.size());
      continue;
    }
    pending.push_back(&shards[s]);
    jobs.insert(jobs.end(), shards[s].items.begin(), shards[s].items.end());
    if (std::find(modalities.begin(), modalities.end(), shards[s].modality) == modalities.end())
      modalities.push_back(shards[s].modality);
  }

  double embed_seconds = 0, model_seconds = 0, wait_seconds = 0;
  int64_t new_errors = 0;
  if (!jobs.empty()) {
    const auto model = load_model<T>(options, config, modalities);
    const int threads = batch.decode_threads > 0
                            ? batch.decode_threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const auto pipeline_start = std::chrono::steady_clock::now();
    DecodePool<T> pool(jobs, threads, static_cast<size_t>(2 * batch.batch + 2 * threads),
                       [&](const BatchItem& item) { return decode_file<T>(item, config, options); });
    std::optional<train::ProgressBar> bar;
    if (batch.progress) bar.emplace("embed", static_cast<int64_t>(jobs.size()), "files");
    NoGrad no_grad;
    size_t next_job = 0;
    for (const Shard* shard : pending) {
      std::vector<T> rows;
      int64_t width = 0;
      std::string paths;
      nlohmann::json errors = nlohmann::json::array();
      std::vector<Part<T>> values;
      std::vector<Part<int64_t>> ids;
      std::vector<const BatchItem*> members;
      const auto flush = [&] {
        if (members.empty()) return;
        const ib::ModalityInput<T> input = ids.empty()
                                               ? ib::ModalityInput<T>(batch_of(shard->modality, values))
                                               : ib::ModalityInput<T>(batch_of(shard->modality, ids));
        const auto forward_start = std::chrono::steady_clock::now();
        const Tensor<T> embedding = model->encode(shard->modality, input).value();  // (n, out)
        model_seconds += seconds_since(forward_start);
        width = embedding.size(1);
        const std::vector<T> more = embedding.to_vector();
        rows.insert(rows.end(), more.begin(), more.end());
        for (const BatchItem* item : members) paths += item->path + "\n";
        values.clear();
        ids.clear();
        members.clear();
      };
      for (const BatchItem* item : shard->items) {
        const auto wait_start = std::chrono::steady_clock::now();
        Decoded<T> decoded = pool.take(next_job++);
        wait_seconds += seconds_since(wait_start);
        // The samples of one forward must agree in shape (an image among video files would not).
        const Shape* first = !values.empty() ? &values[0].tensor.shape()
                             : !ids.empty()  ? &ids[0].tensor.shape()
                                             : nullptr;
        if (decoded.error.empty() && first != nullptr && decoded.input.shape() != *first) {
          std::ostringstream why;
          why << item->path << ": gives " << decoded.input.shape() << " but the batch's first file gives "
              << *first;
          decoded.error = why.str();
        }
        if (!decoded.error.empty()) {
          if (batch.fail_fast) throw ValueError(bindery::concat(decoded.error, " (--fail-fast)"));
          errors.push_back({item->path, decoded.error});
          ++new_errors;
          if (bar) bar->message(bindery::concat("error: ", decoded.error));
        } else {
          members.push_back(item);
          if (decoded.input.is_ids())
            ids.push_back({item->path, decoded.input.ids});
          else
            values.push_back({item->path, decoded.input.values.value()});
          if (static_cast<int64_t>(members.size()) >= batch.batch) flush();
        }
        if (bar) bar->update(static_cast<int64_t>(next_job), {}, 1);
      }
      flush();
      // Write the shard: embeddings, paths, then the record that marks it complete (all atomic).
      nlohmann::json record = {{"key", keys[static_cast<size_t>(shard - shards.data())]},
                               {"rows", static_cast<int64_t>(rows.size()) / std::max<int64_t>(width, 1)},
                               {"errors", errors}};
      if (!rows.empty()) {
        const int64_t n = static_cast<int64_t>(rows.size()) / width;
        const std::string npy = (out / (shard->name + ".npy")).string(),
                          txt = (out / (shard->name + ".txt")).string();
        io::write_npy(npy, Tensor<T>::from_vector(rows, Shape({n, width})));
        write_text_atomically(txt, paths);
        record["npy_bytes"] = file_size_or(npy, -1);
        record["txt_bytes"] = file_size_or(txt, -1);
      }
      write_text_atomically((out / (shard->name + ".json")).string(), record.dump(1) + "\n");
      records[static_cast<size_t>(shard - shards.data())] = record;
      if (bar)
        bar->message(bindery::concat("wrote ", shard->name, ": ", record["rows"].get<int64_t>(), " rows, ",
                                     errors.size(), " errors"));
    }
    if (bar) bar->finish();
    embed_seconds = seconds_since(pipeline_start);
  }

  // The manifest and the errors of every shard (reused ones included).
  nlohmann::json manifest = {{"files", items.size()}, {"shards", nlohmann::json::array()}};
  std::string error_lines;
  int64_t errors_total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    const nlohmann::json& errors = records[s]["errors"];
    manifest["shards"].push_back({{"name", shards[s].name},
                                  {"modality", std::string(shards[s].modality.name())},
                                  {"files", shards[s].items.size()},
                                  {"rows", records[s]["rows"]},
                                  {"errors", errors.size()}});
    for (const auto& e : errors)
      error_lines += e[0].get<std::string>() + "\t" + e[1].get<std::string>() + "\n";
    errors_total += static_cast<int64_t>(errors.size());
  }
  manifest["errors"] = errors_total;
  write_text_atomically((out / "manifest.json").string(), manifest.dump(1) + "\n");
  write_text_atomically((out / "errors.txt").string(), error_lines);
  write_text_atomically((out / "warnings.txt").string(), warnings);
  const int64_t done = static_cast<int64_t>(jobs.size());
  std::printf(
      "embedded %lld files (%lld reused from %zu complete shards) in %.2f s: %.1f files/s, %lld errors "
      "(%lld new; see %s), %lld preprocessing warnings, %.2f s total\n",
      static_cast<long long>(done), static_cast<long long>(skipped_files), shards.size() - pending.size(),
      embed_seconds, embed_seconds > 0 ? static_cast<double>(done) / embed_seconds : 0.0,
      static_cast<long long>(errors_total), static_cast<long long>(new_errors),
      (out / "errors.txt").string().c_str(), static_cast<long long>(warning_count), seconds_since(start));
  if (done > 0)  // where the time went: the model's forward passes vs waiting for decoded files
    std::printf(
        "time: %.2f s in forward passes, %.2f s waiting for the %d decode thread(s), %.2f s batching and "
        "writing\n",
        model_seconds, wait_seconds,
        batch.decode_threads > 0 ? batch.decode_threads
                                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
        embed_seconds - model_seconds - wait_seconds);
  return 0;
}

/// `convert IN OUT [--dtype bf16|int8 --config C]`: fp32 copies the .pth's tensors as they are
/// (io::pth_to_safetensors, any state dict); bf16 / int8 loads the checkpoint (.pth or safetensors)
/// into the config's model converting each weight as it is read, and writes the bf16 / int8 file
/// (nn::save_lowp_safetensors; docs/models.md has the format).
int run_convert(const std::string& in, const std::string& out, const std::string& dtype,
                const std::string& config_name) {
  const auto start = std::chrono::steady_clock::now();
  const nn::WeightPrecision precision = nn::parse_weight_precision(dtype);
  if (precision != nn::WeightPrecision::kFloat32) {
    const auto model =
        ib::ImageBindModel<float>::from_checkpoint(in, config_named(config_name), {}, precision);
    model->save(out);
    std::printf("converted %s to %s weights in %s (%.1f MB) in %.2f s\n", in.c_str(), dtype.c_str(),
                out.c_str(), static_cast<double>(std::filesystem::file_size(out)) / 1e6,
                seconds_since(start));
    return 0;
  }
  io::pth_to_safetensors(in, out);
  const io::SafetensorsFile written = io::SafetensorsFile::open(out);
  std::printf("converted %zu tensors to %s (%.1f MB) in %.2f s\n", written.tensors().size(), out.c_str(),
              static_cast<double>(std::filesystem::file_size(out)) / 1e6, seconds_since(start));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  EmbedOptions options;
  std::string convert_in, convert_out;
  CLI::App app{
      "bindery-embed: ImageBind embeddings of raw files or preprocessed .npy inputs, and "
      ".pth -> safetensors"};
  app.footer(
      "Each modality takes several values (a batch, in order), each decided on its own: raw files, or\n"
      ".npy arrays preprocessed as examples/preprocess writes them. Depth and IMU .npy: exactly\n"
      "(N, *model input shape) is preprocessed, any other shape raw. --text: X.npy are token ids,\n"
      "anything else a string. The shapes above are huge's; other configs use their own.\n"
      "examples:\n"
      "  bindery-embed --weights imagebind_huge.pth --image dog.jpg car.jpg --text \"a dog\" \"a car\"\n"
      "                --audio dog.wav --out emb/\n"
      "  bindery-embed --weights imagebind_huge.pth --vision images.npy --text ids.npy --out emb/\n"
      "  bindery-embed --weights imagebind_huge.pth --input-dir inputs/ --batch 64 --out emb/\n"
      "  bindery-embed convert imagebind_huge.pth imagebind_huge.safetensors\n");
  app.add_option("--weights", options.weights, "checkpoint: .pth (torch.save) or .safetensors");
  app.add_option("--config", options.config, "model: huge, tiny, or a config .json")->capture_default_str();
  const std::array<const char*, ib::kModalities.size()> help = {
      "images (PNG/JPEG), video files (.mp4, .mkv, ...; FFmpeg builds) or frame folders (video, needs "
      "--fps), or preprocessed (N, 3, 224, 224) or "
      "(N, V, 3, 2, 224, 224) .npy",
      "strings, or int64 token ids (N, 77) .npy",
      "WAV files, or preprocessed (N, 1, 128, 204) or (N, 3, 1, 128, 204) .npy",
      "16-bit PNG depth (mm) or raw .npy depth maps, or preprocessed (N, 1, 224, 224) .npy",
      "gray images, or preprocessed (N, 1, 224, 224) .npy",
      "CSV or raw (6, T)/(T, 6) .npy recordings, or preprocessed (N, 6, 2000) .npy",
  };
  std::array<std::vector<std::string>, ib::kModalities.size()> values;
  for (size_t i = 0; i < ib::kModalities.size(); ++i) {
    const ib::Modality m = ib::kModalities[i];
    const std::string names =
        m == ib::Modality::kVision ? "--vision,--image,--video" : std::string("--") + ib::modality_name(m);
    app.add_option(names, values[i], help[i]);
  }
  std::vector<std::string> named_inputs;
  app.add_option("--input", named_inputs,
                 "NAME=VALUE: an input of modality NAME (any modality of the config, including your own; "
                 "repeat for a batch): built-in ones as their options, your own as preprocessed .npy");
  app.add_option("--bpe", options.bpe, "text: CLIP BPE merges (bpe_simple_vocab_16e6.txt.gz)")
      ->capture_default_str();
  app.add_option("--fps", options.fps, "video: frame rate of the frame folders (video files carry their own)")
      ->check(CLI::PositiveNumber);
  app.add_option("--out", options.out, "folder for <modality>.npy embeddings (created if needed)");
  app.add_option("--threads", options.threads, "CPU threads (default: every core)")
      ->check(CLI::PositiveNumber);
  app.add_option("--dtype", options.dtype, "compute type")
      ->check(CLI::IsMember({"float", "double"}))
      ->capture_default_str();
  app.add_option("--precision", options.precision,
                 "weights of the Linear layers and attention projections, converted at load: fp32, bf16 "
                 "or int8 (inference kernels; layer norms, softmax, residuals stay fp32)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
      ->capture_default_str();
  BatchOptions batch;
  bool no_progress = false;
  app.add_option(
      "--input-dir", batch.dirs,
      "batch mode: embed every file under DIR (recursively); modality by extension: .png/.jpg/.jpeg "
      "and video files vision, .wav audio, .txt text (one caption per file), .csv IMU; others ignored");
  app.add_option(
      "--input-list", batch.lists,
      "batch mode: a file of inputs, one per line: PATH (modality by extension) or MODALITY<TAB>PATH");
  app.add_option("--modality", batch.modality,
                 "batch mode: the modality of every input without a MODALITY<TAB> (e.g. depth, thermal)");
  app.add_option("--batch", batch.batch, "batch mode: samples per forward pass")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--shard-size", batch.shard_size, "batch mode: inputs per output shard (per modality)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option(
         "--decode-threads", batch.decode_threads,
         "batch mode: threads reading and preprocessing files ahead of the model (default: every core)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--fail-fast", batch.fail_fast,
               "batch mode: stop at the first file that fails (default: skip it)");
  app.add_flag("--no-progress", no_progress, "batch mode: no progress bar on stderr");
  CLI::App* convert = app.add_subcommand("convert", "convert a .pth state_dict to .safetensors, streaming");
  std::string convert_dtype = "fp32", convert_config = "huge";
  convert->add_option("input", convert_in, "torch.save .pth file (or .safetensors with --dtype bf16|int8)")
      ->required()
      ->check(CLI::ExistingFile);
  convert->add_option("output", convert_out, ".safetensors file to write")->required();
  convert
      ->add_option("--dtype", convert_dtype,
                   "fp32: the tensors as they are; bf16 or int8: Linear and attention weights converted "
                   "(needs the model: --config)")
      ->check(CLI::IsMember({"fp32", "bf16", "int8"}))
      ->capture_default_str();
  convert
      ->add_option("--config", convert_config,
                   "model of the checkpoint, for --dtype bf16|int8: huge, tiny or a .json")
      ->capture_default_str();
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
    if (!convert->parsed()) {
      if (options.weights.empty()) throw CLI::RequiredError("--weights");
      if (options.out.empty()) throw CLI::RequiredError("--out");
      for (size_t i = 0; i < values.size(); ++i) {
        if (!values[i].empty()) options.inputs[ib::kModalities[i]] = values[i];
      }
      for (const std::string& named : named_inputs) {
        const size_t eq = named.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == named.size())
          throw CLI::ValidationError("--input", "expected NAME=VALUE, got '" + named + "'");
        const std::string name = named.substr(0, eq);
        if (!ib::Modality::is_valid_name(name))
          throw CLI::ValidationError("--input", "'" + name + "' is not a modality name (a-z, 0-9, _)");
        options.inputs[ib::Modality(name)].push_back(named.substr(eq + 1));
      }
      batch.progress = !no_progress;
      const bool batch_mode = !batch.dirs.empty() || !batch.lists.empty();
      if (batch_mode && !options.inputs.empty())
        throw CLI::ValidationError("inputs",
                                   "--input-dir / --input-list do not mix with the modality options");
      if (!batch.modality.empty() && !ib::Modality::is_valid_name(batch.modality))
        throw CLI::ValidationError("--modality",
                                   "'" + batch.modality + "' is not a modality name (a-z, 0-9, _)");
      if (batch_mode) {
        Cpu::set_num_threads(options.threads > 0
                                 ? options.threads
                                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
        try {
          return options.dtype == "double" ? run_batch<double>(options, batch)
                                           : run_batch<float>(options, batch);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "bindery-embed: %s\n", e.what());
          return 2;
        }
      }
      if (options.inputs.empty())
        throw CLI::ValidationError(
            "inputs",
            "give at least one of --vision (--image, --video), --text, --audio, --depth, --thermal, --imu, "
            "--input NAME=VALUE, or --input-dir / --input-list");
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    Cpu::set_num_threads(options.threads > 0
                             ? options.threads
                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    if (convert->parsed()) return run_convert(convert_in, convert_out, convert_dtype, convert_config);
    return options.dtype == "double" ? run_embed<double>(options) : run_embed<float>(options);
  } catch (const Error& e) {
    std::fprintf(stderr, "bindery-embed: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // e.g. std::filesystem errors creating --out
    std::fprintf(stderr, "bindery-embed: %s\n", e.what());
    return 2;
  }
}
