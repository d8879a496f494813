"""SSRF address rules: which hosts and IP addresses an image URL may reach.

Hostnames are read the way a resolver would read them (``inet_aton`` semantics: ``2130706433``,
``0x7f000001``, ``0177.0.0.1`` and ``127.1`` are all 127.0.0.1), so a literal cannot sneak past
as a "name". An address is public only when it is none of: loopback, private, link-local,
shared (100.64/10), metadata, multicast, reserved, documentation, unspecified, and, for IPv6,
when it lies in global unicast 2000::/3. IPv4 embedded in IPv6 (mapped ``::ffff:a.b.c.d``,
NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is unwrapped and judged as IPv4.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Checked in addition to the ``ipaddress`` flags, which differ between Python versions.
_BLOCKED_V4 = tuple(
    _V4(net)
    for net in (
        "0.0.0.0/8",  # "this network", incl. 0.0.0.0 (reaches localhost on Linux)
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT, incl. 100.100.100.200 (Alibaba Cloud metadata)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 (AWS/GCP/Azure/OCI metadata)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments, incl. 192.0.0.192 (Oracle Cloud metadata)
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. 255.255.255.255
        "168.63.129.16/32",  # Azure WireServer: a public-looking host endpoint
    )
)
_GLOBAL_V6 = _V6("2000::/3")
_BLOCKED_V6 = tuple(
    _V6(net)
    for net in (
        "2001::/23",  # IETF special purpose, incl. Teredo 2001::/32 (client address is obfuscated)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
_NAT64 = _V6("64:ff9b::/96")
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_HEX = re.compile(r"^0x[0-9a-f]*$")
_DEC = re.compile(r"^[0-9]+$")
_OCT = re.compile(r"^0[0-7]*$")


class HostError(ValueError):
    """A host that is malformed or that no resolver would read as intended."""


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), else the address itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address


def is_public(address: IPAddress | str) -> bool:
    """Whether connecting to this address could only reach the public internet."""
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address)
        except ValueError:
            return False
    address = unwrap(address)
    if isinstance(address, ipaddress.IPv4Address):
        blocked_v4 = any(address in net for net in _BLOCKED_V4)
        return not blocked_v4 and _flags_public(address)
    if address.scope_id is not None or address not in _GLOBAL_V6:
        return False
    return not any(address in net for net in _BLOCKED_V6) and _flags_public(address)


def _flags_public(address: IPAddress) -> bool:
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` as ``inet_aton`` does; None when it is not a numeric host.

    Raises HostError when the last label looks numeric but the whole is no valid address
    (WHATWG URL: such a host is a failure, never a DNS name).
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot
    if not labels or not _numeric(labels[-1]):
        return None
    if len(labels) > 4 or not all(_numeric(label) for label in labels):
        raise HostError(f"malformed numeric host {host!r}")
    values = [_number(label) for label in labels]
    value = 0
    for part in values[:-1]:
        if part > 0xFF:
            raise HostError(f"malformed numeric host {host!r}")
        value = (value << 8) | part
    last_bits = 8 * (5 - len(values))
    if values[-1] >= 1 << last_bits:
        raise HostError(f"malformed numeric host {host!r}")
    return ipaddress.IPv4Address((value << last_bits) | values[-1])


def _numeric(label: str) -> bool:
    return bool(_DEC.match(label) or _HEX.match(label))


def _number(label: str) -> int:
    if _HEX.match(label):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        if not _OCT.match(label):
            raise HostError(f"malformed octal number {label!r} in host")
        return int(label, 8)
    return int(label)


def parse_ipv6(host: str) -> ipaddress.IPv6Address:
    """An IPv6 literal from a URL (brackets already removed); the zone id is kept as scope."""
    literal, _, zone = host.partition("%")
    if zone.startswith("25"):  # "%25" is the URL-escaped "%"
        zone = zone[2:]
    try:
        address = ipaddress.IPv6Address(f"{literal}%{zone}" if zone else literal)
    except ValueError:
        raise HostError(f"malformed IPv6 literal {host!r}") from None
    return address


def normalise_hostname(host: str) -> str:
    """A DNS name in the form a resolver sees: lower case, IDNA-encoded, no trailing dot."""
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise HostError(f"malformed host {host!r}") from None
    if host.endswith("."):
        host = host[:-1]
    if not host or len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        raise HostError(f"malformed host {host!r}")
    return host


def is_local_name(host: str) -> bool:
    """Names that resolve locally whatever DNS says (RFC 6761)."""
    return host == "localhost" or host.endswith(".localhost")
