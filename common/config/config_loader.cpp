#include "config/config_loader.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/config_error.hpp"
#include "util/read_file.hpp"

namespace kubeaccel {
namespace {

using json = nlohmann::json;

// Walks a JSON document keeping the path of the current key, so every error
// names it: "config: classes[2].match[0].vendor: expected 4 hex digits, got 'xyz'".
class Reader {
 public:
  Reader(const json& j, std::string origin, std::string path = "")
      : j_(j), origin_(std::move(origin)), path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& why) const {
    throw ConfigError(origin_ + ": " + (path_.empty() ? "" : path_ + ": ") + why);
  }

  void expectObject(const std::set<std::string>& allowed) const {
    if (!j_.is_object()) fail("expected an object, got " + describe(j_));
    for (const auto& [key, _] : j_.items())
      if (!allowed.count(key)) (*this)[key].fail("unknown key");
  }

  bool has(const std::string& key) const { return j_.contains(key); }
  Reader operator[](const std::string& key) const {
    return Reader(j_.at(key), origin_, path_.empty() ? key : path_ + "." + key);
  }
  Reader at(size_t i) const { return Reader(j_.at(i), origin_, path_ + "[" + std::to_string(i) + "]"); }

  std::string string() const {
    if (!j_.is_string()) fail("expected a string, got " + describe(j_));
    return j_.get<std::string>();
  }
  bool boolean() const {
    if (!j_.is_boolean()) fail("expected true or false, got " + describe(j_));
    return j_.get<bool>();
  }
  long integer(long min, long max) const {
    if (!j_.is_number_integer()) fail("expected an integer, got " + describe(j_));
    long v = j_.get<long>();
    if (v < min || v > max)
      fail("expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
           ", got " + std::to_string(v));
    return v;
  }
  size_t arraySize() const {
    if (!j_.is_array()) fail("expected a list, got " + describe(j_));
    return j_.size();
  }
  std::vector<std::string> strings() const {
    std::vector<std::string> out;
    for (size_t i = 0, n = arraySize(); i < n; ++i) out.push_back(at(i).string());
    return out;
  }
  std::map<std::string, std::string> stringMap() const {
    if (!j_.is_object()) fail("expected an object of strings, got " + describe(j_));
    std::map<std::string, std::string> out;
    for (const auto& [key, _] : j_.items()) out[key] = (*this)[key].string();
    return out;
  }
  std::string oneOf(const std::set<std::string>& allowed) const {
    std::string v = string();
    if (!allowed.count(v)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail("expected one of " + list + ", got '" + v + "'");
    }
    return v;
  }
  std::string matching(const std::regex& re, const std::string& what) const {
    std::string v = string();
    if (!std::regex_match(v, re)) fail("expected " + what + ", got '" + v + "'");
    return v;
  }

 private:
  static std::string describe(const json& j) {
    std::string dump = j.dump();
    if (dump.size() > 40) dump = dump.substr(0, 37) + "...";
    return std::string(j.type_name()) + " " + dump;
  }

