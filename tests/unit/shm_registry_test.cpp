#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "shm/shm_registry.hpp"

namespace kubeaccel::agent {
namespace {

namespace fs = std::filesystem;
using grpc::StatusCode;

const size_t kPage = static_cast<size_t>(::sysconf(_SC_PAGESIZE));

class ShmRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shm_registry_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    slot_ = root_ / "s0";
    outside_ = root_ / "outside";
    fs::create_directory(slot_);
    fs::create_directory(outside_);
    fs::permissions(slot_, fs::perms::all);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // A file in the slot dir whose byte i is pattern(i).
  std::string writeFile(const std::string& name, size_t size) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(pattern(i));
    int fd = ::open((slot_ / name).c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0666);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
    return (slot_ / name).string();
  }
  static unsigned char pattern(size_t i) { return static_cast<unsigned char>((i * 7 + 3) % 251); }

  std::string preadFile(const std::string& name, uint64_t offset, size_t size) {
    std::string out(size, '\0');
    int fd = ::open((slot_ / name).c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pread(fd, out.data(), size, static_cast<off_t>(offset)), static_cast<ssize_t>(size));
    ::close(fd);
    return out;
  }

  fs::path root_, slot_, outside_;
};

TEST_F(ShmRegistryTest, RegisterViewUnregisterRoundTrip) {
  const size_t fileSize = 3 * kPage + 100;
  writeFile("input.bin", fileSize);
  ShmRegistry reg(slot_.string());
  // An offset in the middle of the second page: the mapping starts at a page boundary.
  const uint64_t offset = kPage + 904;
  ASSERT_TRUE(reg.registerRegion("in", "input.bin", offset, 6000).ok());
  EXPECT_EQ(reg.size(), 1u);

  std::vector<ShmRegionInfo> infos;
  ASSERT_TRUE(reg.status("in", &infos).ok());
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].name, "in");
  EXPECT_EQ(infos[0].key, "input.bin");
  EXPECT_EQ(infos[0].offset, offset);
  EXPECT_EQ(infos[0].byteSize, 6000u);

  ShmView v;
  ASSERT_TRUE(reg.view("in", 10, 100, &v).ok());
  ASSERT_EQ(v.bytes.size(), 100u);
  for (size_t i = 0; i < 100; ++i)
    ASSERT_EQ(static_cast<unsigned char>(v.bytes[i]), pattern(offset + 10 + i)) << i;

  // Outputs are written into regions: they must reach the file.
  std::memset(v.bytes.data(), 'A', v.bytes.size());
  EXPECT_EQ(preadFile("input.bin", offset + 10, 100), std::string(100, 'A'));
  EXPECT_EQ(static_cast<unsigned char>(preadFile("input.bin", offset + 9, 1)[0]), pattern(offset + 9));
  EXPECT_EQ(static_cast<unsigned char>(preadFile("input.bin", offset + 110, 1)[0]), pattern(offset + 110));

  // The whole region, and an empty range at its end.
  ShmView whole;
  ASSERT_TRUE(reg.view("in", 0, 6000, &whole).ok());
  EXPECT_EQ(whole.bytes.size(), 6000u);
  EXPECT_EQ(static_cast<unsigned char>(whole.bytes[0]), pattern(offset));
  ShmView empty;
  ASSERT_TRUE(reg.view("in", 6000, 0, &empty).ok());
  EXPECT_TRUE(empty.bytes.empty());
  EXPECT_FALSE(ShmRegistry::truncated(whole));

  ASSERT_TRUE(reg.unregisterRegion("in").ok());
  EXPECT_EQ(reg.size(), 0u);
}

TEST_F(ShmRegistryTest, ViewOutlivesUnregister) {
  writeFile("data", 2 * kPage);
  ShmRegistry reg(slot_.string());
  ASSERT_TRUE(reg.registerRegion("r", "data", 0, 2 * kPage).ok());
  ShmView first;
  ASSERT_TRUE(reg.view("r", kPage, kPage, &first).ok());
  ASSERT_TRUE(reg.unregisterRegion("r").ok());

  ShmView second;
  grpc::Status s = reg.view("r", 0, 1, &second);
  EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(second.mapping, nullptr);

  // The first view still owns a live mapping of the file.
  EXPECT_EQ(static_cast<unsigned char>(first.bytes[0]), pattern(kPage));
  std::memset(first.bytes.data(), 'z', first.bytes.size());
  EXPECT_EQ(preadFile("data", kPage, kPage), std::string(kPage, 'z'));
  first = ShmView{};  // unmaps
  EXPECT_EQ(preadFile("data", kPage, 4), "zzzz");
}

