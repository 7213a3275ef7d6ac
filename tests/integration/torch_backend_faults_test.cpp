// The torch backend's failure paths and the loader's: each is a model or a
// class UNAVAILABLE with the reason, or one failed request, while the agent
// keeps serving everything else.
#include "torch_fixture.hpp"

namespace kubeaccel::testing {
namespace {

std::string reasonOf(Client& c, const std::string& model) {
  auto idx = c.index();
  auto it = idx.find(model);
  if (it == idx.end()) return "<not in the index>";
  return it->second.state() + ": " + it->second.reason();
}

TEST_F(TorchAgentTest, BrokenModelsAreUnavailableWithTheReasonWhileOthersServe) {
  prepare({"pair"});
  // A corrupt archive.
  fs::create_directories(torchModels() + "/corrupt/1");
  fs::copy_file(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/pair/config.json", torchModels() + "/corrupt/config.json");
  std::ofstream(torchModels() + "/corrupt/1/model.pt") << "PK\x03\x04 this is not a TorchScript archive";
  // An AOTInductor package, which libtorch 1.13 cannot load.
  fs::create_directories(torchModels() + "/aoti/1");
  fs::copy_file(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/pair/config.json", torchModels() + "/aoti/config.json");
  std::ofstream(torchModels() + "/aoti/1/model.pt2") << "PK\x03\x04";
  // SqueezeNet declared with 10 classes instead of 1000.
  fs::create_directories(torchModels() + "/mismatch/1");
  fs::create_symlink(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/squeezenet/1/model.pt",
                     torchModels() + "/mismatch/1/model.pt");
  std::ofstream(torchModels() + "/mismatch/config.json")
      << R"({"inputs": [{"name": "data", "datatype": "FP32", "dims": [-1, 3, 224, 224]}],)"
         R"( "outputs": [{"name": "logits", "datatype": "FP32", "dims": [-1, 10]}]})";
  // pair declared with one output: the model's dict has two.
  fs::create_directories(torchModels() + "/short/1");
  fs::create_symlink(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/pair/1/model.pt", torchModels() + "/short/1/model.pt");
  std::ofstream(torchModels() + "/short/config.json")
      << R"({"inputs": [{"name": "a", "datatype": "FP32", "dims": [-1, 4]}, {"name": "b", "datatype": "FP32", "dims": [-1, 4]}],)"
         R"( "outputs": [{"name": "sum", "datatype": "FP32", "dims": [-1, 4]}]})";
  // No declared signature at all.
  fs::create_directories(torchModels() + "/undeclared/1");
  fs::create_symlink(std::string(KUBEACCEL_TORCH_MODELS_DIR) + "/pair/1/model.pt",
                     torchModels() + "/undeclared/1/model.pt");
  startTorch();
  Client c(socket(0));
  struct Case {
    std::string model, reason;
  };
  for (const Case& k : {
           Case{"corrupt", "corrupt/1/model.pt: not a TorchScript archive libtorch 1.13.0 can load: "},
           Case{"aoti", "aoti/1/model.pt2: an AOTInductor package (.pt2) needs libtorch >= 2.6; this torch backend "
                        "was built against libtorch 1.13.0"},
           Case{"mismatch", "output 'logits': config.json declares [-1,10], the model gives [1,1000] for the "
                            "declared inputs"},
           Case{"short", "the model returns a dict of 2 tensors; config.json declares 1 outputs"},
           Case{"undeclared", "config.json must declare \"inputs\" for the torch backend"},
       }) {
    std::string r = reasonOf(c, k.model);
    EXPECT_EQ(r.rfind("UNAVAILABLE: ", 0), 0u) << k.model << ": " << r;
    EXPECT_NE(r.find(k.reason), std::string::npos) << k.model << ": " << r;
    std::cout << "[ torch    ] " << k.model << ": " << r << "\n";
  }
  EXPECT_EQ(reasonOf(c, "pair"), "READY: ");
  auto x = randomFloats(4, 3);
  inference::ModelInferRequest req = inferRequest("pair", "a", {1, 4}, bytesOf(x));
  auto* b = req.add_inputs();
  b->set_name("b");
  b->set_datatype("FP32");
  b->add_shape(1);
  b->add_shape(4);
  req.add_raw_input_contents(bytesOf(x));
  inference::ModelInferResponse resp;
  EXPECT_TRUE(c.infer(req, &resp).ok());
}

TEST_F(TorchAgentTest, ModelThatThrowsFailsThatRequestInternalAndTheWorkerGoesOn) {
  prepare({"fragile"});
  startTorch();
  Client c(socket(0));
  inference::ModelInferResponse resp;
  grpc::Status s = c.infer(inferRequest("fragile", "x", {1, 4}, bytesOf({1, -2, 3, 4})), &resp);
  EXPECT_EQ(codeName(s.error_code()), "INTERNAL") << s.error_message();
  EXPECT_NE(s.error_message().find("inference failed: forward: "), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("fragile: negative input"), std::string::npos) << s.error_message();
  std::cout << "[ torch    ] fragile: " << s.error_message() << "\n";
  for (int slot : {0, 1}) {
    auto got = Client(socket(slot)).inferFloats("fragile", "x", {1, 4}, {1, 2, 3, 4});
    EXPECT_EQ(got, (std::vector<float>{2, 4, 6, 8}));
  }
}

// Two classes: one names a library of another ABI version (or none at all),
// the other the torch backend, which keeps serving.
class BackendLibraryTest : public TorchAgentTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(BackendLibraryTest, UnusableLibraryMakesItsClassUnavailableAndTheOtherClassServes) {
  const std::string bad = GetParam();
  prepare({"fragile"});
  // One --backend-dir with the real torch library and the test's bad one.
  const std::string dir = h.root() + "/backends";
  fs::create_directories(dir);
  fs::create_symlink(std::string(KUBEACCEL_BACKENDS_DIR_FOR_TESTS) + "/libkubeaccel_backend_torch.so",
                     dir + "/libkubeaccel_backend_torch.so");
  fs::create_symlink(std::string(KUBEACCEL_TEST_BACKENDS_DIR) + "/libkubeaccel_backend_badabi.so",
                     dir + "/libkubeaccel_backend_badabi.so");
  h.plug("movidius-ncs.umockdev");
  std::string config = R"({"classes": [)"
                       R"({"name": "movidius-ncs2", "mode": "agent", "backend": ")" + bad + R"(", "slots": 2, "reenumerates": true,)"
                       R"( "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2485"}, {"subsystem": "usb", "vendor": "03e7", "product": "f63b"}]},)"
                       R"({"name": "movidius-ncs", "mode": "agent", "backend": "torch", "slots": 1, "reenumerates": true,)"
                       R"( "match": [{"subsystem": "usb", "vendor": "03e7", "product": "2150"}]}]})";
  h.startAgent(h.writeConfig(config), {"--models", torchModels(), "--backend-dir", dir});
  ASSERT_TRUE(h.waitForAgentLog("serving 2 slot socket(s)")) << h.agentLog();
  ASSERT_TRUE(h.waitForAgentLog("serving 1 slot socket(s)")) << h.agentLog();
  ASSERT_NO_FATAL_FAILURE(id_ = deviceIdOf(kClass));
  const std::string expect = bad == "badabi"
      ? "backend 'badabi': " + dir + "/libkubeaccel_backend_badabi.so has backend ABI version 999; this agent speaks version 1"
      : "backend 'nosuch': no library " + dir + "/libkubeaccel_backend_nosuch.so (--backend-dir " + dir + ")";
  Client broken(socket(0));
  EXPECT_EQ(reasonOf(broken, "fragile"), "UNAVAILABLE: " + expect);
  inference::ServerReadyRequest rreq;
  inference::ServerReadyResponse rresp;
  ASSERT_TRUE(broken.ServerReady(rreq, &rresp).ok());
  EXPECT_FALSE(rresp.ready());
  EXPECT_TRUE(h.waitForAgentLog(expect)) << h.agentLog();

  const std::string ncs = h.slotSocket("movidius-ncs", deviceIdOf("movidius-ncs"), 0);
  EXPECT_EQ(Client(ncs).inferFloats("fragile", "x", {1, 4}, {1, 2, 3, 4}), (std::vector<float>{2, 4, 6, 8}));
}

INSTANTIATE_TEST_SUITE_P(MissingOrWrongAbi, BackendLibraryTest, ::testing::Values("badabi", "nosuch"));

}  // namespace
}  // namespace kubeaccel::testing
