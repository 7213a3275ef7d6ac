#include "inference_client.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace kubeaccel {

std::string socketPathOf(const std::string& target) {
  std::string path;
  if (target.rfind("unix://", 0) == 0)
    path = target.substr(7);
  else if (target.rfind("unix:", 0) == 0)
    path = target.substr(5);
  if (path.empty() || path[0] != '/')
    throw std::invalid_argument("--socket: expected unix:///ABSOLUTE/PATH, got '" + target + "'");
  return path;
}

InferenceClient::InferenceClient(const std::string& target, std::chrono::milliseconds deadline)
    : socketPath_(socketPathOf(target)), deadline_(deadline) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  channel_ = grpc::CreateCustomChannel("unix://" + socketPath_, grpc::InsecureChannelCredentials(), args);
  stub_ = inference::GRPCInferenceService::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> InferenceClient::context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline_);
  return ctx;
}

grpc::Status InferenceClient::metadata(const std::string& model, inference::ModelMetadataResponse* out) {
  inference::ModelMetadataRequest req;
  req.set_name(model);
  return stub_->ModelMetadata(context().get(), req, out);
}

std::vector<ClientTensor> InferenceClient::randomInputs(const inference::ModelMetadataResponse& meta, int batch,
                                                        unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(0.f, 1.f);
  std::vector<ClientTensor> out;
  for (const auto& in : meta.inputs()) {
    ClientTensor t{in.name(), in.datatype(), {}, {}};
    size_t n = 1;
    for (int d = 0; d < in.shape_size(); ++d) {
      int64_t dim = in.shape(d) >= 0 ? in.shape(d) : (d == 0 ? batch : 1);
      t.shape.push_back(dim);
      n *= static_cast<size_t>(dim);
    }
    if (in.datatype() != "FP32") throw std::runtime_error("random inputs are FP32 only; input '" + in.name() + "' is " + in.datatype());
    t.bytes.resize(n * sizeof(float));
    for (size_t i = 0; i < n; ++i) {
      float v = dist(rng);
      std::memcpy(t.bytes.data() + i * sizeof(float), &v, sizeof v);
    }
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

void addInputs(inference::ModelInferRequest& req, const std::vector<ClientTensor>& inputs) {
  for (const auto& t : inputs) {
    auto* in = req.add_inputs();
    in->set_name(t.name);
    in->set_datatype(t.datatype);
    for (int64_t d : t.shape) in->add_shape(d);
  }
}

std::vector<ClientTensor> outputsOf(const inference::ModelInferResponse& resp) {
  std::vector<ClientTensor> out;
  for (int i = 0; i < resp.outputs_size(); ++i) {
    const auto& o = resp.outputs(i);
    ClientTensor t{o.name(), o.datatype(), {o.shape().begin(), o.shape().end()}, {}};
    if (i < resp.raw_output_contents_size()) t.bytes = resp.raw_output_contents(i);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

grpc::Status InferenceClient::infer(const std::string& model, const std::vector<ClientTensor>& inputs,
                                    std::vector<ClientTensor>* outputs) {
  inference::ModelInferRequest req;
  req.set_model_name(model);
  addInputs(req, inputs);
  for (const auto& t : inputs) req.add_raw_input_contents(t.bytes);
  inference::ModelInferResponse resp;
  grpc::Status s = stub_->ModelInfer(context().get(), req, &resp);
  if (s.ok()) *outputs = outputsOf(resp);
  return s;
}

grpc::Status InferenceClient::inferShm(const std::string& model, const inference::ModelMetadataResponse& meta,
                                       const std::vector<ClientTensor>& inputs, std::vector<ClientTensor>* outputs) {
  // Output sizes from metadata: dim 0 follows the inputs' batch.
  int64_t batch = inputs.empty() || inputs[0].shape.empty() ? 1 : inputs[0].shape[0];
  std::vector<size_t> outBytes;
  for (const auto& o : meta.outputs()) {
    size_t n = o.datatype() == "FP64" || o.datatype() == "INT64" ? 8 : 4;
    for (int d = 0; d < o.shape_size(); ++d) n *= static_cast<size_t>(o.shape(d) >= 0 ? o.shape(d) : (d == 0 ? batch : 1));
    outBytes.push_back(n);
  }
  size_t total = 0;
  for (const auto& t : inputs) total += t.bytes.size();
  for (size_t b : outBytes) total += b;

  std::string key = "kubeaccel-infer-" + std::to_string(::getpid()) + ".shm";
  std::string file = std::filesystem::path(socketPath_).parent_path() / "shm" / key;
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  // The agent runs as uid 0 without CAP_DAC_OVERRIDE, so it opens the file
  // read-write only through its "other" bits: 0666, past the umask. Only
  // this pod has shm/ mounted; node users cannot reach it.
  if (fd >= 0) ::fchmod(fd, 0666);
  if (fd < 0) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cannot create " + file + ": " + std::strerror(errno));
  struct Cleanup {
    std::string file;
    int fd;
    void* map = MAP_FAILED;
    size_t size = 0;
    ~Cleanup() {
      if (map != MAP_FAILED) ::munmap(map, size);
      ::close(fd);
      ::unlink(file.c_str());
    }
  } cleanup{file, fd};
  if (::ftruncate(fd, static_cast<off_t>(total)) != 0)
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cannot size " + file);
  cleanup.size = total;
  cleanup.map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (cleanup.map == MAP_FAILED) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cannot map " + file);
  auto* base = static_cast<char*>(cleanup.map);

  std::string region = "kubeaccel-infer-" + std::to_string(::getpid());
  inference::SystemSharedMemoryRegisterRequest reg;
  reg.set_name(region);
  reg.set_key(key);
  reg.set_byte_size(total);
  inference::SystemSharedMemoryRegisterResponse regResp;
  if (grpc::Status s = stub_->SystemSharedMemoryRegister(context().get(), reg, &regResp); !s.ok()) return s;
  struct Unregister {
    InferenceClient* c;
    std::string region;
    ~Unregister() {
      inference::SystemSharedMemoryUnregisterRequest r;
      r.set_name(region);
      inference::SystemSharedMemoryUnregisterResponse resp;
      c->stub_->SystemSharedMemoryUnregister(c->context().get(), r, &resp);
    }
  } unregister{this, region};

  inference::ModelInferRequest req;
  req.set_model_name(model);
  addInputs(req, inputs);
  auto setShm = [&](google::protobuf::Map<std::string, inference::InferParameter>* p, size_t offset, size_t size) {
    (*p)["shared_memory_region"].set_string_param(region);
    (*p)["shared_memory_offset"].set_int64_param(static_cast<int64_t>(offset));
    (*p)["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(size));
  };
  size_t offset = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::memcpy(base + offset, inputs[i].bytes.data(), inputs[i].bytes.size());
    setShm(req.mutable_inputs(static_cast<int>(i))->mutable_parameters(), offset, inputs[i].bytes.size());
    offset += inputs[i].bytes.size();
  }
  std::vector<size_t> outOffsets;
  for (int i = 0; i < meta.outputs_size(); ++i) {
    auto* o = req.add_outputs();
    o->set_name(meta.outputs(i).name());
    setShm(o->mutable_parameters(), offset, outBytes[i]);
    outOffsets.push_back(offset);
    offset += outBytes[i];
  }
  inference::ModelInferResponse resp;
  grpc::Status s = stub_->ModelInfer(context().get(), req, &resp);
  if (!s.ok()) return s;
  *outputs = outputsOf(resp);
  for (size_t i = 0; i < outputs->size() && i < outOffsets.size(); ++i) {
    auto& t = (*outputs)[i];
    size_t n = outBytes[i];
    // The server says how much it wrote; never read past this output's range.
    if (auto it = resp.outputs(static_cast<int>(i)).parameters().find("shared_memory_byte_size");
        it != resp.outputs(static_cast<int>(i)).parameters().end()) {
      int64_t said = it->second.int64_param();
      if (said < 0 || static_cast<uint64_t>(said) > outBytes[i])
        return grpc::Status(grpc::StatusCode::INTERNAL, "output '" + t.name + "': the server wrote " +
                                                            std::to_string(said) + " bytes into a range of " +
                                                            std::to_string(outBytes[i]));
      n = static_cast<size_t>(said);
    }
    t.bytes.assign(base + outOffsets[i], n);
  }
  return grpc::Status::OK;
}

}  // namespace kubeaccel
