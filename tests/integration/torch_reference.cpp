#include "torch_reference.hpp"

#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <stdexcept>

namespace kubeaccel::testing {

struct TorchReference::Impl {
  torch::jit::Module module;
};

TorchReference::TorchReference(const std::string& modelPt) : impl_(std::make_unique<Impl>()) {
  impl_->module = torch::jit::load(modelPt);
  impl_->module.eval();
}

TorchReference::~TorchReference() = default;

std::vector<FloatTensor> TorchReference::run(const std::vector<FloatTensor>& inputs,
                                             const std::vector<std::string>& outputNames) {
  c10::InferenceMode guard;
  std::vector<c10::IValue> in;
  for (const auto& t : inputs)
    in.push_back(torch::from_blob(const_cast<float*>(t.data.data()), t.shape, torch::kFloat).clone());
  c10::IValue v = impl_->module.forward(in);
  std::vector<at::Tensor> outs;
  if (v.isTensor()) {
    outs.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) outs.push_back(e.toTensor());
  } else if (v.isGenericDict()) {
    auto d = v.toGenericDict();
    for (const auto& n : outputNames) outs.push_back(d.at(c10::IValue(n)).toTensor());
  } else {
    throw std::runtime_error("unexpected output kind " + v.tagKind());
  }
  std::vector<FloatTensor> result;
  for (auto& t : outs) {
    at::Tensor c = t.to(torch::kFloat).contiguous();
    FloatTensor f;
    f.shape.assign(c.sizes().begin(), c.sizes().end());
    f.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    result.push_back(std::move(f));
  }
  return result;
}

}  // namespace kubeaccel::testing