TEST_F(ShmRegistryTest, RegistryDestroyedWhileViewHeld) {
  writeFile("data", 100);
  ShmView v;
  {
    ShmRegistry reg(slot_.string());
    ASSERT_TRUE(reg.registerRegion("r", "data", 0, 100).ok());
    ASSERT_TRUE(reg.view("r", 0, 100, &v).ok());
  }
  v.bytes[99] = std::byte{'q'};
  EXPECT_EQ(preadFile("data", 99, 1), "q");
}

struct RefusedKey {
  std::string key;
  StatusCode code;
  std::string expected;  // part of the message
};

TEST_F(ShmRegistryTest, RefusesEveryKeyOutsideTheSlotDirectory) {
  writeFile("inside", 4096);
  fs::create_symlink(slot_ / "inside", slot_ / "link-inside");
  fs::create_symlink("inside", slot_ / "relative-link-inside");
  fs::create_symlink("/etc/passwd", slot_ / "link-passwd");
  fs::create_symlink(outside_, slot_ / "link-dir");
  {
    int fd = ::open((outside_ / "secret").c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 4096), 0);
    ::close(fd);
  }
  ASSERT_EQ(::mkfifo((slot_ / "fifo").c_str(), 0666), 0);
  fs::create_directory(slot_ / "dir");
  {
    int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(sock, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string p = (slot_ / "inference.sock").string();
    ASSERT_LT(p.size(), sizeof addr.sun_path);
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(sock);
  }
  writeFile("linked", 4096);
  fs::create_hard_link(slot_ / "linked", slot_ / "hardlink");

  const std::string notAName = "expected the name of a file in the slot directory";
  const std::vector<RefusedKey> cases = {
      {"../x", StatusCode::INVALID_ARGUMENT, "shared memory key '../x': " + notAName},
      {"../outside/secret", StatusCode::INVALID_ARGUMENT, notAName},
      {"/etc/passwd", StatusCode::INVALID_ARGUMENT, "shared memory key '/etc/passwd': " + notAName},
      {"a/b", StatusCode::INVALID_ARGUMENT, notAName},
      {"inside/", StatusCode::INVALID_ARGUMENT, notAName},
      {"./inside", StatusCode::INVALID_ARGUMENT, notAName},
      {"", StatusCode::INVALID_ARGUMENT, "shared memory key '': " + notAName},
      {".", StatusCode::INVALID_ARGUMENT, notAName},
      {"..", StatusCode::INVALID_ARGUMENT, notAName},
      {std::string("inside\0/../../etc/passwd", 24), StatusCode::INVALID_ARGUMENT, notAName},
      {std::string(256, 'k'), StatusCode::INVALID_ARGUMENT, notAName},
      {"link-inside", StatusCode::INVALID_ARGUMENT,
       "expected a regular file in the slot directory, but it is a symbolic link"},
      {"relative-link-inside", StatusCode::INVALID_ARGUMENT, "a symbolic link"},
      {"link-passwd", StatusCode::INVALID_ARGUMENT, "a symbolic link"},
      {"link-dir", StatusCode::INVALID_ARGUMENT, "a symbolic link"},
      {"fifo", StatusCode::INVALID_ARGUMENT, "expected a regular file in the slot directory, but it is a FIFO"},
      {"dir", StatusCode::INVALID_ARGUMENT, "but it is a directory"},
      {"inference.sock", StatusCode::INVALID_ARGUMENT, "but it is a socket"},
      {"hardlink", StatusCode::INVALID_ARGUMENT, "expected a regular file with a single link, but it has 2"},
      {"linked", StatusCode::INVALID_ARGUMENT, "hard links are refused"},
      {"missing", StatusCode::NOT_FOUND,
       "shared memory key 'missing': expected the name of a file in the slot directory, but there is no such file"},
  };
  ShmRegistry reg(slot_.string());
  for (const RefusedKey& c : cases) {
    grpc::Status s = reg.registerRegion("r", c.key, 0, 16);
    EXPECT_EQ(s.error_code(), c.code) << c.key << ": " << s.error_message();
    EXPECT_NE(s.error_message().find(c.expected), std::string::npos)
        << "key " << c.key << " gave: " << s.error_message();
  }
  EXPECT_EQ(reg.size(), 0u);
  // Non-printable bytes are escaped in messages.
  grpc::Status nul = reg.registerRegion("r", std::string("a\0b", 3), 0, 1);
  EXPECT_NE(nul.error_message().find("'a\\x00b'"), std::string::npos) << nul.error_message();
  // The plain file is accepted.
  EXPECT_TRUE(reg.registerRegion("r", "inside", 0, 16).ok());
}

