"""Addresses: loopback, trusted networks, and the client key of an address."""

from __future__ import annotations

import ipaddress


def ip_key(host: str | None) -> str:
    return f"ip:{host or '?'}"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_in(host: str | None, networks: tuple[str, ...]) -> bool:
    """Is `host` one of `networks` (addresses or CIDR blocks such as 10.0.0.0/8)?"""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in networks
    for item in networks:
        try:
            if address in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False
