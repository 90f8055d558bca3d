"""String arrays from a GGUF file's metadata, read without touching its tensors.

GGUF (llama.cpp's model file, versions 2 and 3) is a header, then `kv_count` typed key-value
pairs, then the tensor infos and data. A tokenizer's vocabulary and merges are two of those
pairs, arrays of strings. `read_string_arrays` walks the pairs once over a read-only memory map,
decoding the string arrays it is asked for and stepping over every other value by its size, so
SmolLM2's vocabulary (49,152 tokens, 48,900 merges) reads in about 0.2 s, where the `gguf`
package, which decodes every field through NumPy, took 5 s here: the time a server's first
call waited for its token counter.

    read_string_arrays(path, {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"})
        -> {"tokenizer.ggml.tokens": [...], "tokenizer.ggml.merges": [...]}

Little-endian files only (what llama.cpp writes). A file that is not GGUF, is truncated, or
has a value type this format does not define raises `GGUFError`; so does a name asked for that
is absent or not an array of strings.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from pathlib import Path

MAGIC = b"GGUF"
VERSIONS = (2, 3)
#: Value types by their GGUF code: fixed-size scalars (bytes each), string, array.
SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ARRAY_HEAD = struct.Struct("<IQ")  # item type, item count
_HEADER = struct.Struct("<4sIQQ")  # magic, version, tensor count, kv count


class GGUFError(ValueError):
    """The file is not a GGUF file this reader understands, or lacks what was asked for."""


class _Reader:
    __slots__ = ("data", "end")

    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.end = len(data)

    def _check(self, offset: int) -> int:
        if offset > self.end:
            raise GGUFError("truncated GGUF file")
        return offset

    def u32(self, offset: int) -> tuple[int, int]:
        return _U32.unpack_from(self.data, offset)[0], self._check(offset + 4)

    def u64(self, offset: int) -> tuple[int, int]:
        return _U64.unpack_from(self.data, offset)[0], self._check(offset + 8)

    def string(self, offset: int) -> tuple[str, int]:
        length, start = self.u64(offset)
        end = self._check(start + length)
        try:
            return self.data[start:end].decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise GGUFError(f"a GGUF string is not UTF-8: {exc}") from None

    def skip_string(self, offset: int) -> int:
        length, start = self.u64(offset)
        return self._check(start + length)

    def strings(self, offset: int, count: int) -> tuple[list[str], int]:
        out: list[str] = []
        append = out.append
        for _ in range(count):
            text, offset = self.string(offset)
            append(text)
        return out, offset

    def skip_value(self, kind: int, offset: int) -> int:
        """The offset after a value of type `kind` starting at `offset`."""
        size = SCALAR_BYTES.get(kind)
        if size is not None:
            return self._check(offset + size)
        if kind == STRING:
            return self.skip_string(offset)
        if kind == ARRAY:
            item_kind, count = _ARRAY_HEAD.unpack_from(self.data, offset)
            offset = self._check(offset + _ARRAY_HEAD.size)
            item_size = SCALAR_BYTES.get(item_kind)
            if item_size is not None:
                return self._check(offset + item_size * count)
            for _ in range(count):  # strings or nested arrays: each has its own length
                offset = self.skip_value(item_kind, offset)
            return offset
        raise GGUFError(f"unknown GGUF value type {kind}")


def read_string_arrays(path: Path, names: Collection[str]) -> dict[str, list[str]]:
    """The metadata values `names` of the GGUF file at `path`, each an array of strings."""
    wanted = set(names)
    found: dict[str, list[str]] = {}
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        reader = _Reader(data)
        try:
            magic, version, _tensors, kv_count = _HEADER.unpack_from(data, 0)
            if magic != MAGIC:
                raise GGUFError(f"{path} is not a GGUF file")
            if version not in VERSIONS:
                raise GGUFError(f"GGUF version {version} is not supported (2 or 3)")
            offset = _HEADER.size
            for _ in range(kv_count):
                if len(found) == len(wanted):
                    break  # the rest of the metadata is not needed
                key, offset = reader.string(offset)
                kind, offset = reader.u32(offset)
                if key not in wanted:
                    offset = reader.skip_value(kind, offset)
                    continue
                if kind != ARRAY:
                    raise GGUFError(f"GGUF field {key} is not an array of strings")
                item_kind, count = _ARRAY_HEAD.unpack_from(data, offset)
                if item_kind != STRING:
                    raise GGUFError(f"GGUF field {key} is not an array of strings")
                found[key], offset = reader.strings(offset + _ARRAY_HEAD.size, count)
        except struct.error:  # a fixed-size read past the end of the file
            raise GGUFError(f"truncated GGUF file {path}") from None
    missing = wanted - set(found)
    if missing:
        raise GGUFError(f"GGUF file {path} has no field {sorted(missing)[0]}")
    return found
