"""The write-ahead log: buffers writes, writes durable WAL files with group commit,
acknowledges waiting writers, replays on start."""

from weir.wal.format import TriggerKey, WalCorrupt, WalFile, WalOp, decode, encode, wal_path
from weir.wal.log import Wal, merge_ops

__all__ = ["TriggerKey", "Wal", "WalCorrupt", "WalFile", "WalOp", "decode", "encode", "merge_ops", "wal_path"]
