"""The C scanner against its pure-Python twin, on real writers' bytes, intact and damaged."""

import os
import random
import struct

import numpy as np
import pytest

from tb_plus.store import scan

pytestmark = pytest.mark.skipif(not scan.have_c_scanner(), reason="C scanner not built")


def _real_bytes(tmp_path):
    """Concatenated event files from tensorboardX and torch (scalars, tensors, histograms,
    text, images, hparams, new-style scalars)."""
    tbx = pytest.importorskip("tensorboardX")
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    rng = np.random.default_rng(1)
    d1, d2 = str(tmp_path / "tbx"), str(tmp_path / "torch")
    w = tbx.SummaryWriter(d1)
    for s in range(20):
        w.add_scalar("loss", float(rng.normal()), s)
        w.add_scalars("grp", {"a": 1.0 * s, "b": 2.0}, s)
    w.add_histogram("h", rng.normal(size=100), 3)
    w.add_text("t", "hello", 1)
    w.add_hparams({"lr": 0.1}, {"m": 1.0})
    w.close()
    w = torch_tb.SummaryWriter(d2)
    for s in range(20):
        w.add_scalar("x/y", float("nan") if s == 3 else s * 1.5, s, new_style=s % 2 == 0)
    w.add_image("img", np.zeros((3, 4, 4), dtype=np.uint8), 0)
    w.add_histogram("w", rng.normal(size=50), 2)
    w.close()
    out = b""
    for root, _, files in sorted(os.walk(tmp_path)):
        for f in sorted(files):
            if "tfevents" in f:
                out += open(os.path.join(root, f), "rb").read()
    return out


def _normalise(result):
    from tensorboard.compat.proto import summary_pb2

    consumed, need, values, specials, nrec = result
    norm = []
    for sp in specials:
        if sp[0] == "meta":  # same metadata, maybe serialised differently
            sp = (sp[0], sp[1], summary_pb2.SummaryMetadata.FromString(sp[2]))
        norm.append(sp)
    rows = np.frombuffer(values, dtype=scan.VALUE_DTYPE)
    return consumed, need, rows, norm, nrec


def _both(data, verify=True, base=0):
    c = scan.make_scanner(verify)
    p = scan.make_scanner(verify, force_python=True)
    rc, rp = _normalise(c.scan(data, base)), _normalise(p.scan(data, base))
    for name in scan.VALUE_DTYPE.names:  # NaN == NaN here
        np.testing.assert_array_equal(rc[2][name], rp[2][name], err_msg=name)
    assert rc[:2] + rc[3:] == rp[:2] + rp[3:]
    assert c.tags == p.tags
    return rc


def test_same_output_on_real_files(tmp_path):
    data = _real_bytes(tmp_path)
    consumed, need, rows, specials, nrec = _both(data)
    assert consumed == len(data) and need == 0
    kinds = set(rows["kind"].tolist())
    assert {scan.K_SIMPLE, scan.K_TSCALAR, scan.K_TENSOR, scan.K_HISTO, scan.K_IMAGE} <= kinds
    assert not [sp for sp in specials if sp[0] in ("bad_crc", "skipped", "unparsable")]


@pytest.mark.parametrize("seed", range(40))
def test_same_output_on_damaged_files(tmp_path, seed):
    data = bytearray(_real_bytes(tmp_path) if seed == 0 else _cached(tmp_path))
    rnd = random.Random(seed)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.choice(["flip", "junk", "cut", "len"])
        i = rnd.randrange(len(data))
        if op == "flip":
            data[i] ^= 1 << rnd.randrange(8)
        elif op == "junk":
            data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 40)))
        elif op == "cut":
            del data[i : i + rnd.randint(1, 40)]
        else:
            data[i : i + 8] = struct.pack("<Q", rnd.randrange(1 << 40))
    _both(bytes(data), True, base=1000)
    # Without CRCs a damaged payload that still parses is taken; the two decoders differ in
    # how strictly they parse nested messages (protobuf also checks UTF-8), so here only
    # "no crash, nothing lost at the framing level" is asserted.
    for force_python in (False, True):
        consumed, need, values, specials, nrec = scan.make_scanner(False, force_python=force_python).scan(
            bytes(data), 0
        )
        assert consumed + max(need, 0) <= len(data) + 16 + (1 << 40)


