#!/usr/bin/env python3
"""Generate the umockdev device descriptions in tests/testbeds/.

One shared model of the node (PCI topology, USB buses) so that parent devices
that appear in several files are byte-identical paragraphs (a dedup loader can
then skip paragraphs whose devpath already exists in the testbed).

Output format: what umockdev-record writes (P:/N:/E:/A:/H:/L: lines, the
recorded device first, then its parents up to the PCI root, blank line between).
"""
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
KERNEL = "6.1.0-18-amd64"

# ---------------------------------------------------------------- helpers


def hexs(b):
    return b.hex().upper()


def cpumask(cpus, nr=80):
    bits = 0
    for c in cpus:
        bits |= 1 << c
    digits = (nr + 3) // 4
    s = format(bits, "0%dx" % digits)
    # kernel %*pb: 32-bit groups separated by commas, most significant first
    groups = []
    while s:
        groups.insert(0, s[-8:])
        s = s[:-8]
    return ",".join(groups)


def cpulist(ranges):
    return ",".join("%d-%d" % r for r in ranges)


def expand(ranges):
    out = []
    for a, b in ranges:
        out.extend(range(a, b + 1))
    return out


SOCKET_CPUS = {
    0: [(0, 19), (40, 59)],
    1: [(20, 39), (60, 79)],
}


class Dev:
    def __init__(self, path, props, attrs=None, binattrs=None, links=None, node=None, node_contents=None):
        self.path = path
        self.props = props          # list of (k, v)
        self.attrs = attrs or []    # list of (k, v)
        self.binattrs = binattrs or []
        self.links = links or []
        self.node = node
        self.node_contents = node_contents

    def render(self):
        lines = ["P: " + self.path]
        if self.node:
            if self.node_contents:
                lines.append("N: %s=%s" % (self.node, hexs(self.node_contents)))
            else:
                lines.append("N: " + self.node)
        for k, v in sorted(self.props):
            lines.append("E: %s=%s" % (k, v))
        for k, v in sorted(self.attrs):
            v = v.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append("A: %s=%s" % (k, v))
        for k, v in sorted(self.binattrs):
            lines.append("H: %s=%s" % (k, hexs(v)))
        for k, v in sorted(self.links):
            lines.append("L: %s=%s" % (k, v))
        return "\n".join(lines) + "\n"


def dotdots(path):
    # relative prefix from the directory /sys<path> back up to /sys
    return "../" * path.count("/")


# ---------------------------------------------------------------- PCI


def pci_config(vendor, device, cls, rev, subv, subd, bridge=None):
    """First 64 bytes of PCI config space."""
    hdr = bytearray(64)
    struct.pack_into("<HHHH", hdr, 0, vendor, device, 0x0407 if bridge else 0x0406, 0x0010)
    hdr[8] = rev
    hdr[9] = cls & 0xFF
    hdr[10] = (cls >> 8) & 0xFF
    hdr[11] = (cls >> 16) & 0xFF
    hdr[12] = 0x10 if bridge else 0x00
    if bridge:
        hdr[14] = 0x81
        hdr[0x18], hdr[0x19], hdr[0x1A] = bridge  # primary, secondary, subordinate
        hdr[0x34] = 0x40
        hdr[0x3C], hdr[0x3D] = 0xFF, 0x01
        struct.pack_into("<H", hdr, 0x3E, 0x0010)
    else:
        hdr[14] = 0x00
        struct.pack_into("<I", hdr, 0x10, 0xC0000004)  # BAR0: 64-bit mem
        struct.pack_into("<HH", hdr, 0x2C, subv, subd)
        hdr[0x34] = 0x40
        hdr[0x3C], hdr[0x3D] = 0xFF, 0x01
    return bytes(hdr)


def pci_dev(path, vendor, device, cls, rev, subv, subd, driver, numa, irq,
            link=None, bridge=None, cpus=None, db=None, extra_props=None):
    slot = path.rsplit("/", 1)[1]
    if cpus is None:
        cpus = SOCKET_CPUS.get(numa, [(0, 21)])
    nr = 80 if numa in SOCKET_CPUS else 22
    modalias = "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X" % (
        vendor, device, subv if not bridge else 0, subd if not bridge else 0,
        (cls >> 16) & 0xFF, (cls >> 8) & 0xFF, cls & 0xFF)
    props = [
        ("SUBSYSTEM", "pci"),
        ("PCI_CLASS", "%X" % cls),
        ("PCI_ID", "%04X:%04X" % (vendor, device)),
        ("PCI_SUBSYS_ID", "%04X:%04X" % ((subv, subd) if not bridge else (0, 0))),
        ("PCI_SLOT_NAME", slot),
        ("MODALIAS", modalias),
        ("ID_PATH", "pci-" + slot),
        ("ID_PATH_TAG", "pci-" + slot.replace(":", "_").replace(".", "_")),
        ("USEC_INITIALIZED", "4182931"),
    ]
    if driver:
        props.append(("DRIVER", driver))
    if db:
        for k, v in db.items():
            props.append((k, v))
    if extra_props:
        props.extend(extra_props)
    attrs = [
        ("vendor", "0x%04x" % vendor),
        ("device", "0x%04x" % device),
        ("subsystem_vendor", "0x%04x" % (subv if not bridge else 0)),
        ("subsystem_device", "0x%04x" % (subd if not bridge else 0)),
        ("class", "0x%06x" % cls),
        ("revision", "0x%02x" % rev),
        ("numa_node", str(numa)),
        ("local_cpulist", cpulist(cpus)),
        ("local_cpus", cpumask(expand(cpus), nr)),
        ("irq", str(irq)),
        ("enable", "1"),
        ("msi_bus", "1"),
        ("modalias", modalias),
        ("power_state", "D0"),
        ("d3cold_allowed", "1"),
        ("dma_mask_bits", "64" if not bridge else "32"),
        ("consistent_dma_mask_bits", "64" if not bridge else "32"),
        ("broken_parity_status", "0"),
        ("ari_enabled", "0"),
        ("driver_override", "(null)"),
        ("power/control", "on"),
        ("power/runtime_status", "active"),
    ]
    if link:
        cur, width, maxs, maxw = link
        attrs += [
            ("current_link_speed", cur),
            ("current_link_width", str(width)),
            ("max_link_speed", maxs),
            ("max_link_width", str(maxw)),
        ]
    if bridge:
        attrs += [
            ("secondary_bus_number", str(bridge[1])),
            ("subordinate_bus_number", str(bridge[2])),
        ]
    links = []
    if driver:
        links.append(("driver", dotdots(path) + "bus/pci/drivers/" + driver))
    binattrs = [("config", pci_config(vendor, device, cls, rev, subv, subd, bridge))]
    return Dev(path, props, attrs, binattrs, links)


