"""Which webhook URLs imgdrop will call (SSRF): checked when an endpoint is registered and again
at every delivery, since DNS can change between the two.

- `https` only; no credentials in the URL.
- The host must resolve, and every address it resolves to must be a public unicast address: no
  private, loopback, link-local (the instance metadata service 169.254.169.254 and fd00:ec2::254
  among them), shared (100.64/10), multicast, unspecified, reserved or documentation address,
  also when one hides inside an IPv6 form (IPv4-mapped, 6to4, NAT64, Teredo).
- A delivery connects to the address that was checked, never to a second resolution of the name
  (see imgdrop.webhooks.delivery), and follows no redirect.
- The local stack, and only it (`IMGDROP_WEBHOOK_ALLOW_LOCAL_HTTP`), also allows `http://127.0.0.1`.
- A path or query with characters HTTP cannot carry as they are (`/hé`) is percent-encoded in UTF-8
  as browsers send it (`/h%C3%A9`), escapes already there kept: the URL is stored so (`normalize`),
  and one stored before is encoded again at every delivery (`parse`).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from imgdrop.errors import ImgdropError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LOCAL_HOST = "127.0.0.1"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Not global, whatever the ipaddress module's tables say in a given Python version.
_REFUSED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "::ffff:0:0/96", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7",
    "fe80::/10", "fec0::/10", "ff00::/8",
))
# Left as they are when encoding: `%` (escapes already made) and what RFC 3986 allows unescaped in
# a path (and, for a query or fragment, `?` too). quote() never escapes letters, digits and `_.-~`.
_PATH_SAFE = "/%:@!$&'()*+,;="
_QUERY_SAFE = _PATH_SAFE + "?"


class WebhookUrlInvalid(ImgdropError):
    def __init__(self, title: str):
        super().__init__("webhook_url_invalid", title, 400, "/url")


@dataclass(frozen=True)
class Target:
    """A URL that passed the checks: where to connect (the checked addresses) and what to send."""

    scheme: str
    host: str  # the name, for the Host header, SNI and the certificate check
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]


def is_public_address(address: IPAddress) -> bool:
    """A public unicast address, also when an IPv6 form embeds an IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public_address(embedded)
        if address.teredo is not None:
            return False
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _NAT64_LOCAL:
            return False
    if any(address in network for network in _REFUSED if network.version == address.version):
        return False
    return address.is_global and not (
        address.is_multicast or address.is_private or address.is_loopback or address.is_link_local
        or address.is_reserved or address.is_unspecified
    )


def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to (tests replace this to answer what a DNS server would)."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in answers))


def normalize(url: str) -> str:
    """The URL as a browser would send it: path, query and fragment percent-encoded (UTF-8), escapes
    already there kept, anything else as it was. What is not a URL comes back as it was, for
    `check` to refuse."""
    if not isinstance(url, str) or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    return urlunsplit(parts._replace(path=quote(parts.path, safe=_PATH_SAFE),
                                     query=quote(parts.query, safe=_QUERY_SAFE),
                                     fragment=quote(parts.fragment, safe=_QUERY_SAFE)))


def parse(url: str, *, allow_local: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an acceptable URL's shape, before any resolution."""
    if not isinstance(url, str) or len(url) > 2048 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise WebhookUrlInvalid("The webhook URL is not a valid URL.")
    try:
        # normalized here too: a URL registered before `normalize` existed may hold characters
        # that http.client, which sends the request line as ASCII, cannot carry
        parts = urlsplit(normalize(url))
        port = parts.port
    except ValueError:
        raise WebhookUrlInvalid("The webhook URL is not a valid URL.") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookUrlInvalid("The webhook URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlInvalid("The webhook URL cannot carry credentials.")
    local = allow_local and host == LOCAL_HOST
    if scheme != "https" and not (local and scheme == "http"):
        raise WebhookUrlInvalid("The webhook URL must use https.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), path


def check(url: str, *, allow_local: bool = False) -> Target:
    """The URL's target with its checked addresses, or WebhookUrlInvalid (400 webhook_url_invalid)."""
    scheme, host, port, path = parse(url, allow_local=allow_local)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise WebhookUrlInvalid("The webhook URL's host does not resolve.") from None
        if not addresses:
            raise WebhookUrlInvalid("The webhook URL's host does not resolve.")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise WebhookUrlInvalid("The webhook URL's host does not resolve to an IP address.") from None
        if allow_local and host == LOCAL_HOST and str(address) == LOCAL_HOST:
            continue
        if not is_public_address(address):
            # Any refused address refuses the URL: a name answering one public and one private
            # address is a way to reach the private one.
            raise WebhookUrlInvalid(
                "The webhook URL must not resolve to a private, loopback, link-local, multicast or "
                "metadata address."
            )
    return Target(scheme, host.strip("[]"), port, path, tuple(addresses))
