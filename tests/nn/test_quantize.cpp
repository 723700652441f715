#include "test_util.hpp"

#include <bindery/nn/mlp.hpp>
#include <bindery/nn/lowp_io.hpp>
#include <bindery/nn/quantize.hpp>
#include <bindery/nn/sequential.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <string>

using namespace bindery;

namespace {

/// |frozen Linear − fp64 x·Wᵀ + b| per element against the error the precision allows: fp32 only
/// sums in fp32 (the packed kernel); bf16 rounds both operands (relative 2⁻⁹ each) before exact products and
/// fp32 sums; int8 is bounded by Σ(|a|·s_w/2 + |w|·s_a/2 + s_a·s_w/4) (backend/cpu_gemm_lowp.hpp), plus fp32
/// sums.
void check_linear_bound(nn::WeightPrecision precision, const Shape& x_shape) {
  const int64_t in = 67, out = 37;
  nn::Linear<float> layer(in, out, {.bias = true, .seed = 11});
  const Tensor<float> w = layer.weight().value().clone();
  const Tensor<float> b = layer.bias().value().clone();
  Philox rng(5);
  const Tensor<float> x = Tensor<float>::normal(x_shape, rng);
  layer.freeze(precision);
  REQUIRE(layer.precision() == precision);
  REQUIRE(layer.lowp_weight() != nullptr);
  REQUIRE(layer.weight().shape() == Shape{0, in});  // the (out, in) weight is gone
  const Tensor<float> y = layer.forward(Var<float>(x)).value().contiguous();
  std::vector<int64_t> y_dims(x_shape.begin(), x_shape.end() - 1);
  y_dims.push_back(out);
  REQUIRE(y.shape() == Shape(y_dims));
  const Tensor<float> xc = x.contiguous();
  const int64_t rows = x.numel() / in;
  int checked = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float* a = xc.data() + i * in;
    double a_max = 0;
    for (int64_t p = 0; p < in; ++p) a_max = std::max(a_max, std::fabs(double(a[p])));
    for (int64_t j = 0; j < out; ++j) {
      const float* wr = w.data() + j * in;
      double w_max = 0, exact = b.data()[j], abs_sum = 0, bound = 0;
      for (int64_t p = 0; p < in; ++p) w_max = std::max(w_max, std::fabs(double(wr[p])));
      const double s_a = a_max / 127, s_w = w_max / 127;
      for (int64_t p = 0; p < in; ++p) {
        exact += double(a[p]) * wr[p];
        abs_sum += std::fabs(double(a[p]) * wr[p]);
        if (precision == nn::WeightPrecision::kBFloat16)
          bound += std::fabs(double(a[p]) * wr[p]) * (2.0 / 512 + 1.0 / (512.0 * 512.0));
        if (precision == nn::WeightPrecision::kInt8)
          bound += std::fabs(double(a[p])) * s_w / 2 + std::fabs(double(wr[p])) * s_a / 2 + s_a * s_w / 4;
      }
      bound += 2.0 * (in + 2) * std::ldexp(1.0, -24) * (abs_sum + bound) + 1e-6;
      const double got = y.data()[i * out + j];
      INFO("row " << i << " col " << j << ": " << got << " vs " << exact << ", bound " << bound);
      REQUIRE(std::fabs(got - exact) <= bound);
      ++checked;
    }
  }
  REQUIRE(checked == rows * out);
}

}  // namespace

TEST_CASE("Linear::freeze fp32, bf16 and int8 stay within the kernels' error bounds, bias included",
          "[nn][quantize]") {
  for (auto precision :
       {nn::WeightPrecision::kFloat32, nn::WeightPrecision::kBFloat16, nn::WeightPrecision::kInt8}) {
    INFO(nn::to_string(precision));
    check_linear_bound(precision, Shape{13, 67});
    check_linear_bound(precision, Shape{2, 5, 67});  // leading axes flattened into rows
  }
}

