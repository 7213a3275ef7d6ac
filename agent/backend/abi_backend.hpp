#pragma once
// Backend, LoadedModel and ModelRunner over a backend library's C function
// table (kubeaccel_backend.h). Checks what the library hands back (output
// datatypes, shapes and byte counts) so that a faulty backend fails a
// request rather than the agent.

#include <memory>
#include <string>

#include "backend/backend.hpp"
#include "backend/kubeaccel_backend.h"

namespace kubeaccel::agent {

class AbiBackend final : public Backend, private HostMemoryPinner {
 public:
  // `table` from openBackendLibrary (lives as long as the process).
  // `pciBusId`: the served device's PCI address, "" when it has none.
  AbiBackend(const kab_backend* table, std::string pciBusId) : table_(table), pciBusId_(std::move(pciBusId)) {}
  std::string name() const override { return table_->name; }
  std::string platform() const override { return table_->platform ? table_->platform : ""; }
  std::vector<std::string> modelFiles() const override;
  std::unique_ptr<LoadedModel> load(const std::string& versionDir, const std::string& configJson,
                                    const ModelConfig& config) override;
  HostMemoryPinner* hostMemoryPinner() override;

 private:
  std::string pin(void* ptr, size_t bytes, bool* unavailable) override;
  void unpin(void* ptr) override;

  const kab_backend* table_;
  std::string pciBusId_;
};

}  // namespace kubeaccel::agent
