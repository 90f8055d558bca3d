"""`gateway.gguf_metadata`: the string arrays of a GGUF file's metadata, and nothing else read."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gridmarket.gateway.gguf_metadata import GGUFError, read_string_arrays
from gridmarket.gateway.tokens import MERGES_FIELD, TOKENS_FIELD, smollm2_gguf_path


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, kind: int, value: bytes) -> bytes:
    return _string(key) + struct.pack("<I", kind) + value


def _array(item_kind: int, items: list[bytes]) -> bytes:
    return struct.pack("<IQ", item_kind, len(items)) + b"".join(items)


def _file(tmp_path: Path, pairs: list[bytes], *, magic: bytes = b"GGUF", version: int = 3) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(struct.pack("<4sIQQ", magic, version, 0, len(pairs)) + b"".join(pairs))
    return path


#: One value of every type GGUF defines, in front of the arrays asked for, so that reading
#: them depends on stepping over each of the others by its right size.
EVERY_OTHER_TYPE = [
    _kv("u8", 0, b"\x01"),
    _kv("i8", 1, b"\xff"),
    _kv("u16", 2, struct.pack("<H", 2)),
    _kv("i16", 3, struct.pack("<h", -2)),
    _kv("u32", 4, struct.pack("<I", 4)),
    _kv("i32", 5, struct.pack("<i", -4)),
    _kv("f32", 6, struct.pack("<f", 0.5)),
    _kv("bool", 7, b"\x01"),
    _kv("name", 8, _string("smol")),
    _kv("scores", 9, _array(6, [struct.pack("<f", 0.25)] * 3)),
    _kv("u64", 10, struct.pack("<Q", 8)),
    _kv("i64", 11, struct.pack("<q", -8)),
    _kv("f64", 12, struct.pack("<d", 0.125)),
    _kv("nested", 9, _array(9, [_array(8, [_string("a"), _string("bc")]), _array(8, [])])),
]


def test_the_arrays_asked_for_are_read_past_every_other_type(tmp_path: Path) -> None:
    tokens = ["<|endoftext|>", "a", "Ġthe", "日本", ""]
    pairs = [
        *EVERY_OTHER_TYPE,
        _kv("tokens", 9, _array(8, [_string(t) for t in tokens])),
        _kv("after", 4, struct.pack("<I", 1)),
        _kv("merges", 9, _array(8, [_string("Ġ t"), _string("h e")])),
    ]
    path = _file(tmp_path, pairs)
    assert read_string_arrays(path, ["tokens", "merges"]) == {
        "tokens": tokens,
        "merges": ["Ġ t", "h e"],
    }
    assert read_string_arrays(path, ["tokens"]) == {"tokens": tokens}


@pytest.mark.parametrize(
    ("pairs", "asked", "message"),
    [
        (EVERY_OTHER_TYPE, ["tokens"], "has no field tokens"),
        ([_kv("tokens", 8, _string("x"))], ["tokens"], "not an array of strings"),
        ([_kv("tokens", 9, _array(4, [b"\0\0\0\0"]))], ["tokens"], "not an array of strings"),
        ([_kv("odd", 13, b""), _kv("tokens", 9, _array(8, []))], ["tokens"], "value type 13"),
        ([_kv("tokens", 9, _array(8, [b"\x02\0\0\0\0\0\0\0\xff\xfe"]))], ["tokens"], "not UTF-8"),
    ],
)
def test_what_is_not_there_or_not_strings_is_a_clear_error(
    tmp_path: Path, pairs: list[bytes], asked: list[str], message: str
) -> None:
    with pytest.raises(GGUFError, match=message):
        read_string_arrays(_file(tmp_path, pairs), asked)


def test_other_files_and_versions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_string_arrays(_file(tmp_path, [], magic=b"GGML"), ["tokens"])
    with pytest.raises(GGUFError, match="version 1"):
        read_string_arrays(_file(tmp_path, [], version=1), ["tokens"])


def test_a_file_cut_anywhere_is_a_gguf_error(tmp_path: Path) -> None:
    pairs = [*EVERY_OTHER_TYPE, _kv("tokens", 9, _array(8, [_string("ab"), _string("c")]))]
    whole = _file(tmp_path, pairs).read_bytes()
    cut = tmp_path / "cut.gguf"
    for length in range(1, len(whole)):
        cut.write_bytes(whole[:length])
        with pytest.raises(GGUFError):
            read_string_arrays(cut, ["tokens"])


def test_smollm2s_vocabulary_reads_as_llama_cpps_gguf_reader_reads_it() -> None:
    gguf = pytest.importorskip("gguf")
    path = smollm2_gguf_path()
    ours = read_string_arrays(path, (TOKENS_FIELD, MERGES_FIELD))
    reader = gguf.GGUFReader(str(path))
    for name in (TOKENS_FIELD, MERGES_FIELD):
        field = reader.fields[name]
        theirs = [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        assert ours[name] == theirs
    assert len(ours[TOKENS_FIELD]) == 49_152
