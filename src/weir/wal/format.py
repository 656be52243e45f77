"""The WAL file format.

    b"WEIRWAL1" | u64 seq | u32 header length | header JSON | op payloads | u32 crc32

The header lists the ops (`db`, `table`, payload length); each payload is one Arrow IPC
stream holding that table's rows of the flush. The trailing CRC covers everything before
it, so a torn or corrupted file is recognised and never half-applied.

The header may also carry `checkpoints`: WAL triggers' progress (`db`, `trigger`, `seq`:
the last WAL file the trigger has fully processed). A checkpoint travels in the same file
as the rows its plugin call wrote back, so both are durable together or not at all.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

import pyarrow as pa

MAGIC = b"WEIRWAL1"


class WalCorrupt(Exception):
    """A WAL file that fails its checksum or cannot be decoded."""


@dataclass
class WalOp:
    db: str
    table: str
    batch: pa.RecordBatch


#: a WAL trigger: (database, trigger name)
TriggerKey = tuple[str, str]


@dataclass
class WalFile:
    seq: int
    ops: list[WalOp] = field(default_factory=list)
    #: wall-clock time the file was written, ns since epoch
    written_ns: int = 0
    #: WAL triggers' progress recorded with this file (see the module docstring)
    checkpoints: dict[TriggerKey, int] = field(default_factory=dict)


def wal_path(node_id: str, seq: int) -> str:
    return f"{node_id}/wal/{seq:011d}.wal"


def seq_from_path(path: str) -> int | None:
    name = path.rsplit("/", 1)[-1]
    if not name.endswith(".wal"):
        return None
    try:
        return int(name[:-4])
    except ValueError:
        return None


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def encode(wal: WalFile) -> bytes:
    payloads = [_ipc(op.batch) for op in wal.ops]
    doc: dict[str, object] = {
        "written_ns": wal.written_ns,
        "ops": [
            {"db": op.db, "table": op.table, "len": len(p)}
            for op, p in zip(wal.ops, payloads, strict=True)
        ],
    }
    if wal.checkpoints:
        doc["checkpoints"] = [{"db": db, "trigger": name, "seq": seq}
                              for (db, name), seq in sorted(wal.checkpoints.items())]
    header = json.dumps(doc, separators=(",", ":")).encode()
    body = b"".join([MAGIC, struct.pack(">QI", wal.seq, len(header)), header, *payloads])
    return body + struct.pack(">I", zlib.crc32(body))


def decode(data: bytes) -> WalFile:
    if len(data) < len(MAGIC) + 16 or not data.startswith(MAGIC):
        raise WalCorrupt("not a Weir WAL file")
    body, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
    if zlib.crc32(body) != crc:
        raise WalCorrupt("checksum mismatch")
    seq, hlen = struct.unpack_from(">QI", body, len(MAGIC))
    pos = len(MAGIC) + 12
    try:
        header = json.loads(body[pos : pos + hlen])
        pos += hlen
        wal = WalFile(seq=seq, written_ns=header.get("written_ns", 0),
                      checkpoints={(c["db"], c["trigger"]): int(c["seq"])
                                   for c in header.get("checkpoints", ())})
        for op in header["ops"]:
            chunk = body[pos : pos + op["len"]]
            pos += op["len"]
            reader = pa.ipc.open_stream(chunk)
            batches = list(reader)
            batch = batches[0] if len(batches) == 1 else pa.Table.from_batches(
                batches, reader.schema
            ).combine_chunks().to_batches()[0]
            wal.ops.append(WalOp(op["db"], op["table"], batch))
    except (ValueError, KeyError, pa.ArrowInvalid) as e:
        raise WalCorrupt(f"undecodable: {e}") from e
    return wal