TEST_CASE("Linear::forward_gelu: frozen, GELU in the kernel gives the bits of ops::gelu after forward",
          "[nn][quantize]") {
  Philox rng(8);
  const Tensor<float> x = Tensor<float>::normal(Shape{3, 9, 40}, rng);
  for (auto precision :
       {nn::WeightPrecision::kFloat32, nn::WeightPrecision::kBFloat16, nn::WeightPrecision::kInt8}) {
    INFO(nn::to_string(precision));
    nn::Linear<float> layer(40, 70, {.seed = 4});
    // trainable: the composite, gradients included (the weight gets one through GELU)
    const Var<float> trainable = layer.forward_gelu(Var<float>(x));
    REQUIRE(trainable.requires_grad());
    ops::sum(trainable).backward();
    REQUIRE(layer.weight().has_grad());
    const Tensor<float> composite = ops::gelu(layer.forward(Var<float>(x))).value().contiguous();
    REQUIRE(std::memcmp(trainable.value().contiguous().data(), composite.data(),
                        size_t(composite.numel()) * 4) == 0);
    layer.freeze(precision);
    const Tensor<float> fused = layer.forward_gelu(Var<float>(x)).value().contiguous();
    const Tensor<float> apart = ops::gelu(layer.forward(Var<float>(x))).value().contiguous();
    REQUIRE(fused.shape() == Shape{3, 9, 70});
    REQUIRE(std::memcmp(fused.data(), apart.data(), size_t(apart.numel()) * 4) == 0);
    REQUIRE_THROWS_AS(layer.forward_gelu(Var<float>(Tensor<float>::zeros(Shape{3, 41}))), ShapeError);
  }
  // an Mlp with a frozen fc1 takes the fused path: the same output as fc1, GELU and fc2 one by one
  nn::Mlp<float> mlp(40, 96, 24, {.seed = 6});
  mlp.eval();
  nn::freeze(mlp, nn::WeightPrecision::kBFloat16);
  const Var<float> input(x);
  const Tensor<float> whole = mlp.forward(input).value().contiguous();
  const Tensor<float> steps = mlp.fc2().forward(ops::gelu(mlp.fc1().forward(input))).value().contiguous();
  REQUIRE(std::memcmp(whole.data(), steps.data(), size_t(steps.numel()) * 4) == 0);
}

TEST_CASE("Linear::quantize: fp32 is a no-op; errors are clear", "[nn][quantize]") {
  nn::Linear<float> layer(8, 4, {.seed = 3});
  layer.quantize(nn::WeightPrecision::kFloat32);
  REQUIRE(layer.precision() == nn::WeightPrecision::kFloat32);
  REQUIRE(layer.weight().shape() == Shape{4, 8});
  REQUIRE(layer.weight_bytes() == 4 * 8 * sizeof(float));

  layer.quantize(nn::WeightPrecision::kInt8);
  REQUIRE(layer.weight_bytes() == 16 * 8 + 16 * (4 + 4));  // rows padded to 16: bytes, scales, sums
  REQUIRE_THROWS_AS(layer.quantize(nn::WeightPrecision::kBFloat16), ValueError);  // already int8
  // No backward: an input that needs a gradient is refused, under NoGrad it runs.
  Philox rng(1);
  Var<float> x(Tensor<float>::normal(Shape{3, 8}, rng), true);
  REQUIRE_THROWS_AS(layer.forward(x), ValueError);
  {
    NoGrad guard;
    REQUIRE(layer.forward(x).shape() == Shape{3, 4});
  }
  REQUIRE_THROWS_AS(layer.forward(Var<float>(Tensor<float>::zeros(Shape{3, 7}))), ShapeError);
  // Loading an fp32 state dict into the quantized layer fails on the weight's shape.
  nn::Linear<float> fresh(8, 4, {.seed = 3});
  REQUIRE_THROWS_AS(layer.load_state_dict(fresh.state_dict()), nn::StateDictError);

  nn::Linear<double> wide(8, 4, {.seed = 3});
  REQUIRE_THROWS_AS(wide.quantize(nn::WeightPrecision::kBFloat16), ValueError);
  REQUIRE_THROWS_AS(wide.freeze(nn::WeightPrecision::kFloat32), ValueError);  // packed fp32: float only
  nn::Linear<float> packed(8, 4, {.seed = 3});
  packed.freeze(nn::WeightPrecision::kFloat32);
  REQUIRE(packed.precision() == nn::WeightPrecision::kFloat32);
  REQUIRE(packed.weight_bytes() == 16 * 8 * sizeof(float));                     // rows padded to 16
  REQUIRE_THROWS_AS(packed.freeze(nn::WeightPrecision::kFloat32), ValueError);  // already frozen
  REQUIRE_THROWS_AS(packed.quantize(nn::WeightPrecision::kInt8), ValueError);
  REQUIRE_THROWS_AS(packed.forward(x), ValueError);  // x needs a gradient
  REQUIRE(nn::parse_weight_precision("bf16") == nn::WeightPrecision::kBFloat16);
  REQUIRE(nn::parse_weight_precision("int8") == nn::WeightPrecision::kInt8);
  REQUIRE(nn::parse_weight_precision("fp32") == nn::WeightPrecision::kFloat32);
  REQUIRE_THROWS_AS(nn::parse_weight_precision("fp16"), ValueError);
}

