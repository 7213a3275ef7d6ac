#include "backend/abi_backend.hpp"

#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace kubeaccel::agent {
namespace {

// Whether `t` has the optional field that ends at `end` (an older backend's
// table is shorter).
bool hasField(const kab_backend* t, size_t end) { return t->struct_size >= end; }

bool hasRunInto(const kab_backend* t) {
  return hasField(t, offsetof(kab_backend, run_into) + sizeof t->run_into) && t->run_into;
}

constexpr size_t kErrBytes = 4096;

// The model handle, shared by the model and its runners: free_model runs
// after the last runner is gone (the header's contract), even when the
// repository dropped the model while a worker still held its runner.
struct Handle {
  Handle(const kab_backend* t, kab_model* m) : table(t), model(m) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { table->free_model(model); }
  const kab_backend* table;
  kab_model* model;
};

std::vector<TensorSpec> specs(const kab_backend* t, const kab_model* m, int isOutput) {
  std::vector<TensorSpec> out;
  size_t n = t->model_tensor_count(m, isOutput);
  for (size_t i = 0; i < n; ++i) {
    const kab_tensor_spec* s = t->model_tensor(m, isOutput, i);
    const char* what = isOutput ? "output" : "input";
    if (!s || !s->name || !s->datatype || (s->rank && !s->dims))
      throw std::runtime_error(std::string("backend gave no valid spec for ") + what + " " + std::to_string(i));
    TensorSpec spec{s->name, s->datatype, std::vector<int64_t>(s->dims, s->dims + s->rank)};
    if (!isKnownDatatype(spec.datatype) || elementSize(spec.datatype) == 0)
      throw std::runtime_error(std::string(what) + " '" + spec.name + "': datatype '" + spec.datatype +
                               "' is not one the agent serves");
    out.push_back(std::move(spec));
  }
  return out;
}

class Runner final : public ModelRunner {
 public:
  Runner(std::shared_ptr<Handle> h, kab_runner* r, std::vector<std::string> outputNames)
      : h_(std::move(h)), runner_(r), outputNames_(std::move(outputNames)) {}
  ~Runner() override { h_->table->free_runner(runner_); }

