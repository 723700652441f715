// examples/embed — bindery-embed: ImageBind embeddings from the command line, and checkpoint
// conversion.
//
//   bindery-embed --weights imagebind_huge.pth --config huge --vision images.npy --text ids.npy
//                 --audio clips.npy --out embeddings/
//   bindery-embed convert imagebind_huge.pth imagebind_huge.safetensors
//
// Inputs are PREPROCESSED arrays, one .npy per modality, as the reference's data.load_and_transform_*
// functions make them: vision (N, 3, 224, 224) or video clips (N, S, 3, 2, 224, 224); text int64
// token ids (N, 77); audio (N, S, 1, 128, 204) or (N, 1, 128, 204); depth and thermal
// (N, 1, 224, 224); IMU (N, 6, 2000). Only the encoders of the modalities given are loaded. Writes
// <out>/<modality>.npy (N, 1024) and prints, for each pair of modalities given, the reference
// README's softmax similarity matrix, e.g. "Vision x Text:" = softmax(vision @ text.T, dim=-1):
// row i says which text matches sample i best.
// `convert` turns a torch.save state_dict into safetensors tensor by tensor (a few MiB of memory,
// whatever the file's size); safetensors then loads with no unpickling at all.
// Exit codes: 0 success, 2 usage errors and every bindery::Error (its message goes to stderr).
#include <bindery/io/convert.hpp>
#include <bindery/io/npy.hpp>
#include <bindery/models/imagebind/imagebind.hpp>
#include <bindery/ops/matmul.hpp>
#include <bindery/ops/softmax.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace bindery;
namespace ib = bindery::models::imagebind;

namespace {

struct EmbedOptions {
  std::string weights, config = "huge", out, dtype = "float";
  std::map<ib::Modality, std::string> inputs;  // modality -> .npy
  int threads = 0;                             // 0: every core
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
  for (const auto& [m, path] : options.inputs) {
    if (m == ib::Modality::kText) {
      inputs.emplace(m, io::read_npy<int64_t>(path));
    } else {
      inputs.emplace(m, io::read_npy<T>(path));
    }
  }
  std::vector<ib::Modality> modalities;
  for (const auto& [m, input] : inputs) modalities.push_back(m);

  auto start = std::chrono::steady_clock::now();
  const auto model = ib::ImageBindModel<T>::from_checkpoint(options.weights, config, modalities);
  std::printf("loaded %zu encoder(s), %.1f M parameters, from %s in %.2f s\n", modalities.size(),
              static_cast<double>(model->num_parameters()) / 1e6, options.weights.c_str(),
              seconds_since(start));

  std::filesystem::create_directories(options.out);
  NoGrad no_grad;
  std::map<ib::Modality, Tensor<T>> embeddings;
  for (const auto& [m, input] : inputs) {
    start = std::chrono::steady_clock::now();
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

int run_convert(const std::string& in, const std::string& out) {
  const auto start = std::chrono::steady_clock::now();
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
  CLI::App app{"bindery-embed: ImageBind embeddings of preprocessed .npy inputs, and .pth -> safetensors"};
  app.footer(
      "examples:\n"
      "  bindery-embed --weights imagebind_huge.pth --vision images.npy --text ids.npy --out emb/\n"
      "  bindery-embed convert imagebind_huge.pth imagebind_huge.safetensors\n");
  app.add_option("--weights", options.weights, "checkpoint: .pth (torch.save) or .safetensors");
  app.add_option("--config", options.config, "model: huge, tiny, or a config .json")->capture_default_str();
  std::array<std::string, ib::kModalities.size()> paths;
  for (size_t i = 0; i < ib::kModalities.size(); ++i) {
    const ib::Modality m = ib::kModalities[i];
    const std::string help = m == ib::Modality::kText
                                 ? "int64 token ids (N, 77), .npy"
                                 : std::string("preprocessed ") + ib::modality_name(m) + " input, .npy";
    app.add_option(std::string("--") + ib::modality_name(m), paths[i], help)->check(CLI::ExistingFile);
  }
  app.add_option("--out", options.out, "folder for <modality>.npy embeddings (created if needed)");
  app.add_option("--threads", options.threads, "CPU threads (default: every core)")
      ->check(CLI::PositiveNumber);
  app.add_option("--dtype", options.dtype, "compute type")
      ->check(CLI::IsMember({"float", "double"}))
      ->capture_default_str();
  CLI::App* convert = app.add_subcommand("convert", "convert a .pth state_dict to .safetensors, streaming");
  convert->add_option("input", convert_in, "torch.save .pth file")->required()->check(CLI::ExistingFile);
  convert->add_option("output", convert_out, ".safetensors file to write")->required();
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
    if (!convert->parsed()) {
      if (options.weights.empty()) throw CLI::RequiredError("--weights");
      if (options.out.empty()) throw CLI::RequiredError("--out");
      for (size_t i = 0; i < paths.size(); ++i) {
        if (!paths[i].empty()) options.inputs[ib::kModalities[i]] = paths[i];
      }
      if (options.inputs.empty())
        throw CLI::ValidationError(
            "inputs", "give at least one of --vision, --text, --audio, --depth, --thermal, --imu");
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    Cpu::set_num_threads(options.threads > 0
                             ? options.threads
                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    if (convert->parsed()) return run_convert(convert_in, convert_out);
    return options.dtype == "double" ? run_embed<double>(options) : run_embed<float>(options);
  } catch (const Error& e) {
    std::fprintf(stderr, "bindery-embed: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // e.g. std::filesystem errors creating --out
    std::fprintf(stderr, "bindery-embed: %s\n", e.what());
    return 2;
  }
}
