// examples/common/digits_run.hpp — the digits ImageBind that 02_imagebind_digits trained, loaded from
// its output folder (model.safetensors + config.json + vocab.txt), and its text class prototypes.
// Shared by the applications that reuse that joint space (07_few_shot, 08_detection).
#pragma once

#include <bindery/bindery.hpp>
#include <bindery/eval/zero_shot.hpp>
#include <bindery/models/imagebind/model.hpp>

#include <memory>
#include <string>
#include <vector>

#include "../02_imagebind_digits/vocab.hpp"

namespace digits_run {

namespace ib = bindery::models::imagebind;

inline const std::vector<std::string> kClassNames = {"zero", "one", "two",   "three", "four",
                                                     "five", "six", "seven", "eight", "nine"};
/// 02's zero-shot prompt ensemble (recipe.hpp kPromptTemplates): prototypes are built exactly as there.
inline const std::vector<std::string> kPromptTemplates = {
    "a handwritten {}", "the digit {}", "someone writes a {}", "a {} written by hand", "the number {}"};

/// A frozen digits model: the text encoder and the asked modalities' encoders, no gradients.
struct DigitsRun {
  ib::ImageBindConfig config;
  std::shared_ptr<ib::ImageBindModel<float, bindery::Cpu>> model;
  digits::WordVocab vocab;
  int64_t context = 0;  // the text encoder's token count
};

/// Loads `dir` (02's --out): the text encoder plus `modalities`' encoders, frozen, in eval mode.
inline DigitsRun load_digits_run(const std::string& dir, const std::vector<ib::Modality>& modalities) {
  DigitsRun run;
  run.config = ib::load_config(dir + "/config.json");
  std::vector<ib::Modality> load = {ib::Modality::kText};
  load.insert(load.end(), modalities.begin(), modalities.end());
  run.model =
      ib::ImageBindModel<float, bindery::Cpu>::from_checkpoint(dir + "/model.safetensors", run.config, load);
  run.model->set_requires_grad(false);
  run.vocab = digits::WordVocab::load(dir + "/vocab.txt");
  run.context = run.config.at(ib::Modality::kText).context_length();
  return run;
}

/// The ten class prototypes (10, out_dim): per class the normalized mean of the normalized text
/// embeddings of the prompt ensemble (eval::prompt_prototypes). Call under NoGrad.
inline bindery::eval::Matrix text_prototypes(const DigitsRun& run) {
  return bindery::eval::prompt_prototypes(
      [&](const std::vector<std::string>& p) {
        return bindery::eval::normalize_rows(bindery::eval::to_matrix(
            run.model->encode(ib::Modality::kText, run.vocab.encode(p, run.context)).value()));
      },
      kClassNames, kPromptTemplates);
}

}  // namespace digits_run
