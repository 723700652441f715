// The README's usage example, built against the INSTALLED package (find_package(bindery)) and run
// by CTest: two towers bound with symmetric InfoNCE. Exit code 0 when the loss fell by half.
#include <bindery/bindery.hpp>

#include <cstdio>

int main() {
  using namespace bindery;
  Philox rng(7);
  const Var<float> images(Tensor<float>::normal({16, 64}, rng));       // 16 paired samples
  const Var<float> sounds(ops::tanh(images).value().slice(1, 0, 40));  // a second "sensor" of each
  // No seeds: each layer takes the next seed of the thread's sequence (nn/seed.hpp), so the two
  // towers differ and every run gets the same weights. {.seed = 7} would pin one.
  nn::Linear<float> image_tower(64, 32), audio_tower(40, 32);
  loss::InfoNCE<float> info_nce;  // symmetric, learnable logit scale clamped at 100
  std::vector<Var<float>> params = image_tower.parameters();
  for (const auto& p : audio_tower.parameters()) params.push_back(p);
  optim::AdamW<float> adamw(params, {.lr = 1e-2});
  double first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    auto out = info_nce.forward(image_tower.forward(images), audio_tower.forward(sounds));
    adamw.zero_grad();
    out.loss.backward();
    adamw.step();
    (step == 0 ? first : last) = out.loss.item();
  }
  std::printf("InfoNCE loss %.4f -> %.4f\n", first, last);
  return last < 0.5 * first ? 0 : 1;
}