TEST_F(ShmRegistryTest, RefusesDeviceNodes) {
  // Needs CAP_MKNOD; a character device must be refused without ever being opened for I/O.
  if (::mknod((slot_ / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) GTEST_SKIP() << "mknod not permitted";
  ShmRegistry reg(slot_.string());
  grpc::Status s = reg.registerRegion("r", "null", 0, 1);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("but it is a character device"), std::string::npos) << s.error_message();
}

TEST_F(ShmRegistryTest, RefusesRangesOutsideTheFile) {
  writeFile("f", 1000);
  ShmRegistry reg(slot_.string());
  struct Case {
    uint64_t offset, size;
  };
  for (Case c : std::vector<Case>{{1000, 1},
                                  {0, 1001},
                                  {999, 2},
                                  {5000, 10},
                                  {0, 0},
                                  {500, 0},
                                  {1, UINT64_MAX},
                                  {UINT64_MAX, 1},
                                  {UINT64_MAX, UINT64_MAX},
                                  {UINT64_MAX - 10, 20}}) {
    grpc::Status s = reg.registerRegion("r", "f", c.offset, c.size);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << c.offset << "+" << c.size;
    EXPECT_NE(s.error_message().find("shared memory key 'f': expected offset + byte_size within the file and "
                                     "byte_size > 0, but offset " +
                                     std::to_string(c.offset) + " + byte_size " + std::to_string(c.size) +
                                     " and the file has 1000 bytes"),
              std::string::npos)
        << s.error_message();
  }
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_TRUE(reg.registerRegion("whole", "f", 0, 1000).ok());
  EXPECT_TRUE(reg.registerRegion("last", "f", 999, 1).ok());
  writeFile("empty", 0);
  EXPECT_EQ(reg.registerRegion("e", "empty", 0, 1).error_code(), StatusCode::INVALID_ARGUMENT);
}

TEST_F(ShmRegistryTest, ViewOutsideTheRegion) {
  writeFile("f", 3 * kPage);
  ShmRegistry reg(slot_.string());
  ASSERT_TRUE(reg.registerRegion("r", "f", 100, 1000).ok());
  struct Case {
    uint64_t offset, size;
  };
  for (Case c : std::vector<Case>{{0, 1001}, {1000, 1}, {1001, 0}, {999, 2}, {1, UINT64_MAX}, {UINT64_MAX, 2}}) {
    ShmView v;
    grpc::Status s = reg.view("r", c.offset, c.size, &v);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << c.offset << "+" << c.size;
    EXPECT_EQ(s.error_message(), "shared memory region 'r': expected offset + byte_size within the region's 1000 "
                                 "bytes, but offset " +
                                     std::to_string(c.offset) + " + byte_size " + std::to_string(c.size) +
                                     " is past its end");
    EXPECT_EQ(v.mapping, nullptr);
  }
  ShmView v;
  ASSERT_TRUE(reg.view("r", 999, 1, &v).ok());
  EXPECT_EQ(static_cast<unsigned char>(v.bytes[0]), pattern(100 + 999));
}

TEST_F(ShmRegistryTest, DuplicateNameIsRefused) {
  writeFile("a", 100);
  writeFile("b", 100);
  ShmRegistry reg(slot_.string());
  ASSERT_TRUE(reg.registerRegion("r", "a", 0, 100).ok());
  grpc::Status s = reg.registerRegion("r", "b", 0, 50);
  EXPECT_EQ(s.error_code(), StatusCode::ALREADY_EXISTS);
  EXPECT_NE(s.error_message().find("'r' is already registered"), std::string::npos) << s.error_message();
  std::vector<ShmRegionInfo> infos;
  ASSERT_TRUE(reg.status("r", &infos).ok());
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].key, "a");
  EXPECT_EQ(infos[0].byteSize, 100u);
}

TEST_F(ShmRegistryTest, BadRegionNames) {
  writeFile("a", 100);
  ShmRegistry reg(slot_.string());
  grpc::Status s = reg.registerRegion("", "a", 0, 1);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("expected 1 to 256 bytes"), std::string::npos) << s.error_message();
  EXPECT_EQ(reg.registerRegion(std::string(257, 'n'), "a", 0, 1).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(reg.registerRegion(std::string(256, 'n'), "a", 0, 1).ok());
}

