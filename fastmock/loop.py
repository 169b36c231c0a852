"""uvloop, loaded without the TLS library.

fastmock serves plain HTTP only (TLS, when wanted, ends in a proxy in front of it), yet
``import uvloop`` loads ``ssl`` and with it libssl and libcrypto: 4.4 MB of an idle server's
memory. asyncio has a way of running without ``ssl`` (it is optional there); uvloop has none,
but reads a dozen names from it once, at import, for its TLS transport, which fastmock never
makes. So at start:
asyncio is imported with ``ssl`` marked absent, uvloop with a module of those names standing in
for it, and the stand-in is dropped again, so that a later ``import ssl`` (a user's code in the
same process) gets the real one. When asyncio or ``ssl`` is already loaded, or the stand-in does
not satisfy this uvloop, it is a plain ``import uvloop``.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def _stand_in() -> types.ModuleType:
    """The names uvloop's ``includes/stdlib.pxi`` reads from ``ssl``; none is ever used."""
    ssl = types.ModuleType("ssl", "fastmock: uvloop's TLS names, standing in for ssl at start")

    class SSLError(OSError):
        pass

    def no_tls(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("fastmock serves plain HTTP only")

    names: dict[str, Any] = {
        "SSLError": SSLError,
        "SSLWantReadError": type("SSLWantReadError", (SSLError,), {}),
        "SSLSyscallError": type("SSLSyscallError", (SSLError,), {}),
        "SSLZeroReturnError": type("SSLZeroReturnError", (SSLError,), {}),
        "CertificateError": type("CertificateError", (SSLError, ValueError), {}),
        "SSLContext": type("SSLContext", (), {"__init__": no_tls}),
        "MemoryBIO": type("MemoryBIO", (), {"__init__": no_tls}),
        "create_default_context": no_tls,
        # OpenSSL's codes, as the real module has them
        "SSL_ERROR_WANT_READ": 2, "SSL_ERROR_WANT_WRITE": 3, "SSL_ERROR_SYSCALL": 5,
    }
    ssl.__dict__.update(names)
    return ssl


def load_uvloop() -> types.ModuleType:
    """``import uvloop``, without loading ``ssl`` when nothing has loaded it yet."""
    if "uvloop" in sys.modules or "ssl" in sys.modules or "asyncio" in sys.modules:
        import uvloop

        return uvloop
    stand_in = _stand_in()
    sys.modules["ssl"] = None  # type: ignore[assignment]  # asyncio: "no ssl module"
    try:
        import asyncio  # noqa: F401

        sys.modules["ssl"] = stand_in
        try:
            import uvloop
        except (ImportError, AttributeError):  # a uvloop that reads more of ssl
            for name in [n for n in sys.modules if n == "uvloop" or n.startswith("uvloop.")]:
                del sys.modules[name]
            sys.modules.pop("ssl", None)
            import uvloop
    finally:
        if sys.modules.get("ssl") in (None, stand_in):
            sys.modules.pop("ssl", None)
    return uvloop