_CACHE = {}


def _cached(tmp_path):
    if "data" not in _CACHE:
        _CACHE["data"] = _real_bytes(tmp_path)
    return _CACHE["data"]


def test_chunked_scanning_equals_whole(tmp_path):
    """Feeding a file in pieces, as the indexer does, gives the same values."""
    data = _real_bytes(tmp_path)
    whole = np.frombuffer(scan.make_scanner().scan(data, 0)[2], dtype=scan.VALUE_DTYPE)
    rnd = random.Random(5)
    s = scan.make_scanner()
    rows, pos, buf = [], 0, b""
    fed = 0
    while True:
        take = rnd.randint(1, 300)
        buf += data[fed : fed + take]
        fed += take
        consumed, need, values, specials, nrec = s.scan(buf, pos)
        rows.append(np.frombuffer(values, dtype=scan.VALUE_DTYPE))
        buf = buf[consumed:]
        pos += consumed
        if fed >= len(data) and consumed == 0:
            break
    assert np.concatenate(rows).tobytes() == whole.tobytes()
    assert pos == len(data)


@pytest.fixture(params=[True, False], ids=["crc_instruction", "crc_table"])
def crc_path(request):
    """Both CRC32C paths of the C scanner: the SSE4.2 instruction (where the CPU has it) and the
    table-driven one other CPUs run, which a machine with the instruction would otherwise never test."""
    from tb_plus.store import _scan

    prev = _scan._set_hw_crc(request.param)
    yield request.param
    _scan._set_hw_crc(prev)


def test_masked_crc_matches_google_crc32c(crc_path):
    import google_crc32c

    for n in (0, 1, 7, 8, 9, 100, 4097):
        blob = os.urandom(n)
        c = google_crc32c.value(blob)
        assert scan.masked_crc(blob) == (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_either_crc_path_checks_records_as_the_python_scanner(tmp_path, crc_path):
    data = _real_bytes(tmp_path)
    consumed, _, _, specials, _ = _both(data)
    assert consumed == len(data) and not [sp for sp in specials if sp[0] == "bad_crc"]
    rnd = random.Random(7)
    for _ in range(20):  # one flipped bit: a header or payload CRC catches it, as the Python scanner says
        bad = bytearray(data)
        bad[rnd.randrange(len(bad))] ^= 1 << rnd.randrange(8)
        _both(bytes(bad))


def headers_every_12_bytes(size):
    """One junk byte, then a valid record header every 12 bytes, each claiming the rest of the file as
    its payload (whose CRC never holds): resynchronising with a payload CRC at each header costs CRC work
    quadratic in the size (issue 18 P-4: 4 MiB froze the server for a minute)."""
    b = bytearray(b"\x00")
    while len(b) + 28 <= size:
        head = struct.pack("<Q", size - len(b) - 16)
        b += head + struct.pack("<I", scan.masked_crc(head))
    return bytes(b + bytes(size - len(b)))


@pytest.mark.parametrize("verify", [True, False])
def test_resynchronising_over_crafted_headers_is_one_pass(verify):
    data = headers_every_12_bytes(256 << 10)
    consumed, need, rows, specials, nrec = _both(data, verify, base=0) if verify else \
        scan.make_scanner(False).scan(data, 0, True)
    assert consumed == len(data) and need == 0 and len(rows) == 0
    # The resynchronisation's CRC budget is spent and a header alone is taken: its record's payload
    # is then one bad record stepped over whole, instead of a CRC over the rest at every header.
    kinds = [sp[0] for sp in specials]
    if verify:
        assert kinds == ["skipped", "bad_crc"] and specials[1][1] + 16 + specials[1][2] == len(data)
    assert sum(sp[2] + (16 if sp[0] == "bad_crc" else 0) for sp in specials) <= len(data)
