#include "discovery/usb_details.hpp"

#include <libusb.h>
#include <spdlog/spdlog.h>

namespace kubeaccel {
namespace {

int mbps(int speed) {
  switch (speed) {
    case LIBUSB_SPEED_LOW: return 1;  // 1.5, rounded down
    case LIBUSB_SPEED_FULL: return 12;
    case LIBUSB_SPEED_HIGH: return 480;
    case LIBUSB_SPEED_SUPER: return 5000;
    case LIBUSB_SPEED_SUPER_PLUS: return 10000;
    default: return 0;
  }
}

}  // namespace

UsbSession::UsbSession() {
  if (int rc = libusb_init(&ctx_); rc != 0) {
    spdlog::warn("libusb unavailable ({}): USB speed and port details are not reported", libusb_error_name(rc));
    ctx_ = nullptr;
  }
}

UsbSession::~UsbSession() {
  if (ctx_) libusb_exit(ctx_);
}

std::optional<UsbDetails> UsbSession::details(int bus, int address) const {
  if (!ctx_) return std::nullopt;
  libusb_device** list = nullptr;
  ssize_t n = libusb_get_device_list(ctx_, &list);
  std::optional<UsbDetails> found;
  for (ssize_t i = 0; i < n && !found; ++i) {
    libusb_device* dev = list[i];
    if (libusb_get_bus_number(dev) != bus || libusb_get_device_address(dev) != address) continue;
    UsbDetails d;
    uint8_t ports[8];
    int depth = libusb_get_port_numbers(dev, ports, sizeof ports);
    d.portPath = std::to_string(bus);
    for (int k = 0; k < depth; ++k) d.portPath += (k == 0 ? "-" : ".") + std::to_string(ports[k]);
    d.speedMbps = mbps(libusb_get_device_speed(dev));
    libusb_device_descriptor desc;
    if (libusb_get_device_descriptor(dev, &desc) == 0) d.configurations = desc.bNumConfigurations;
    found = d;
  }
  if (list) libusb_free_device_list(list, 1);
  return found;
}

}  // namespace kubeaccel