TEST_F(ShmRegistryTest, UnknownNames) {
  writeFile("a", 100);
  ShmRegistry reg(slot_.string());
  ASSERT_TRUE(reg.registerRegion("known", "a", 0, 100).ok());
  std::vector<ShmRegionInfo> infos{ShmRegionInfo{}};
  grpc::Status s = reg.status("nope", &infos);
  EXPECT_EQ(s.error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "shared memory region 'nope' is not registered");
  EXPECT_TRUE(infos.empty());
  EXPECT_EQ(reg.unregisterRegion("nope").error_code(), StatusCode::NOT_FOUND);
  ShmView v;
  EXPECT_EQ(reg.view("nope", 0, 1, &v).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(reg.view("", 0, 1, &v).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(reg.size(), 1u);
}

TEST_F(ShmRegistryTest, EmptyNameMeansEveryRegion) {
  writeFile("a", 100);
  ShmRegistry reg(slot_.string());
  std::vector<ShmRegionInfo> infos;
  ASSERT_TRUE(reg.status("", &infos).ok());
  EXPECT_TRUE(infos.empty());
  EXPECT_TRUE(reg.unregisterRegion("").ok());  // nothing registered: still OK
  for (const char* n : {"c", "a", "b"}) ASSERT_TRUE(reg.registerRegion(n, "a", 0, 10).ok());
  ASSERT_TRUE(reg.status("", &infos).ok());
  ASSERT_EQ(infos.size(), 3u);
  EXPECT_EQ(infos[0].name, "a");
  EXPECT_EQ(infos[1].name, "b");
  EXPECT_EQ(infos[2].name, "c");
  ShmView held;
  ASSERT_TRUE(reg.view("b", 0, 10, &held).ok());
  ASSERT_TRUE(reg.unregisterRegion("").ok());
  EXPECT_EQ(reg.size(), 0u);
  ASSERT_TRUE(reg.status("", &infos).ok());
  EXPECT_TRUE(infos.empty());
  EXPECT_EQ(static_cast<unsigned char>(held.bytes[9]), pattern(9));
  // Names are free again.
  EXPECT_TRUE(reg.registerRegion("a", "a", 0, 10).ok());
}

TEST_F(ShmRegistryTest, RegionCap) {
  writeFile("a", 100);
  ShmRegistry reg(slot_.string());
  for (size_t i = 0; i < ShmRegistry::kMaxRegions; ++i)
    ASSERT_TRUE(reg.registerRegion("r" + std::to_string(i), "a", 0, 100).ok()) << i;
  grpc::Status s = reg.registerRegion("one-more", "a", 0, 100);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("at most 64 regions"), std::string::npos) << s.error_message();
  EXPECT_EQ(reg.size(), ShmRegistry::kMaxRegions);
  ASSERT_TRUE(reg.unregisterRegion("r7").ok());
  EXPECT_TRUE(reg.registerRegion("one-more", "a", 0, 100).ok());
  // A duplicate at the cap is still reported as a duplicate.
  EXPECT_EQ(reg.registerRegion("r0", "a", 0, 100).error_code(), StatusCode::ALREADY_EXISTS);
}

TEST_F(ShmRegistryTest, MappedBytesCap) {
  // A sparse file: address space, not disk.
  const uint64_t big = ShmRegistry::kMaxMappedBytes / 2 + 1;
  int fd = ::open((slot_ / "sparse").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(big)), 0);
  ::close(fd);
  ShmRegistry reg(slot_.string());
  ASSERT_TRUE(reg.registerRegion("a", "sparse", 0, big).ok());
  grpc::Status s = reg.registerRegion("b", "sparse", 0, big);
  EXPECT_EQ(s.error_code(), StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("registered bytes"), std::string::npos) << s.error_message();
  EXPECT_TRUE(reg.registerRegion("c", "sparse", big - 4096, 4096).ok());
  ASSERT_TRUE(reg.unregisterRegion("a").ok());
  EXPECT_TRUE(reg.registerRegion("b", "sparse", 0, big).ok());
}

