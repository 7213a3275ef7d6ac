#include "repository/model_repository.hpp"

#include "util/read_file.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace kubeaccel::agent {
namespace fs = std::filesystem;

namespace {

// The highest positive integer folder holding one of `files`; 0 when none.
int newestVersion(const fs::path& modelDir, const std::vector<std::string>& files) {
  int best = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(modelDir, ec)) {
    std::string name = e.path().filename().string();
    int v = 0;
    auto [ptr, err] = std::from_chars(name.data(), name.data() + name.size(), v);
    if (err != std::errc() || ptr != name.data() + name.size() || v <= 0) continue;
    if (v <= best) continue;
    for (const auto& f : files)
      if (fs::is_regular_file(e.path() / f, ec)) best = v;
  }
  return best;
}

// "model.onnx", "model.pt or model.pt2": what a version folder must hold.
std::string fileList(const std::vector<std::string>& files) {
  std::string out;
  for (size_t i = 0; i < files.size(); ++i) out += (i == 0 ? "" : i + 1 == files.size() ? " or " : ", ") + files[i];
  return out;
}

}  // namespace

bool ModelRepository::validName(const std::string& name) {
  if (name.empty() || name.size() > 255 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string ModelRepository::nameRule(const std::string& name) {
  std::string q;
  for (size_t i = 0; i < name.size() && i < 80; ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      q += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      q += buf;
    }
  }
  if (name.size() > 80) q += "...";
  return "model name '" + q + "': expected 1 to 255 bytes of A-Z, a-z, 0-9, '.', '_', '-', not starting with '.'";
}

ModelRepository::ModelRepository(std::string modelsDir, Backend* backend, std::string unavailableReason)
    : dir_(std::move(modelsDir)), backend_(backend), unavailableReason_(std::move(unavailableReason)) {}

void ModelRepository::loadAll() {
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (e.is_directory()) {
      std::string n = e.path().filename().string();
      if (validName(n))
        names.push_back(n);
      else
        spdlog::warn("model repository {}: skipping folder: {}", dir_, nameRule(n));
    }
  if (ec) spdlog::error("model repository {}: {}", dir_, ec.message());
  std::sort(names.begin(), names.end());
  for (const auto& n : names) load(n);
}

ModelIndexEntry ModelRepository::load(const std::string& name) {
  fs::path modelDir = fs::path(dir_) / name;
  std::error_code ec;
  if (!validName(name) || !fs::is_directory(modelDir, ec))
    return {name, 0, "", "not found"};

  std::shared_ptr<ModelStatistics> stats;
  {
    std::lock_guard lock(mu_);
    Entry& e = models_[name];
    e.index = {name, e.index.version, "LOADING", ""};
    stats = e.stats;
  }
  std::vector<std::string> files = backend_ ? backend_->modelFiles() : std::vector<std::string>{};
  ModelIndexEntry result{name, newestVersion(modelDir, files), "UNAVAILABLE", ""};
  std::shared_ptr<ServedModel> served;
  try {
    if (!backend_) throw std::runtime_error(unavailableReason_);
    if (result.version == 0)
      throw std::runtime_error("no version folder (a positive integer) holding " + fileList(files));
    auto model = std::make_shared<ServedModel>();
    model->name = name;
    model->version = result.version;
    std::string configPath = (modelDir / "config.json").string();
    std::string configJson = "{}";
    if (fs::exists(configPath)) {
      auto text = readFile(configPath);
      if (!text) throw std::runtime_error(configPath + ": cannot read: " + std::strerror(errno));
      model->config = parseModelConfig(*text, configPath);
      // An empty file means the defaults; the backend always gets an object.
      if (text->find_first_not_of(" \t\r\n") != std::string::npos) configJson = std::move(*text);
    }
    fs::path versionDir = modelDir / std::to_string(result.version);
    model->loaded = backend_->load(versionDir.string(), configJson, model->config);
    model->stats = stats;
    std::string info = model->loaded->info();
    spdlog::info("model {} version {} READY on {}{}", name, result.version, backend_->platform(),
                 info.empty() ? "" : " (" + info + ")");
    served = std::move(model);
    result.state = "READY";
  } catch (const std::exception& e) {
    result.reason = e.what();
    spdlog::warn("model {} UNAVAILABLE: {}", name, result.reason);
  }
  {
    std::lock_guard lock(mu_);
    Entry& e = models_[name];
    e.index = result;
    e.served = std::move(served);
  }
  changed();
  return result;
}

bool ModelRepository::unload(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return false;
    it->second.served.reset();
    it->second.index.state = "UNAVAILABLE";
    it->second.index.reason = "unloaded";
  }
  spdlog::info("model {} unloaded", name);
  changed();
  return true;
}

bool ModelRepository::anyServed() const {
  std::lock_guard lock(mu_);
  return std::any_of(models_.begin(), models_.end(), [](const auto& kv) { return kv.second.served != nullptr; });
}

void ModelRepository::onChange(std::function<void()> listener) {
  std::lock_guard lock(mu_);
  onChange_ = std::move(listener);
}

void ModelRepository::changed() {
  std::function<void()> listener;
  {
    std::lock_guard lock(mu_);
    listener = onChange_;
  }
  if (listener) listener();
}

std::vector<ModelIndexEntry> ModelRepository::index() const {
  std::lock_guard lock(mu_);
  std::vector<ModelIndexEntry> out;
  for (const auto& [_, e] : models_) out.push_back(e.index);
  return out;
}

std::shared_ptr<const ServedModel> ModelRepository::find(const std::string& name, ModelIndexEntry* why) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    *why = {name, 0, "", "not found"};
    return nullptr;
  }
  *why = it->second.index;
  return it->second.served;
}

std::shared_ptr<ModelStatistics> ModelRepository::statistics(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second.stats;
}

}  // namespace kubeaccel::agent