TEST_CASE("MultiheadAttention::freeze: self- and cross-attention stay close to fp32", "[nn][quantize]") {
  const int64_t d = 48;
  Philox rng(9);
  const Tensor<float> x = Tensor<float>::normal(Shape{2, 7, d}, rng);
  const Tensor<float> kv = Tensor<float>::normal(Shape{2, 5, d}, rng);
  NoGrad guard;
  for (const bool bias_kv : {false, true}) {  // with add_bias_kv the bf16 kernel packs the tokens itself
    INFO("add_bias_kv " << bias_kv);
    nn::MultiheadAttention<float> reference(d, 4, true, bias_kv, 0.0, 21);
    reference.eval();
    const Tensor<float> self_ref = reference.forward(Var<float>(x)).value();
    const Tensor<float> cross_ref = reference.forward(Var<float>(x), Var<float>(kv), Var<float>(kv)).value();
    for (auto [precision, tolerance] :
         {std::pair{nn::WeightPrecision::kFloat32, 1e-5}, std::pair{nn::WeightPrecision::kBFloat16, 0.01},
          std::pair{nn::WeightPrecision::kInt8, 0.03}}) {
      INFO(nn::to_string(precision));
      nn::MultiheadAttention<float> mha(d, 4, true, bias_kv, 0.0, 21);
      mha.eval();
      mha.freeze(precision);
      REQUIRE(mha.precision() == precision);
      REQUIRE(mha.out_proj().precision() == precision);
      // the (out, in) weights are gone: forward can only run the frozen weights
      REQUIRE(mha.in_proj_weight().numel() == 0);
      REQUIRE(mha.out_proj().weight().numel() == 0);
      const Tensor<float> self_q = mha.forward(Var<float>(x)).value();
      const Tensor<float> cross_q = mha.forward(Var<float>(x), Var<float>(kv), Var<float>(kv)).value();
      for (auto [got, want] : {std::pair{self_q, self_ref}, std::pair{cross_q, cross_ref}}) {
        REQUIRE(got.shape() == want.shape());
        double max_err = 0, max_ref = 0;
        const Tensor<float> g = got.contiguous(), r = want.contiguous();
        for (int64_t i = 0; i < g.numel(); ++i) {
          max_err = std::max(max_err, std::fabs(double(g.data()[i]) - r.data()[i]));
          max_ref = std::max(max_ref, std::fabs(double(r.data()[i])));
        }
        INFO("max error " << max_err << " of max " << max_ref);
        if (precision != nn::WeightPrecision::kFloat32) REQUIRE(max_err > 0.0);  // the low-precision path ran
        REQUIRE(max_err <= tolerance * max_ref);
      }
    }
  }
}