def root_port(bus_root, dev_fn, secondary, numa, device=0x2030, name="Sky Lake-E PCI Express Root Port A"):
    slot = "0000:%s" % dev_fn
    path = "/devices/pci0000:%s/%s" % (bus_root, slot)
    prim = int(dev_fn.split(":")[0], 16)
    return pci_dev(path, 0x8086, device, 0x060400, 0x04, 0, 0, "pcieport", numa, 0,
                   link=("8.0 GT/s PCIe", 16, "8.0 GT/s PCIe", 16),
                   bridge=(prim, secondary, secondary),
                   db={"ID_PCI_CLASS_FROM_DATABASE": "Bridge",
                       "ID_PCI_SUBCLASS_FROM_DATABASE": "PCI bridge",
                       "ID_PCI_INTERFACE_FROM_DATABASE": "Normal decode",
                       "ID_VENDOR_FROM_DATABASE": "Intel Corporation",
                       "ID_MODEL_FROM_DATABASE": name})


# ---------------------------------------------------------------- USB

def usb_dev_desc(bcdUSB, cls, sub, proto, mps0, vid, pid, bcdDevice, iman, iprod, iser, nconf=1):
    return struct.pack("<BBHBBBBHHHBBBB", 18, 1, bcdUSB, cls, sub, proto, mps0,
                       vid, pid, bcdDevice, iman, iprod, iser, nconf)


