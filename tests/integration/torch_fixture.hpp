#pragma once
// The agent on the simulated NCS2 with the torch backend, over a copy of the
// generated TorchScript repository (model files linked, configs copied, so a
// test may change or break a model without touching the build's).
#include "agent_fixture.hpp"
#include "torch_reference.hpp"

namespace kubeaccel::testing {

// |got - want| within 1e-5 of max(1, |want|) everywhere: the same engine on the
// same file, where only a batch's kernel choice may move the last bits.
inline ::testing::AssertionResult closeTo(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= 1e-5f * std::max(1.f, std::fabs(want[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << " vs " << want[i];
  return ::testing::AssertionSuccess();
}

class TorchAgentTest : public AgentTest {
 protected:
  std::string torchModels() const { return h.root() + "/models-torch"; }
  std::string torchFile(const std::string& name) const { return torchModels() + "/" + name + "/1/model.pt"; }

  // Copies the named models' configs and links their files.
  void prepare(const std::vector<std::string>& names) {
    for (const auto& n : names) {
      fs::create_directories(torchModels() + "/" + n + "/1");
      fs::copy_file(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/" + n + "/config.json",
                    torchModels() + "/" + n + "/config.json", fs::copy_options::overwrite_existing);
      fs::create_symlink(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/" + n + "/1/model.pt", torchFile(n));
    }
  }
  void startTorch(std::vector<std::string> extraArgs = {}) {
    extraArgs.insert(extraArgs.begin(), {"--models", torchModels()});
    startAgent(extraArgs, "torch");
  }
};

}  // namespace kubeaccel::testing
