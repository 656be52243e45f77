"""The worker process's entry point: set the process up, then serve frames.

File descriptors 0 and 1 carry the protocol. They are duplicated and then pointed
at /dev/null and stderr, so that a plugin's `print` (or a C library writing to
stdout) can never corrupt a frame; the server logs the worker's stderr.
"""

from __future__ import annotations

import builtins
import contextlib
import faulthandler
import os
import signal
import sys
import threading
import time
from typing import Any


def _set_memory_limit(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource  # here: Unix only, and a worker elsewhere runs without a limit

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError) as e:
        print(f"weir worker: cannot set the memory limit: {e}", file=sys.stderr)


def main(boot: dict[str, Any] | None = None) -> None:
    boot = boot or {}
    # Plugin code is re-read when edited; a .pyc keyed on a whole-second mtime could
    # hide an edit made within the same second, so bytecode is neither read nor written.
    sys.dont_write_bytecode = True
    sys.pycache_prefix = os.path.join("/nonexistent-weir-pycache", str(os.getpid()))
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("TZ", "UTC")
    time.tzset()
    faulthandler.enable()
    _set_memory_limit(boot.get("memory_limit"))

    # Imported only now, on purpose: with stdout already pointing at stderr (anything
    # printed while importing pyarrow or a site hook cannot corrupt a frame) and under the
    # memory limit. They import pyarrow, so a worker without it fails here, at its start,
    # not in its first call. `BOOTSTRAP` imports this module with the standard library alone.
    from weir.engine.line_builder import BUILTINS
    from weir.engine.worker.channel import ServerChannel
    from weir.engine.worker.protocol import read_frame
    from weir.engine.worker.runtime import WorkerRuntime

    for name, obj in BUILTINS.items():
        setattr(builtins, name, obj)

    channel = ServerChannel(proto_out)
    first = read_frame(proto_in)
    if first is None or first[0].get("op") != "init":
        os._exit(2)
    runtime = WorkerRuntime(first[0], channel)
    channel.send({"op": "ready", "pid": os.getpid(), "python": sys.version.split()[0],
                  "executable": sys.executable})
    while True:
        try:
            frame = read_frame(proto_in)
        except Exception as e:  # noqa: BLE001 - any broken frame: say so and exit
            print(f"weir worker: broken frame from the server: {e}", file=sys.stderr)
            break
        if frame is None:
            break
        header, payload = frame
        op = header.get("op")
        if op == "call":
            threading.Thread(target=runtime.run_call, args=(header, payload),
                             name=f"plugin-call-{header.get('id')}", daemon=True).start()
        elif op == "reply":
            channel.deliver(header, payload)
        elif op == "shutdown":
            break
    channel.close()
    sys.stderr.flush()
    os._exit(0)