  const json& j_;
  std::string origin_;
  std::string path_;
};

const std::regex kHex4("[0-9a-f]{4}");
const std::regex kClassPrefix("[0-9a-f]{2,6}");
// A resource name's class part must be a DNS-1123 label.
const std::regex kClassName("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
const std::regex kDomain("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
const std::regex kSubsystem("[a-z0-9_-]+");

MatchRule parseMatch(const Reader& r) {
  r.expectObject({"subsystem", "vendor", "product", "device", "class", "serial", "properties",
                  "attributes"});
  if (!r.has("subsystem")) r.fail("missing key 'subsystem'");
  MatchRule m;
  m.subsystem = r["subsystem"].matching(kSubsystem, "a udev subsystem name");
  if (r.has("vendor")) m.vendor = r["vendor"].matching(kHex4, "4 lower-case hex digits");
  if (r.has("product")) {
    if (m.subsystem != "usb") r["product"].fail("only USB devices have a product ID; use 'device' for PCI");
    m.product = r["product"].matching(kHex4, "4 lower-case hex digits");
  }
  if (r.has("device")) {
    if (m.subsystem != "pci") r["device"].fail("only PCI devices have a device ID; use 'product' for USB");
    m.device = r["device"].matching(kHex4, "4 lower-case hex digits");
  }
  if (r.has("class")) {
    if (m.subsystem != "pci") r["class"].fail("a class code applies to PCI devices only");
    m.pciClass = r["class"].matching(kClassPrefix, "a PCI class code prefix of 2 to 6 lower-case hex digits");
  }
  if (r.has("serial")) m.serial = r["serial"].string();
  if (r.has("properties")) m.properties = r["properties"].stringMap();
  if (r.has("attributes")) m.attributes = r["attributes"].stringMap();
  return m;
}

DeviceClass parseClass(const Reader& r) {
  r.expectObject({"name", "match", "mode", "slots", "backend", "nodes", "reenumerates",
                  "preStartRequired", "slotPolicy", "disabled"});
  if (!r.has("name")) r.fail("missing key 'name'");
  DeviceClass c;
  c.name = r["name"].matching(kClassName, "a DNS label (lower-case letters, digits, '-')");
  if (r.has("disabled")) c.disabled = r["disabled"].boolean();
  if (!r.has("match")) {
    if (c.disabled) return c;  // dropping a built-in needs only its name
    r.fail("missing key 'match'");
  }
  Reader match = r["match"];
  if (match.arraySize() == 0) match.fail("expected at least one alternative");
  for (size_t i = 0; i < match.arraySize(); ++i) c.match.push_back(parseMatch(match.at(i)));
  if (r.has("mode")) c.mode = r["mode"].oneOf({"agent", "device"}) == "agent" ? Mode::Agent : Mode::Device;
  if (r.has("slots")) {
    c.slots = static_cast<int>(r["slots"].integer(1, 64));
    if (c.mode != Mode::Agent && c.slots != 1) r["slots"].fail("slots apply to agent mode only");
  }
  if (r.has("backend")) c.backend = r["backend"].matching(std::regex("[a-z0-9-]+"), "a backend name");
  if (c.mode == Mode::Agent && c.backend.empty()) r.fail("agent mode needs a 'backend'");
  if (r.has("nodes")) {
    Reader nodes = r["nodes"];
    nodes.expectObject({"childSubsystems", "extra", "required"});
    if (nodes.has("childSubsystems")) c.childSubsystems = nodes["childSubsystems"].strings();
    if (nodes.has("required")) {
      c.requiredNodes = nodes["required"].strings();
      for (size_t i = 0; i < c.requiredNodes.size(); ++i)
        if (c.requiredNodes[i].rfind("/dev/", 0) != 0 || c.requiredNodes[i].size() == 5)
          nodes["required"].at(i).fail("expected a pattern under /dev/, got '" + c.requiredNodes[i] + "'");
    }
    if (nodes.has("extra")) {
      c.extraNodes = nodes["extra"].strings();
      for (size_t i = 0; i < c.extraNodes.size(); ++i)
        if (c.extraNodes[i].rfind("/dev/", 0) != 0)
          nodes["extra"].at(i).fail("expected a path under /dev/, got '" + c.extraNodes[i] + "'");
    }
  }
  if (r.has("reenumerates")) c.reenumerates = r["reenumerates"].boolean();
  if (r.has("preStartRequired")) c.preStartRequired = r["preStartRequired"].boolean();
  if (r.has("slotPolicy"))
    c.slotPolicy = r["slotPolicy"].oneOf({"pack", "spread"}) == "spread" ? SlotPolicy::Spread : SlotPolicy::Pack;
  return c;
}

// Applies one document on top of `base`.
void apply(const json& doc, const std::string& origin, Config& base) {
  Reader r(doc, origin);
  r.expectObject({"resourceDomain", "builtin", "graceWindowMs", "classes"});
  if (r.has("builtin") && !r["builtin"].boolean()) base.classes.clear();
  if (r.has("resourceDomain")) base.resourceDomain = r["resourceDomain"].matching(kDomain, "a DNS domain");
  if (r.has("graceWindowMs")) base.graceWindow = std::chrono::milliseconds(r["graceWindowMs"].integer(0, 600000));
  if (!r.has("classes")) return;
  Reader classes = r["classes"];
  std::set<std::string> seen;
  for (size_t i = 0; i < classes.arraySize(); ++i) {
    DeviceClass c = parseClass(classes.at(i));
    if (!seen.insert(c.name).second) classes.at(i)["name"].fail("duplicate class '" + c.name + "'");
    std::erase_if(base.classes, [&](const DeviceClass& b) { return b.name == c.name; });
    if (!c.disabled) base.classes.push_back(std::move(c));
  }
}

json parseJson(const std::string& text, const std::string& origin) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message is "[json.exception.parse_error.101] parse error at line 3, column 5: ...".
    std::string what = e.what();
    auto pos = what.find("] ");
    throw ConfigError(origin + ": invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
  }
}

}  // namespace

Config parseConfig(const std::string& json_text, const std::string& origin) {
  Config cfg;
  apply(parseJson(builtinCatalogJson(), "builtin catalog"), "builtin catalog", cfg);
  apply(parseJson(json_text, origin), origin, cfg);
  return cfg;
}

Config loadConfig(const std::string& path) {
  if (path.empty()) return parseConfig("{}");
  auto text = readFile(path);
  if (!text) throw ConfigError("config " + path + ": cannot read: " + std::strerror(errno));
  return parseConfig(*text, "config " + path);
}

}  // namespace kubeaccel
