"""The host kernel's network devices, as VPP's af_packet sees them.

af_packet attaches to a kernel device by name, binds its socket to the
device's ifindex, and mirrors the VPP interface's admin state onto the device
(real-vpp-facts #3). It does not follow the device afterwards: when the device
goes, the VPP interface stays link-up with no event, and its socket is dead, so
a device made again under the same name (a new ifindex) stays black-holed.

Two kernels, one interface (:class:`KernelLinks`, a mapping of device name to
whether its TX checksum offload is on, which the packet walk reads):

* :class:`MemoryLinks`: devices a test adds and removes
  (``VppEmulator.add_kernel_interface``); each addition of a new device has a new
  ifindex, as the kernel gives;
* :class:`NetlinkLinks`: the real devices of the emulator's network namespace
  (veth pairs made by the test, by Neutron's agents through the ``vpp``
  interface driver, or by Nova), read and set with pyroute2.
"""

from __future__ import annotations

import abc
import dataclasses
import errno
import itertools
import logging
from collections.abc import Iterator, Mapping

import pyroute2
from pyroute2.ethtool import Ethtool
from pyroute2.netlink.exceptions import NetlinkError

LOG = logging.getLogger(__name__)

# The feature a veth's TX checksum offload is (``ethtool -K <dev> tx off`` clears it)
_TX_CSUM = "tx-checksum-ip-generic"
_IFF_UP = 1


class KernelLinks(Mapping[str, bool], abc.ABC):
    """Kernel devices by name -> TX checksum offload on; what af_packet needs more."""

    @abc.abstractmethod
    def ifindex(self, name: str) -> int | None:
        """The device's ifindex (None: there is no such device)."""

    @abc.abstractmethod
    def set_admin(self, ifindex: int, up: bool) -> None:
        """Set device ``ifindex`` up or down (gone: nothing happens)."""

    @abc.abstractmethod
    def admin_up(self, name: str) -> bool | None:
        """Whether the device is administratively up (None: no such device)."""


@dataclasses.dataclass
class _Device:
    ifindex: int
    tx_checksum_offload: bool
    up: bool = True


class MemoryLinks(KernelLinks):
    """Devices that exist because a test said so."""

    def __init__(self) -> None:
        self._devices: dict[str, _Device] = {}
        self._indices = itertools.count(100)  # above a real host's own devices

    def add(self, name: str, tx_checksum_offload: bool = True) -> None:
        """A new device; an existing one only changes its offload (``ethtool -K``)."""
        device = self._devices.get(name)
        if device is None:
            self._devices[name] = _Device(next(self._indices), tx_checksum_offload)
        else:
            device.tx_checksum_offload = tx_checksum_offload

    def remove(self, name: str) -> None:
        """The device goes (``ip link del``)."""
        self._devices.pop(name, None)

    def ifindex(self, name: str) -> int | None:
        device = self._devices.get(name)
        return device.ifindex if device is not None else None

    def set_admin(self, ifindex: int, up: bool) -> None:
        for device in self._devices.values():
            if device.ifindex == ifindex:
                device.up = up

    def admin_up(self, name: str) -> bool | None:
        device = self._devices.get(name)
        return device.up if device is not None else None

    def __getitem__(self, name: str) -> bool:
        return self._devices[name].tx_checksum_offload

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._devices))

    def __len__(self) -> int:
        return len(self._devices)


class NetlinkLinks(KernelLinks):
    """The real devices of one network namespace (None: the emulator's own)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    def _iproute(self) -> pyroute2.IPRoute | pyroute2.NetNS:
        # A socket per call: the emulator calls from any client's thread.
        return pyroute2.NetNS(self.netns, flags=0) if self.netns else pyroute2.IPRoute()

    def ifindex(self, name: str) -> int | None:
        with self._iproute() as ipr:
            found = ipr.link_lookup(ifname=name)
        return int(found[0]) if found else None

    def set_admin(self, ifindex: int, up: bool) -> None:
        try:
            with self._iproute() as ipr:
                ipr.link("set", index=ifindex, state="up" if up else "down")
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise
            LOG.debug("kernel device %d is gone: its admin state stays unset", ifindex)

    def admin_up(self, name: str) -> bool | None:
        with self._iproute() as ipr:
            links = ipr.get_links(ifname=name) if ipr.link_lookup(ifname=name) else []
        return bool(links[0]["flags"] & _IFF_UP) if links else None

    def __getitem__(self, name: str) -> bool:
        if self.ifindex(name) is None:
            raise KeyError(name)
        if self.netns:
            return True  # ethtool here reads only our own namespace: a veth's default
        ethtool = Ethtool()
        try:
            feature = ethtool.get_features(name).features.get(_TX_CSUM)
        finally:
            ethtool.close()
        return bool(feature is not None and feature.enable)

    def __iter__(self) -> Iterator[str]:
        with self._iproute() as ipr:
            names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
        return iter(names)

    def __len__(self) -> int:
        return sum(1 for _ in self)