TEST_F(ShmRegistryTest, TruncatedFileDoesNotKillTheAgent) {
  writeFile("t", 4 * kPage);
  ShmRegistry reg(slot_.string());
  ASSERT_TRUE(reg.registerRegion("r", "t", 0, 4 * kPage).ok());
  ShmView v;
  ASSERT_TRUE(reg.view("r", 0, 4 * kPage, &v).ok());
  EXPECT_EQ(static_cast<unsigned char>(v.bytes[3 * kPage]), pattern(3 * kPage));
  EXPECT_FALSE(ShmRegistry::truncated(v));

  // The client shrinks its file under the mapping: touching the lost pages would raise SIGBUS.
  ASSERT_EQ(::truncate((slot_ / "t").c_str(), static_cast<off_t>(kPage)), 0);
  volatile std::byte* p = v.bytes.data();
  std::byte lost = p[3 * kPage];
  EXPECT_EQ(lost, std::byte{0});
  p[2 * kPage] = std::byte{1};  // writes land in zero pages, not in the client's file
  EXPECT_TRUE(ShmRegistry::truncated(v));

  ShmView again;
  grpc::Status s = reg.view("r", 0, 1, &again);
  EXPECT_EQ(s.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("truncated"), std::string::npos) << s.error_message();

  // Registering the region again maps the file afresh.
  ASSERT_TRUE(reg.unregisterRegion("r").ok());
  writeFile("t", 4 * kPage);
  ASSERT_TRUE(reg.registerRegion("r", "t", 0, 4 * kPage).ok());
  ASSERT_TRUE(reg.view("r", 0, 4 * kPage, &again).ok());
  EXPECT_FALSE(ShmRegistry::truncated(again));
  EXPECT_EQ(static_cast<unsigned char>(again.bytes[3 * kPage]), pattern(3 * kPage));
  v = ShmView{};
}

TEST_F(ShmRegistryTest, SigbusOutsideRegionsStillKills) {
  // The guard must not swallow faults it does not own: a mapping of our own, not a region.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  writeFile("g", kPage);
  writeFile("mine", 2 * kPage);
  ShmRegistry reg(slot_.string());
  ASSERT_TRUE(reg.registerRegion("r", "g", 0, kPage).ok());  // installs the handler
  auto diedOfIt = [](int status) {
    // Killed by SIGBUS, or a sanitizer's own SIGBUS report (it exits non-zero).
    return (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
  };
  EXPECT_EXIT(
      {
        int fd = ::open((slot_ / "mine").c_str(), O_RDWR | O_CLOEXEC);
        void* m = ::mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED || ::ftruncate(fd, 0) != 0) std::_Exit(0);
        volatile char* c = static_cast<char*>(m);
        c[kPage] = 1;
        std::_Exit(0);
      },
      diedOfIt, "");
}

TEST_F(ShmRegistryTest, ConcurrentRegisterViewUnregister) {
  writeFile("shared", 8 * kPage);
  for (int t = 0; t < 6; ++t) writeFile("own" + std::to_string(t), 2 * kPage);
  ShmRegistry reg(slot_.string());
  std::atomic<bool> failed{false};
  std::atomic<int> views{0};
  auto check = [&](const grpc::Status& s, std::initializer_list<StatusCode> allowed) {
    for (StatusCode c : allowed)
      if (s.error_code() == c) return;
    failed = true;
    ADD_FAILURE() << s.error_code() << ": " << s.error_message();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      const std::string own = "own" + std::to_string(t);
      for (int i = 0; i < 300 && !failed; ++i) {
        // A name of its own: every step must succeed.
        check(reg.registerRegion(own, own, 0, 2 * kPage), {StatusCode::OK});
        ShmView v;
        grpc::Status s = reg.view(own, kPage, kPage, &v);
        check(s, {StatusCode::OK, StatusCode::NOT_FOUND});  // NOT_FOUND: another thread unregistered all
        if (s.ok()) {
          v.bytes[0] = std::byte{static_cast<unsigned char>(t)};
          ++views;
        }
        check(reg.unregisterRegion(own), {StatusCode::OK, StatusCode::NOT_FOUND});
        // A shared name: races are expected, crashes and unexpected codes are not.
        check(reg.registerRegion("common", "shared", kPage, 4 * kPage),
              {StatusCode::OK, StatusCode::ALREADY_EXISTS});
        ShmView c;
        if (reg.view("common", 0, 4 * kPage, &c).ok()) {
          c.bytes[static_cast<size_t>(t)] = std::byte{1};
          ++views;
        }
        std::vector<ShmRegionInfo> infos;
        check(reg.status("", &infos), {StatusCode::OK});
        if (i % 7 == t) check(reg.unregisterRegion(""), {StatusCode::OK});
        if (i % 3 == 0) check(reg.unregisterRegion("common"), {StatusCode::OK, StatusCode::NOT_FOUND});
        EXPECT_LE(reg.size(), ShmRegistry::kMaxRegions);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(failed);
  EXPECT_GT(views.load(), 0);
  ASSERT_TRUE(reg.unregisterRegion("").ok());
  EXPECT_EQ(reg.size(), 0u);
}

}  // namespace
}  // namespace kubeaccel::agent