def usb_conf_desc(ifaces, bmAttributes, maxpower_ma, cfgval=1):
    body = b""
    for num, (ic, isc, ip, eps) in enumerate(ifaces):
        body += struct.pack("<BBBBBBBBB", 9, 4, num, 0, len(eps), ic, isc, ip, 0)
        for addr, attr, mps, interval in eps:
            body += struct.pack("<BBBBHB", 7, 5, addr, attr, mps, interval)
    total = 9 + len(body)
    return struct.pack("<BBHBBBBB", 9, 2, total, len(ifaces), cfgval, 0,
                       bmAttributes, maxpower_ma // 2) + body


class UsbSpec:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def usb_device(parent_path, ctrl_slot, bus, port, devnum, s, removable="removable"):
    """s: UsbSpec with vid pid bcd bcdUSB cls sub proto mps0 manufacturer product serial
    ifaces maxpower bmattr speed vendor_db model_db maxchild"""
    name = ("usb%d" % bus) if port is None else ("%d-%s" % (bus, port))
    path = parent_path + "/" + name
    minor = (bus - 1) * 128 + devnum - 1
    devname = "bus/usb/%03d/%03d" % (bus, devnum)
    # string indices: the kernel's root hubs use 3/2/1, devices usually 1/2/3
    iman = (3 if port is None else 1) if s.manufacturer else 0
    iprod = 2 if s.product else 0
    iser = (1 if port is None else 3) if s.serial else 0
    desc = usb_dev_desc(s.bcdUSB, s.cls, s.sub, s.proto, s.mps0, s.vid, s.pid, s.bcd,
                        iman, iprod, iser) + usb_conf_desc(s.ifaces, s.bmattr, s.maxpower)
    ifclasses = ":" + ":".join("%02x%02x%02x" % (i[0], i[1], i[2]) for i in s.ifaces) + ":"
    id_path = "pci-%s" % ctrl_slot if port is None else "pci-%s-usb-0:%s" % (ctrl_slot, port)
    props = [
        ("SUBSYSTEM", "usb"),
        ("DEVTYPE", "usb_device"),
        ("DRIVER", "usb"),
        ("DEVNAME", "/dev/" + devname),
        ("MAJOR", "189"),
        ("MINOR", str(minor)),
        ("BUSNUM", "%03d" % bus),
        ("DEVNUM", "%03d" % devnum),
        ("PRODUCT", "%x/%x/%x" % (s.vid, s.pid, s.bcd)),
        ("TYPE", "%d/%d/%d" % (s.cls, s.sub, s.proto)),
        ("ID_BUS", "usb"),
        ("ID_VENDOR_ID", "%04x" % s.vid),
        ("ID_MODEL_ID", "%04x" % s.pid),
        ("ID_REVISION", "%04x" % s.bcd),
        ("ID_USB_INTERFACES", ifclasses),
        ("ID_PATH", id_path),
        ("ID_PATH_TAG", id_path.replace(":", "_").replace(".", "_")),
        ("USEC_INITIALIZED", str(5000000 + devnum * 1371 + bus * 7)),
    ]
    vend = s.manufacturer if s.manufacturer else "%04x" % s.vid
    model = s.product if s.product else "%04x" % s.pid
    props += [
        ("ID_VENDOR", vend.replace(" ", "_")),
        ("ID_VENDOR_ENC", vend.replace(" ", "\\x20")),
        ("ID_MODEL", model.replace(" ", "_")),
        ("ID_MODEL_ENC", model.replace(" ", "\\x20")),
    ]
    serial = vend.replace(" ", "_") + "_" + model.replace(" ", "_")
    if s.serial:
        serial += "_" + s.serial
        props.append(("ID_SERIAL_SHORT", s.serial))
    props.append(("ID_SERIAL", serial))
    if s.vendor_db:
        props.append(("ID_VENDOR_FROM_DATABASE", s.vendor_db))
    if s.model_db:
        props.append(("ID_MODEL_FROM_DATABASE", s.model_db))
    if port is None:
        props += [("ID_FOR_SEAT", "usb-" + id_path.replace(":", "_").replace(".", "_")),
                  ("TAGS", ":seat:"), ("CURRENT_TAGS", ":seat:")]
    attrs = [
        ("authorized", "1"),
        ("avoid_reset_quirk", "0"),
        ("bConfigurationValue", "1"),
        ("bDeviceClass", "%02x" % s.cls),
        ("bDeviceSubClass", "%02x" % s.sub),
        ("bDeviceProtocol", "%02x" % s.proto),
        ("bMaxPacketSize0", str(s.mps0)),
        ("bMaxPower", "%dmA" % s.maxpower),
        ("bNumConfigurations", "1"),
        ("bNumInterfaces", "%2d" % len(s.ifaces)),
        ("bcdDevice", "%04x" % s.bcd),
        ("bmAttributes", "%2x" % s.bmattr),
        ("busnum", str(bus)),
        ("configuration", ""),
        ("dev", "189:%d" % minor),
        ("devnum", str(devnum)),
        ("devpath", "0" if port is None else port),
        ("idVendor", "%04x" % s.vid),
        ("idProduct", "%04x" % s.pid),
        ("ltm_capable", "no"),
        ("maxchild", str(s.maxchild)),
        ("quirks", "0x0"),
        ("removable", "unknown" if port is None else removable),
        ("rx_lanes", "1"),
        ("tx_lanes", "1"),
        ("speed", s.speed),
        ("urbnum", str(20 + devnum * 3)),
        ("version", "%2x.%02x" % (s.bcdUSB >> 8, s.bcdUSB & 0xFF)),
        ("power/control", "on" if port is None else "auto"),
        ("power/autosuspend_delay_ms", "2000" if port is None else "2000"),
        ("power/runtime_status", "active"),
    ]
    if s.manufacturer:
        attrs.append(("manufacturer", s.manufacturer))
    if s.product:
        attrs.append(("product", s.product))
    if s.serial:
        attrs.append(("serial", s.serial))
    if port is None:
        attrs += [("authorized_default", "1"), ("interface_authorized_default", "1")]
    links = [("driver", dotdots(path) + "bus/usb/drivers/usb")]
    if port is not None:
        # the kernel links a device to the port it hangs from: usb1/1-3/port -> ../1-0:1.0/usb1-port3
        hub, _, num = name.rpartition(".") if "." in port else ("usb%d" % bus, "", port)
        hub_if = ("%d-0" % bus if hub.startswith("usb") else hub) + ":1.0"
        links.append(("port", "../%s/%s-port%s" % (hub_if, hub, num)))
    dev = Dev(path, props, attrs, [("descriptors", desc)], links, node=devname, node_contents=desc)
    return dev


def usb_interface(dev_path, bus, port, s, num, driver, ports=None):
    """ports: for a hub's interface, {port number: peer port path relative to this interface, or None}.
    Port devices have no subsystem, which umockdev requires of a device, so they are
    modelled as subdirectories of the interface (what sysfs holds there anyway)."""
    name = ("%d-0" % bus if port is None else "%d-%s" % (bus, port)) + ":1.%d" % num
    path = dev_path + "/" + name
    ic, isc, ip, eps = s.ifaces[num]
    modalias = "usb:v%04Xp%04Xd%04Xdc%02Xdsc%02Xdp%02Xic%02Xisc%02Xip%02Xin%02X" % (
        s.vid, s.pid, s.bcd, s.cls, s.sub, s.proto, ic, isc, ip, num)
    props = [
        ("SUBSYSTEM", "usb"),
        ("DEVTYPE", "usb_interface"),
        ("PRODUCT", "%x/%x/%x" % (s.vid, s.pid, s.bcd)),
        ("TYPE", "%d/%d/%d" % (s.cls, s.sub, s.proto)),
        ("INTERFACE", "%d/%d/%d" % (ic, isc, ip)),
        ("MODALIAS", modalias),
        ("ID_VENDOR_FROM_DATABASE", s.vendor_db) if s.vendor_db else None,
        ("ID_MODEL_FROM_DATABASE", s.model_db) if s.model_db else None,
        ("USEC_INITIALIZED", "5012345"),
    ]
    props = [p for p in props if p]
    if driver:
        props.append(("DRIVER", driver))
    attrs = [
        ("authorized", "1"),
        ("bAlternateSetting", " 0"),
        ("bInterfaceClass", "%02x" % ic),
        ("bInterfaceSubClass", "%02x" % isc),
        ("bInterfaceProtocol", "%02x" % ip),
        ("bInterfaceNumber", "%02x" % num),
        ("bNumEndpoints", "%02x" % len(eps)),
        ("modalias", modalias),
        ("supports_autosuspend", "1"),
    ]
    links = [("driver", dotdots(path) + "bus/usb/drivers/" + driver)] if driver else []
    hub = "usb%d" % bus if port is None else "%d-%s" % (bus, port)
    for n, peer in sorted((ports or {}).items()):
        attrs.append(("%s-port%d/connect_type" % (hub, n), "hotplug"))
        if peer:
            links.append(("%s-port%d/peer" % (hub, n), peer))
    return Dev(path, props, attrs, [], links)


def root_hub_spec(bus_serial, superspeed=False, maxchild=16):
    return UsbSpec(vid=0x1D6B, pid=0x0003 if superspeed else 0x0002, bcd=0x0601,
                   bcdUSB=0x0300 if superspeed else 0x0200, cls=9, sub=0, proto=3 if superspeed else 1,
                   mps0=9 if superspeed else 64, manufacturer="Linux %s xhci-hcd" % KERNEL,
                   product="xHCI Host Controller", serial=bus_serial,
                   ifaces=[(9, 0, 0, [(0x81, 3, 4, 12)])], maxpower=0, bmattr=0xE0,
                   speed="5000" if superspeed else "480", vendor_db="Linux Foundation",
                   model_db="3.0 root hub" if superspeed else "2.0 root hub", maxchild=maxchild)


# An xHCI controller has two root hubs: a USB 2 one (high speed) and a USB 3 one
# (SuperSpeed), numbered in that order. One physical socket is a port on each,
# and the kernel links the two with "peer" links (drivers/usb/core/port.c).


class Xhci:
    def __init__(self, path, slot, hs_bus, hs_ports, ss_ports, sockets):
        """sockets: {USB 2 port: USB 3 port} for the sockets that have both halves."""
        self.path, self.slot = path, slot
        self.hs_bus, self.ss_bus = hs_bus, hs_bus + 1
        self.hs_ports, self.ss_ports, self.sockets = hs_ports, ss_ports, sockets

    def root_hub(self, superspeed):
        bus = self.ss_bus if superspeed else self.hs_bus
        return usb_device(self.path, self.slot, bus, None, 1,
                          root_hub_spec(self.slot, superspeed, self.ss_ports if superspeed else self.hs_ports))

    def root_interface(self, superspeed):
        bus, n = (self.ss_bus, self.ss_ports) if superspeed else (self.hs_bus, self.hs_ports)
        other = self.hs_bus if superspeed else self.ss_bus
        pairs = {v: k for k, v in self.sockets.items()} if superspeed else self.sockets
        ports = {}
        for p in range(1, n + 1):
            q = pairs.get(p)
            ports[p] = "../../../usb%d/%d-0:1.0/usb%d-port%d" % (other, other, other, q) if q else None
        spec = root_hub_spec(self.slot, superspeed, n)
        return usb_interface(self.path + "/usb%d" % bus, bus, None, spec, 0, "hub", ports)

    def bus_path(self, superspeed=False):
        return self.path + "/usb%d" % (self.ss_bus if superspeed else self.hs_bus)

    def chain(self, parents):
        return [self.root_interface(False), self.root_hub(False),
                self.root_interface(True), self.root_hub(True)] + parents


# ---------------------------------------------------------------- the node

# USB controller 1: PCH xHCI, socket 0. Buses 1 (USB 2) and 2 (USB 3).
XHCI1_SLOT = "0000:00:14.0"
XHCI1_PATH = "/devices/pci0000:00/" + XHCI1_SLOT
# usb1-port3 <-> usb2-port1 is the socket of the NCS2; ports 7-10 are USB 2 only.
XHCI1 = Xhci(XHCI1_PATH, XHCI1_SLOT, 1, 10, 6, {3: 1, 6: 2, 2: 3, 4: 4, 5: 5})


def xhci1():
    return pci_dev(XHCI1_PATH, 0x8086, 0xA1AF, 0x0C0330, 0x09, 0x15D9, 0x095D, "xhci_hcd", 0, 16,
                   db={"ID_PCI_CLASS_FROM_DATABASE": "Serial bus controller",
                       "ID_PCI_SUBCLASS_FROM_DATABASE": "USB controller",
                       "ID_PCI_INTERFACE_FROM_DATABASE": "XHCI",
                       "ID_VENDOR_FROM_DATABASE": "Intel Corporation",
                       "ID_MODEL_FROM_DATABASE": "C620 Series Chipset Family USB 3.0 xHCI Controller"})


# USB controller 2: Renesas add-in xHCI card behind a socket-1 root port. Buses 3 and 4.
RP_D7 = lambda: root_port("d7", "d7:00.0", 0xD8, 1)
XHCI2_SLOT = "0000:d8:00.0"
XHCI2_PATH = "/devices/pci0000:d7/0000:d7:00.0/" + XHCI2_SLOT
XHCI2 = Xhci(XHCI2_PATH, XHCI2_SLOT, 3, 4, 4, {1: 1, 2: 2, 3: 3, 4: 4})


def xhci2():
    return pci_dev(XHCI2_PATH, 0x1912, 0x0014, 0x0C0330, 0x03, 0x1912, 0x0014, "xhci_hcd", 1, 120,
                   link=("5.0 GT/s PCIe", 1, "5.0 GT/s PCIe", 1),
                   db={"ID_PCI_CLASS_FROM_DATABASE": "Serial bus controller",
                       "ID_PCI_SUBCLASS_FROM_DATABASE": "USB controller",
                       "ID_PCI_INTERFACE_FROM_DATABASE": "XHCI",
                       "ID_VENDOR_FROM_DATABASE": "Renesas Technology Corp.",
                       "ID_MODEL_FROM_DATABASE": "uPD720201 USB 3.0 Host Controller"})


MOVIDIUS_IF = (0xFF, 0x11, 0xFF, [(0x81, 2, 512, 0), (0x01, 2, 512, 0)])

NCS = UsbSpec(vid=0x03E7, pid=0x2150, bcd=0x0001, bcdUSB=0x0200, cls=0, sub=0, proto=0, mps0=64,
              manufacturer="Movidius Ltd.", product="Movidius MA2X5X", serial="03e72150",
              ifaces=[MOVIDIUS_IF], maxpower=500, bmattr=0x80, speed="480",
              vendor_db="Intel Corp.", model_db="Movidius MA2X5X", maxchild=0)
NCS2_UNBOOTED = UsbSpec(vid=0x03E7, pid=0x2485, bcd=0x0001, bcdUSB=0x0200, cls=0, sub=0, proto=0, mps0=64,
                        manufacturer="Movidius Ltd.", product="Movidius MyriadX", serial="03e72485",
                        ifaces=[MOVIDIUS_IF], maxpower=500, bmattr=0x80, speed="480",
                        vendor_db="Intel Corp.", model_db="Movidius MyriadX", maxchild=0)
NCS2_BOOTED = UsbSpec(vid=0x03E7, pid=0xF63B, bcd=0x0001, bcdUSB=0x0200, cls=0, sub=0, proto=0, mps0=64,
                      manufacturer="Movidius Ltd.", product="VSC Loopback Device", serial="1841E1C00A7B3D00",
                      ifaces=[MOVIDIUS_IF], maxpower=500, bmattr=0x80, speed="480",
                      vendor_db="Intel Corp.", model_db="Myriad VPU [Movidius Neural Compute Stick]", maxchild=0)
CORAL_UNBOOTED = UsbSpec(vid=0x1A6E, pid=0x089A, bcd=0x0100, bcdUSB=0x0200, cls=0, sub=0, proto=0, mps0=64,
                         manufacturer=None, product=None, serial=None,
                         ifaces=[(0xFE, 0x01, 0x02, [])], maxpower=500, bmattr=0x80, speed="480",
                         vendor_db="Global Unichip Corp.", model_db=None, maxchild=0)
CORAL_BOOTED = UsbSpec(vid=0x18D1, pid=0x9302, bcd=0x0100, bcdUSB=0x0210, cls=0, sub=0, proto=0, mps0=64,
                       manufacturer=None, product=None, serial=None,
                       ifaces=[(0xFF, 0xFF, 0xFF, [(0x01, 2, 512, 0), (0x81, 2, 512, 0),
                                                   (0x82, 2, 512, 0), (0x83, 3, 16, 4)])],
                       maxpower=500, bmattr=0x80, speed="480",
                       vendor_db="Google Inc.", model_db=None, maxchild=0)
NCS2_BOOTED_SS = UsbSpec(**dict(NCS2_BOOTED.__dict__, bcdUSB=0x0320, mps0=9, speed="5000",
                                ifaces=[(0xFF, 0x11, 0xFF, [(0x81, 2, 1024, 0), (0x01, 2, 1024, 0)])]))
FTDI_CLONE = UsbSpec(vid=0x0403, pid=0x6001, bcd=0x0600, bcdUSB=0x0200, cls=0, sub=0, proto=0, mps0=8,
                     manufacturer="FTDI", product="FT232R USB UART", serial="A50285BI",
                     ifaces=[(0xFF, 0xFF, 0xFF, [(0x81, 2, 64, 0), (0x02, 2, 64, 0)])], maxpower=90,
                     bmattr=0xA0, speed="12", vendor_db="Future Technology Devices International, Ltd",
                     model_db="FT232 Serial (UART) IC", maxchild=0)
MOUSE = UsbSpec(vid=0x046D, pid=0xC077, bcd=0x7200, bcdUSB=0x0200, cls=0, sub=0, proto=0, mps0=8,
                manufacturer="Logitech", product="USB Optical Mouse", serial=None,
                ifaces=[(0x03, 0x01, 0x02, [(0x81, 3, 4, 10)])], maxpower=100, bmattr=0xA0, speed="1.5",
                vendor_db="Logitech, Inc.", model_db="M105 Optical Mouse", maxchild=0)
FLASH = UsbSpec(vid=0x0781, pid=0x5583, bcd=0x0100, bcdUSB=0x0210, cls=0, sub=0, proto=0, mps0=64,
                manufacturer="SanDisk", product="Ultra Fit", serial="4C530001230815117325",
                ifaces=[(0x08, 0x06, 0x50, [(0x81, 2, 512, 0), (0x02, 2, 512, 0)])],
                maxpower=224, bmattr=0x80, speed="480",
                vendor_db="SanDisk Corp.", model_db="Ultra Fit", maxchild=0)


def stick(parent_path, ctrl_slot, bus, port, devnum, spec, if_driver=None):
    d = usb_device(parent_path, ctrl_slot, bus, port, devnum, spec)
    ifs = [usb_interface(d.path, bus, port, spec, i, if_driver) for i in range(len(spec.ifaces))]
    return ifs + [d]


def bus1_chain():
    return XHCI1.chain([xhci1()])


def bus2_chain():
    return XHCI2.chain([xhci2(), RP_D7()])


# A USB 3 hub (VIA VL817) in the PCH socket usb1-port6/usb2-port2. Like every USB 3
# hub it is two devices, one on each root hub, and their ports are peers by number.
HUB_HS = UsbSpec(vid=0x2109, pid=0x2817, bcd=0x9013, bcdUSB=0x0210, cls=9, sub=0, proto=2, mps0=64,
                 manufacturer="VIA Labs, Inc.", product="USB2.0 Hub", serial=None,
                 ifaces=[(9, 0, 2, [(0x81, 3, 1, 12)])], maxpower=0, bmattr=0xE0, speed="480",
                 vendor_db="VIA Labs, Inc.", model_db="USB2.0 Hub", maxchild=4)
HUB_SS = UsbSpec(vid=0x2109, pid=0x0817, bcd=0x9013, bcdUSB=0x0320, cls=9, sub=0, proto=3, mps0=9,
                 manufacturer="VIA Labs, Inc.", product="USB3.0 Hub", serial=None,
                 ifaces=[(9, 0, 0, [(0x81, 3, 2, 8)])], maxpower=0, bmattr=0xE0, speed="5000",
                 vendor_db="VIA Labs, Inc.", model_db="USB3.0 Hub", maxchild=4)


def usb3_hub_chain():
    hs = usb_device(XHCI1.bus_path(False), XHCI1_SLOT, 1, "6", 9, HUB_HS)
    ss = usb_device(XHCI1.bus_path(True), XHCI1_SLOT, 2, "2", 3, HUB_SS)
    hs_if = usb_interface(hs.path, 1, "6", HUB_HS, 0, "hub",
                          {n: "../../../../usb2/2-2/2-2:1.0/2-2-port%d" % n for n in range(1, 5)})
    ss_if = usb_interface(ss.path, 2, "2", HUB_SS, 0, "hub",
                          {n: "../../../../usb1/1-6/1-6:1.0/1-6-port%d" % n for n in range(1, 5)})
    return [hs_if, hs, ss_if, ss] + bus1_chain()


# ---------------------------------------------------------------- files

def class_dev(path, subsystem, devname, major, minor, devtype=None, attrs=None, extra=None):
    props = [("SUBSYSTEM", subsystem), ("DEVNAME", "/dev/" + devname),
             ("MAJOR", str(major)), ("MINOR", str(minor)), ("USEC_INITIALIZED", "6120033")]
    if devtype:
        props.append(("DEVTYPE", devtype))
    if extra:
        props += extra
    a = [("dev", "%d:%d" % (major, minor))] + (attrs or [])
    return Dev(path, props, a, node=devname)


def f_movidius_ncs():
    return stick(XHCI1.bus_path(), XHCI1_SLOT, 1, "2", 3, NCS) + bus1_chain()


def f_ncs2_unbooted():
    return stick(XHCI1.bus_path(), XHCI1_SLOT, 1, "3", 4, NCS2_UNBOOTED) + bus1_chain()


def f_ncs2_booted():
    return stick(XHCI1.bus_path(), XHCI1_SLOT, 1, "3", 5, NCS2_BOOTED) + bus1_chain()


def f_ncs2_booted_usb3():
    # The booted stick comes back at 5 Gbps on the socket's USB 3 half: usb2-port1.
    return stick(XHCI1.bus_path(True), XHCI1_SLOT, 2, "1", 2, NCS2_BOOTED_SS) + bus1_chain()


def f_ncs2_unbooted_hub():
    return stick(XHCI1.bus_path() + "/1-6", XHCI1_SLOT, 1, "6.4", 10, NCS2_UNBOOTED) + usb3_hub_chain()


def f_ncs2_booted_hub():
    return stick(XHCI1.bus_path(True) + "/2-2", XHCI1_SLOT, 2, "2.4", 4, NCS2_BOOTED_SS) + usb3_hub_chain()


def f_coral_usb_unbooted():
    return stick(XHCI2.bus_path(), XHCI2_SLOT, 3, "1", 2, CORAL_UNBOOTED) + bus2_chain()


def f_coral_usb_booted():
    return stick(XHCI2.bus_path(), XHCI2_SLOT, 3, "1", 3, CORAL_BOOTED) + bus2_chain()


def f_ftdi(port, devnum):
    # Cheap FT232R clones all report the factory serial A50285BI.
    return stick(XHCI1.bus_path(), XHCI1_SLOT, 1, str(port), devnum, FTDI_CLONE, if_driver="ftdi_sio") + bus1_chain()


def f_coral_pcie():
    rp = root_port("00", "00:1c.0", 0x03, 0, device=0xA190,
                   name="C620 Series Chipset Family PCI Express Root Port #1")
    rp.attrs = [(k, v) for k, v in rp.attrs if not k.endswith("link_width") and not k.endswith("link_speed")] + [
        ("current_link_speed", "5.0 GT/s PCIe"), ("current_link_width", "1"),
        ("max_link_speed", "8.0 GT/s PCIe"), ("max_link_width", "1")]
    pdev_path = rp.path + "/0000:03:00.0"
    p = pci_dev(pdev_path, 0x1AC1, 0x089A, 0x088000, 0x00, 0x1AC1, 0x089A, "apex", 0, 0,
                link=("5.0 GT/s PCIe", 1, "5.0 GT/s PCIe", 1),
                db={"ID_PCI_CLASS_FROM_DATABASE": "Generic system peripheral",
                    "ID_PCI_SUBCLASS_FROM_DATABASE": "System peripheral",
                    "ID_VENDOR_FROM_DATABASE": "Global Unichip Corp.",
                    "ID_MODEL_FROM_DATABASE": "Coral Edge TPU"})
    apex = class_dev(pdev_path + "/apex/apex_0", "apex", "apex_0", 239, 0, attrs=[
        ("device_type", "apex"), ("driver_version", "1.2"), ("framework_version", "1.1.4"),
        ("pci_address", "0000:03:00.0"), ("status", "ALIVE"), ("temp", "41300"),
    ])
    return [apex, p, rp]


def f_hailo8():
    rp = root_port("00", "00:1c.4", 0x04, 0, device=0xA194,
                   name="C620 Series Chipset Family PCI Express Root Port #5")
    pdev_path = rp.path + "/0000:04:00.0"
    p = pci_dev(pdev_path, 0x1E60, 0x2864, 0x0B4000, 0x01, 0x1E60, 0x2864, "hailo", 0, 0,
                link=("8.0 GT/s PCIe", 4, "8.0 GT/s PCIe", 4),
                db={"ID_PCI_CLASS_FROM_DATABASE": "Processor",
                    "ID_PCI_SUBCLASS_FROM_DATABASE": "Co-processor",
                    "ID_VENDOR_FROM_DATABASE": "Hailo Technologies Ltd.",
                    "ID_MODEL_FROM_DATABASE": "Hailo-8 AI Processor"})
    ch = class_dev(pdev_path + "/hailo_chardev/hailo0", "hailo_chardev", "hailo0", 238, 0,
                   attrs=[("board_location", "0000:04:00.0"), ("device_id", "0x2864")])
    return [ch, p, rp]


def f_intel_fpga_pac():
    rp = root_port("5d", "5d:00.0", 0x5E, 1)
    pdev_path = rp.path + "/0000:5e:00.0"
    p = pci_dev(pdev_path, 0x8086, 0x09C4, 0x120000, 0x01, 0x8086, 0x0000, "intel-fpga-pci", 1, 0,
                link=("8.0 GT/s PCIe", 8, "8.0 GT/s PCIe", 8),
                db={"ID_PCI_CLASS_FROM_DATABASE": "Processing accelerators",
                    "ID_VENDOR_FROM_DATABASE": "Intel Corporation",
                    "ID_MODEL_FROM_DATABASE": "PAC Arria 10 FPGA"})
    container = Dev(pdev_path + "/fpga/intel-fpga-dev.0",
                    [("SUBSYSTEM", "fpga"), ("USEC_INITIALIZED", "6120101")])
    fme_path = container.path + "/intel-fpga-fme.0"
    fme = class_dev(fme_path, "platform", "intel-fpga-fme.0", 237, 0,
                    extra=[("DRIVER", "intel-fpga-fme"), ("MODALIAS", "platform:intel-fpga-fme")],
                    attrs=[("modalias", "platform:intel-fpga-fme"), ("driver_override", "(null)"),
                           ("ports_num", "1"), ("bitstream_id", "0x123000200000185"),
                           ("bitstream_metadata", "0x1807181")])
    fme.links = [("driver", dotdots(fme_path) + "bus/platform/drivers/intel-fpga-fme")]
    port_path = container.path + "/intel-fpga-port.0"
    port = class_dev(port_path, "platform", "intel-fpga-port.0", 236, 0,
                     extra=[("DRIVER", "intel-fpga-port"), ("MODALIAS", "platform:intel-fpga-port")],
                     attrs=[("modalias", "platform:intel-fpga-port"), ("driver_override", "(null)"),
                            ("id", "0"), ("afu_id", "d8424dc4a4a3c413f89e433683f9040b")])
    port.links = [("driver", dotdots(port_path) + "bus/platform/drivers/intel-fpga-port")]
    return [fme, port, container, p, rp]


def f_xilinx_alveo():
    rp = root_port("ae", "ae:00.0", 0xAF, 1)
    mgmt_path = rp.path + "/0000:af:00.0"
    user_path = rp.path + "/0000:af:00.1"
    db = {"ID_PCI_CLASS_FROM_DATABASE": "Processing accelerators",
          "ID_VENDOR_FROM_DATABASE": "Xilinx Corporation"}
    mgmt = pci_dev(mgmt_path, 0x10EE, 0x5000, 0x120000, 0x00, 0x10EE, 0x000E, "xclmgmt", 1, 0,
                   link=("8.0 GT/s PCIe", 16, "8.0 GT/s PCIe", 16), db=db)
    user = pci_dev(user_path, 0x10EE, 0x5001, 0x120000, 0x00, 0x10EE, 0x000E, "xocl", 1, 0,
                   link=("8.0 GT/s PCIe", 16, "8.0 GT/s PCIe", 16), db=db)
    # instance = (domain << 16) | (bus << 8) | devfn = 0xaf00 for 0000:af:00.0
    xclmgmt = class_dev(mgmt_path + "/xrt_mgmt/xclmgmt44800", "xrt_mgmt", "xclmgmt44800", 235, 0)
    card = class_dev(user_path + "/drm/card1", "drm", "dri/card1", 226, 1, devtype="drm_minor",
                     extra=[("ID_PATH", "pci-0000:af:00.1"), ("ID_PATH_TAG", "pci-0000_af_00_1"),
                            ("ID_FOR_SEAT", "drm-pci-0000_af_00_1"), ("TAGS", ":seat:uaccess:"),
                            ("CURRENT_TAGS", ":seat:uaccess:")])
    render = class_dev(user_path + "/drm/renderD128", "drm", "dri/renderD128", 226, 128, devtype="drm_minor",
                       extra=[("ID_PATH", "pci-0000:af:00.1"), ("ID_PATH_TAG", "pci-0000_af_00_1")])
    return [render, card, user, xclmgmt, mgmt, rp]


def f_nvidia_gpu():
    rp = root_port("3a", "3a:00.0", 0x3B, 0)
    p = pci_dev(rp.path + "/0000:3b:00.0", 0x10DE, 0x20B0, 0x030200, 0xA1, 0x10DE, 0x134F, "nvidia", 0, 114,
                link=("16.0 GT/s PCIe", 16, "16.0 GT/s PCIe", 16),
                db={"ID_PCI_CLASS_FROM_DATABASE": "Display controller",
                    "ID_PCI_SUBCLASS_FROM_DATABASE": "3D controller",
                    "ID_VENDOR_FROM_DATABASE": "NVIDIA Corporation",
                    "ID_MODEL_FROM_DATABASE": "GA100 [A100 SXM4 40GB]"})
    return [p, rp]


def f_accel():
    path = "/devices/pci0000:00/0000:00:0b.0"
    p = pci_dev(path, 0x8086, 0x7D1D, 0x120000, 0x04, 0x17AA, 0x2234, "intel_vpu", -1, 168,
                cpus=[(0, 21)],
                db={"ID_PCI_CLASS_FROM_DATABASE": "Processing accelerators",
                    "ID_VENDOR_FROM_DATABASE": "Intel Corporation",
                    "ID_MODEL_FROM_DATABASE": "Meteor Lake NPU"})
    a = class_dev(path + "/accel/accel0", "accel", "accel/accel0", 261, 0, devtype="accel_minor",
                  extra=[("ID_PATH", "pci-0000:00:0b.0"), ("ID_PATH_TAG", "pci-0000_00_0b_0")])
    return [a, p]


def f_unrelated():
    out = []
    out += stick(XHCI1.bus_path(), XHCI1_SLOT, 1, "4", 2, MOUSE, if_driver="usbhid")
    out += stick(XHCI1.bus_path(), XHCI1_SLOT, 1, "5", 6, FLASH, if_driver="usb-storage")
    # the root hubs with their own interfaces (hub driver), then the controller
    out += bus1_chain()
    # an onboard NIC with its net child (no device node)
    rp = root_port("17", "17:00.0", 0x18, 0)
    nic_path = rp.path + "/0000:18:00.0"
    nic = pci_dev(nic_path, 0x8086, 0x1521, 0x020000, 0x01, 0x15D9, 0x1521, "igb", 0, 0,
                  link=("5.0 GT/s PCIe", 4, "5.0 GT/s PCIe", 4),
                  db={"ID_PCI_CLASS_FROM_DATABASE": "Network controller",
                      "ID_PCI_SUBCLASS_FROM_DATABASE": "Ethernet controller",
                      "ID_VENDOR_FROM_DATABASE": "Intel Corporation",
                      "ID_MODEL_FROM_DATABASE": "I350 Gigabit Network Connection"})
    net = Dev(nic_path + "/net/eno1",
              [("SUBSYSTEM", "net"), ("INTERFACE", "eno1"), ("IFINDEX", "2"),
               ("ID_NET_NAME_ONBOARD", "eno1"), ("ID_NET_NAME_PATH", "enp24s0f0"),
               ("ID_NET_NAME_MAC", "enxac1f6b0a1b2c"), ("USEC_INITIALIZED", "6120500")],
              [("address", "ac:1f:6b:0a:1b:2c"), ("addr_len", "6"), ("ifindex", "2"),
               ("mtu", "1500"), ("operstate", "up"), ("type", "1")])
    out += [net, nic, rp]
    return out


FILES = {
    "movidius-ncs.umockdev": f_movidius_ncs,
    "movidius-ncs2-unbooted.umockdev": f_ncs2_unbooted,
    "movidius-ncs2-booted.umockdev": f_ncs2_booted,
    "movidius-ncs2-booted-usb3.umockdev": f_ncs2_booted_usb3,
    "movidius-ncs2-unbooted-hub.umockdev": f_ncs2_unbooted_hub,
    "movidius-ncs2-booted-hub.umockdev": f_ncs2_booted_hub,
    "ftdi-twin-a.umockdev": lambda: f_ftdi(7, 7),
    "ftdi-twin-b.umockdev": lambda: f_ftdi(8, 8),
    "coral-usb-unbooted.umockdev": f_coral_usb_unbooted,
    "coral-usb-booted.umockdev": f_coral_usb_booted,
    "coral-pcie.umockdev": f_coral_pcie,
    "hailo8.umockdev": f_hailo8,
    "intel-fpga-pac.umockdev": f_intel_fpga_pac,
    "xilinx-alveo.umockdev": f_xilinx_alveo,
    "nvidia-gpu.umockdev": f_nvidia_gpu,
    "accel.umockdev": f_accel,
    "unrelated.umockdev": f_unrelated,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    seen = {}
    for fname, fn in FILES.items():
        devs = fn()
        text = "\n".join(d.render() for d in devs)
        for d in devs:
            r = d.render()
            if d.path in seen and seen[d.path][1] != r and not fname.startswith(("movidius-ncs2-booted", "coral-usb-booted")):
                # booted/unbooted variants of a stick share a path on purpose
                print("WARNING: %s differs between %s and %s" % (d.path, seen[d.path][0], fname))
            seen.setdefault(d.path, (fname, r))
        with open(os.path.join(OUT, fname), "w") as f:
            f.write(text)
        print("wrote", fname, len(devs), "devices")


if __name__ == "__main__":
    main()