TEST_CASE("nn::quantize converts every Linear and attention projection of a tree", "[nn][quantize]") {
  auto make = [] {
    auto root = std::make_shared<nn::Sequential<nn::MultiheadAttention<float>, nn::Mlp<float>>>(
        std::make_shared<nn::MultiheadAttention<float>>(32, 2, true, false, 0.0, 1),
        std::make_shared<nn::Mlp<float>>(32, 64, 32, nn::MlpOptions{.seed = 2}));
    return root;
  };
  auto model = make();
  const nn::QuantizeReport none = nn::quantize(*model, nn::WeightPrecision::kFloat32);
  REQUIRE(none.layers == 0);
  REQUIRE(model->is_training());
  const nn::QuantizeReport report = nn::quantize(*model, nn::WeightPrecision::kBFloat16);
  REQUIRE(report.layers == 3);  // attention (in + out projections), fc1, fc2
  REQUIRE(report.weights == 3 * 32 * 32 + 32 * 32 + 2 * 32 * 64);
  REQUIRE(report.bytes == report.weights * 2);
  REQUIRE_FALSE(model->is_training());
  for (const auto& [name, p] : model->named_parameters()) REQUIRE_FALSE(p.requires_grad());
  REQUIRE_THROWS_AS(nn::quantize(*model, nn::WeightPrecision::kInt8), ValueError);
}

TEST_CASE(
    "nn::freeze at fp32 packs every weight of a tree: same outputs within fp32 rounding, saved unpacked",
    "[nn][quantize]") {
  auto make = [] {
    return std::make_shared<nn::Sequential<nn::MultiheadAttention<float>, nn::Mlp<float>>>(
        std::make_shared<nn::MultiheadAttention<float>>(32, 2, true, false, 0.0, 1),
        std::make_shared<nn::Mlp<float>>(32, 72, 32, nn::MlpOptions{.seed = 2}));
  };
  auto model = make();
  model->eval();
  Philox rng(4);
  const Var<float> x(Tensor<float>::normal(Shape{2, 9, 32}, rng));
  Tensor<float> before;
  {
    NoGrad guard;
    before = model->forward(x).value().contiguous();
  }
  std::map<std::string, Tensor<float>> weights;
  for (const auto& [key, t] : model->state_dict()) weights.emplace(key, t.clone());

  REQUIRE_FALSE(nn::has_frozen_weights(*model));
  const nn::QuantizeReport report = nn::freeze(*model, nn::WeightPrecision::kFloat32);
  REQUIRE(nn::has_frozen_weights(*model));
  REQUIRE(report.layers == 3);  // attention (in + out projections), fc1, fc2
  REQUIRE(report.weights == 3 * 32 * 32 + 32 * 32 + 2 * 32 * 72);
  REQUIRE(report.bytes == (3 * 32 * 32 + 32 * 32 + 80 * 32 + 32 * 72) * 4);  // fc1: 72 rows padded to 80
  REQUIRE_FALSE(model->is_training());
  for (const auto& [name, p] : model->named_parameters()) REQUIRE_FALSE(p.requires_grad());
  REQUIRE_THROWS_AS(nn::freeze(*model, nn::WeightPrecision::kFloat32), ValueError);
  const Tensor<float> after = model->forward(x).value().contiguous();  // x needs no gradient
  REQUIRE(after.shape() == before.shape());
  double max_err = 0, max_ref = 0;
  for (int64_t i = 0; i < after.numel(); ++i) {
    max_err = std::max(max_err, std::fabs(double(after.data()[i]) - before.data()[i]));
    max_ref = std::max(max_ref, std::fabs(double(before.data()[i])));
  }
  INFO("max error " << max_err << " of max " << max_ref);
  REQUIRE(max_err <= 1e-5 * max_ref);

  // Saved, the packed weights come back out as the (out, in) fp32 tensors they were, bit for bit.
  testing::TempDir dir;
  const std::string path = dir.file("frozen.safetensors");
  nn::save_lowp_safetensors(*model, path);
  const io::SafetensorsFile file = io::SafetensorsFile::open(path);
  REQUIRE(file.metadata().count(nn::kLowpMetadataKey) == 0);  // a plain fp32 file
  for (const auto& [key, want] : weights) {
    INFO(key);
    REQUIRE(file.info(key).dtype == io::DType::kF32);
    const Tensor<float> got = file.read<float, Cpu>(key);
    REQUIRE(got.shape() == want.shape());
    REQUIRE(std::memcmp(got.data(), want.data(), static_cast<size_t>(want.numel()) * sizeof(float)) == 0);
  }
}
