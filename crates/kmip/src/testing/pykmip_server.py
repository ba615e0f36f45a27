"""Starts a PyKMIP server for the kmip crate's tests.

usage: pykmip_server.py PORT DIR   (PORT 0 = any free port)
DIR holds server.pem, server.key, ca.pem; the database and log go there.
Prints "LISTENING <port>" once the socket is bound, then serves until
killed, or until its stdin reaches end of file: the test process holds the
other end of that pipe, so the server goes when the tests go, however they
end (a leaked handle, a static, a panic, SIGKILL). TLS 1.2 only (PyKMIP's "TLS1.2" suite) with ECDHE-ECDSA-AES-GCM.
"""
import ctypes
import multiprocessing.util
import os
import signal
import sys
import threading

from kmip.services.server import server as kmip_server


def die_with_parent():
    """PR_SET_PDEATHSIG: this process gets SIGKILL when its parent dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:
        pass


class _Anchor:
    pass


# PyKMIP forks helpers (its multiprocessing Manager, the policy monitor):
# each dies with this process, which a SIGKILL from the tests would
# otherwise leave them behind.
_ANCHOR = _Anchor()
multiprocessing.util.register_after_fork(_ANCHOR, lambda _: die_with_parent())


def exit_with_parent():
    """Exits when stdin closes (the test process is gone)."""
    # The raw descriptor: a buffered reader's lock would trouble shutdown.
    try:
        while os.read(0, 4096):
            pass
    finally:
        os._exit(0)


def main():
    threading.Thread(target=exit_with_parent, daemon=True).start()
    port = int(sys.argv[1])
    d = sys.argv[2]
    srv = kmip_server.KmipServer(
        hostname="127.0.0.1",
        port=port,
        certificate_path=os.path.join(d, "server.pem"),
        key_path=os.path.join(d, "server.key"),
        ca_path=os.path.join(d, "ca.pem"),
        auth_suite="TLS1.2",
        config_path=None,
        log_path=os.path.join(d, "server.log"),
        policy_path=None,
        enable_tls_client_auth=True,
        tls_cipher_suites=(
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,"
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        ),
        logging_level="INFO",
        database_path=os.path.join(d, "pykmip.db"),
    )
    # KmipServer ignores a falsy port argument; set it directly so 0 works.
    srv.config.settings["port"] = port
    srv.start()
    # Listen before announcing the port (serve() would only listen later,
    # leaving a window where connections are refused), with a backlog for
    # a client's whole connection pool rather than serve()'s 5.
    sock = srv._socket
    sock.listen(128)
    sock.listen = lambda backlog=None: None
    print("LISTENING", sock.getsockname()[1], flush=True)
    srv.serve()


if __name__ == "__main__":
    main()
