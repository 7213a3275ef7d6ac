#pragma once
// The models a device serves, from <models>/<name>/<version>/<model file> (the
// backend's: model.onnx, model.pt, ...) and an
// optional <models>/<name>/config.json. The newest version is served. A model
// that cannot load is UNAVAILABLE with its reason; the others keep serving.

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "repository/model_statistics.hpp"

namespace kubeaccel::agent {

struct ServedModel {
  std::string name;
  int version = 0;
  ModelConfig config;
  std::shared_ptr<const LoadedModel> loaded;
  std::shared_ptr<ModelStatistics> stats;
  bool batched() const { return config.maxBatchSize > 0; }
};

struct ModelIndexEntry {
  std::string name;
  int version = 0;     // 0: none found
  std::string state;   // READY, LOADING, UNAVAILABLE
  std::string reason;  // why UNAVAILABLE
};

class ModelRepository {
 public:
  // `backend` may be null: every model is then UNAVAILABLE for `unavailableReason`.
  ModelRepository(std::string modelsDir, Backend* backend, std::string unavailableReason);

  // A model name is a folder name of 1 to 255 bytes of [A-Za-z0-9._-], not
  // starting with '.'. load() refuses (and loadAll() skips) any other name.
  static bool validName(const std::string& name);
  // The rule, as a refusal of `name` (quoted, non-printable bytes escaped).
  static std::string nameRule(const std::string& name);

  // Loads every model in the directory (at start).
  void loadAll();
  // (Re)loads one model from disk. NOT_FOUND: no such folder; the model's state
  // says the rest. Returns the index entry after the attempt.
  ModelIndexEntry load(const std::string& name);
  // Stops serving a model (requests already queued finish). false: not known.
  bool unload(const std::string& name);

  std::vector<ModelIndexEntry> index() const;
  // True while at least one model has a version served (READY, or LOADING
  // over a version still served): the repository can serve inference.
  bool anyServed() const;
  // Called (outside the repository's lock, from the thread that loaded or
  // unloaded) after every load() or unload(); empty: nobody. Set it before
  // the repository is shared, or clear it before its listener goes away.
  void onChange(std::function<void()> listener);
  // The ready model, or null with its index entry (state and reason) in `why`.
  std::shared_ptr<const ServedModel> find(const std::string& name, ModelIndexEntry* why) const;
  std::shared_ptr<ModelStatistics> statistics(const std::string& name) const;

 private:
  struct Entry {
    ModelIndexEntry index;
    std::shared_ptr<const ServedModel> served;
    std::shared_ptr<ModelStatistics> stats = std::make_shared<ModelStatistics>();
  };

  std::string dir_;
  Backend* backend_;
  std::string unavailableReason_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> models_;
  std::function<void()> onChange_;  // guarded by mu_; called without it
  void changed();
};

}  // namespace kubeaccel::agent
