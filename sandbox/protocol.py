"""Host side of the job runner's protocol: length-prefixed JSON messages, and Docker's attach-stream frames."""

from __future__ import annotations

import json
import struct
from typing import Any

_LENGTH = struct.Struct(">I")
_DOCKER_FRAME = struct.Struct(">BxxxI")  # stream type (1 stdout, 2 stderr), payload size
MAX_MESSAGE_BYTES = 256 << 20


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode("utf-8")
    return _LENGTH.pack(len(body)) + body


class MessageBuffer:
    """Bytes in, whole messages out."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> None:
        self._data += data

    def pop(self) -> dict[str, Any] | None:
        if len(self._data) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._data)
        if length > MAX_MESSAGE_BYTES:
            raise ValueError(f"runner sent a {length}-byte message; the protocol is out of step")
        if len(self._data) < _LENGTH.size + length:
            return None
        body = bytes(self._data[_LENGTH.size : _LENGTH.size + length])
        del self._data[: _LENGTH.size + length]
        return json.loads(body.decode("utf-8"))


class DockerFrames:
    """Demultiplexes a non-TTY Docker attach stream: stdout payloads go on, stderr payloads are kept apart."""

    def __init__(self) -> None:
        self._data = bytearray()
        self.stderr = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Add raw socket bytes; return the stdout bytes completed by them."""
        self._data += data
        stdout = bytearray()
        while len(self._data) >= _DOCKER_FRAME.size:
            stream, size = _DOCKER_FRAME.unpack_from(self._data)
            if len(self._data) < _DOCKER_FRAME.size + size:
                break
            payload = self._data[_DOCKER_FRAME.size : _DOCKER_FRAME.size + size]
            del self._data[: _DOCKER_FRAME.size + size]
            if stream == 1:
                stdout += payload
            else:
                self.stderr = (self.stderr + payload)[-8192:]
        return bytes(stdout)