  std::vector<OutputTensor> run(const std::vector<InputTensor>& inputs,
                                const OutputDestinations& destinations) override {
    std::vector<kab_input> in(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      in[i] = {inputs[i].name.c_str(), inputs[i].datatype.c_str(), inputs[i].shape.data(), inputs[i].shape.size(),
               inputs[i].data.data(), inputs[i].data.size()};
    std::vector<kab_output> out(outputNames_.size());
    std::memset(out.data(), 0, out.size() * sizeof(kab_output));
    char err[kErrBytes] = "";
    std::vector<kab_destination> dest;
    const bool into = !destinations.empty() && destinations.size() == out.size() && hasRunInto(h_->table);
    if (into)
      for (const auto& d : destinations) dest.push_back({d.data(), d.size()});
    int rc = into ? h_->table->run_into(runner_, in.data(), in.size(), out.data(), out.size(), dest.data(), err,
                                        sizeof err)
                  : h_->table->run(runner_, in.data(), in.size(), out.data(), out.size(), err, sizeof err);
    if (rc != KAB_OK) {
      err[sizeof err - 1] = '\0';
      std::string what = err[0] ? err : "the backend failed without a message";
      if (rc == KAB_RESOURCE_EXHAUSTED) throw EngineOutOfMemory(what);
      throw std::runtime_error(what);
    }
    // Every output is released, whatever the checks below find.
    struct Releaser {
      std::vector<kab_output>& o;
      ~Releaser() {
        for (auto& x : o)
          if (x.release) x.release(x.release_ctx);
      }
    } releaser{out};
    std::vector<OutputTensor> result(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
      const kab_output& o = out[i];
      const std::string& name = outputNames_[i];
      if (o.rank > KAB_MAX_RANK || ::memchr(o.datatype, '\0', sizeof o.datatype) == nullptr)
        throw std::runtime_error("the backend gave output '" + name + "' with a bad rank or datatype");
      OutputTensor& t = result[i];
      t.name = name;
      t.datatype = o.datatype;
      t.shape.assign(o.shape, o.shape + o.rank);
      auto bytes = byteCount(t.datatype, t.shape);
      if (!bytes || *bytes != o.bytes || (o.bytes && !o.data))
        throw std::runtime_error("the backend gave output '" + name + "' as " + std::to_string(o.bytes) +
                                 " bytes, which do not make " + t.datatype + " " + shapeString(t.shape));
      if (into && o.data && o.data == dest[i].data) {
        // Written in place: the engine must have kept within the destination.
        if (o.bytes > dest[i].bytes)
          throw std::runtime_error("the backend wrote output '" + name + "' (" + std::to_string(o.bytes) +
                                   " bytes) past its destination of " + std::to_string(dest[i].bytes) + " bytes");
        t.inDestination = true;
        continue;
      }
      const auto* p = static_cast<const std::byte*>(o.data);
      t.data.assign(p, p + o.bytes);
    }
    return result;
  }

 private:
  std::shared_ptr<Handle> h_;
  kab_runner* runner_;
  std::vector<std::string> outputNames_;  // a copy: a runner may outlive its LoadedModel
};

class Model final : public LoadedModel {
 public:
  explicit Model(std::shared_ptr<Handle> h)
      : h_(std::move(h)), inputs_(specs(h_->table, h_->model, 0)), outputs_(specs(h_->table, h_->model, 1)) {
    kab_limits l{1, INT32_MAX, INT32_MAX};
    h_->table->model_limits(h_->model, &l);
    limits_ = {l.min_dim, l.max_dim, l.max_elements};
    const char* i = h_->table->model_info(h_->model);
    info_ = i ? i : "";
  }
  EngineLimits limits() const override { return limits_; }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }
  std::string info() const override { return info_; }
  std::unique_ptr<ModelRunner> newRunner() const override {
    kab_runner* r = nullptr;
    char err[kErrBytes] = "";
    if (h_->table->new_runner(h_->model, &r, err, sizeof err) != KAB_OK || !r) {
      err[sizeof err - 1] = '\0';
      throw std::runtime_error(std::string("cannot make a runner: ") + (err[0] ? err : "no message"));
    }
    std::vector<std::string> names;
    for (const auto& o : outputs_) names.push_back(o.name);
    return std::make_unique<Runner>(h_, r, std::move(names));
  }

 private:
  std::shared_ptr<Handle> h_;
  std::vector<TensorSpec> inputs_, outputs_;
  EngineLimits limits_;
  std::string info_;
};

}  // namespace

HostMemoryPinner* AbiBackend::hostMemoryPinner() {
  bool has = hasField(table_, offsetof(kab_backend, unpin_host_memory) + sizeof table_->unpin_host_memory) &&
             table_->pin_host_memory && table_->unpin_host_memory;
  return has ? this : nullptr;
}

std::string AbiBackend::pin(void* ptr, size_t bytes, bool* unavailable) {
  char err[kErrBytes] = "";
  int rc = table_->pin_host_memory(ptr, bytes, err, sizeof err);
  *unavailable = rc == KAB_UNAVAILABLE;
  if (rc == KAB_OK) return "";
  err[sizeof err - 1] = '\0';
  return err[0] ? err : "the backend could not pin the memory and gave no message";
}

void AbiBackend::unpin(void* ptr) { table_->unpin_host_memory(ptr); }

std::vector<std::string> AbiBackend::modelFiles() const {
  std::vector<std::string> files;
  for (const char* const* f = table_->model_files; *f; ++f) files.emplace_back(*f);
  return files;
}

std::unique_ptr<LoadedModel> AbiBackend::load(const std::string& versionDir, const std::string& configJson,
                                              const ModelConfig&) {
  kab_load_args args{versionDir.c_str(), configJson.c_str(), pciBusId_.c_str()};
  kab_model* m = nullptr;
  char err[kErrBytes] = "";
  int rc = table_->load_model(&args, &m, err, sizeof err);
  if (rc != KAB_OK || !m) {
    err[sizeof err - 1] = '\0';
    throw std::runtime_error(err[0] ? err : "the backend failed to load the model without a message");
  }
  return std::make_unique<Model>(std::make_shared<Handle>(table_, m));
}

}  // namespace kubeaccel::agent
