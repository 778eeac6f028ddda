"""Fuzz: 1,200 mutated event files through the store (C and pure-Python scanners) and the HTTP API.

Base files come from real writers (torch's SummaryWriter, tensorboardX, tf.summary when TensorFlow is
installed): scalars with NaN and +inf, tensor scalars, histograms, images, audio, text and hparams.
A seeded RNG derives mutants from them, one run per mutant:

- `framing/` (900): damage the framing or a CRC can see - bit flips, byte overwrites, truncation
  (anywhere and at record boundaries), inserted junk, duplicated / removed / zeroed ranges, whole
  records removed, duplicated or swapped, a corrupted length field (with and without a recomputed
  header CRC), huge lengths, a flipped header or payload CRC, concatenations of two files (whole and
  torn), empty files, junk files, stacked mutations;
- `payload/` (300): records whose payload was changed and whose CRCs were then recomputed, so only
  the Event decoder stands between the bytes and the index - raw byte damage (flips, overwrites,
  cut or extended payloads, varint bombs, random payloads) and protobuf-valid but odd Events (wrong
  tensor shapes and dtypes, odd metadata, empty / huge / invalid UTF-8 tags, extreme steps and wall
  times, broken images).

What is checked, against an independent reading of each mutant (TFRecord framing and masked CRC32C
with google-crc32c, payloads with protobuf), never against the store itself:

- nothing raises out of indexing, runs(), tags(), scalars(), tensors(), blobs(), blob(), and every
  mutant's run is listed; the whole test runs under signal.alarm (no hang);
- a mutant whose bytes are all sound records has no problem and no pending bytes; one that ends in an
  incomplete record has exactly that tail pending and no problem; one whose framing or a CRC breaks at
  offset p reports problems for its run, the first of them at p; an empty file is `empty`;
- every point before the first damage is served, in order, as the base file has it; for framing
  damage every served point (scalars, tensors, blobs) is one of the base files' values, and, where the
  mutation neither duplicates nor reorders records, the series is a subsequence of the base's;
- reopening reads no event-file byte and reports the same problems; the pure-Python scanner (on every
  payload mutant and every tenth other one) gives the C scanner's problems, file status, tags and
  series, and reports a record protobuf rejects as `unparsable` (the C decoder reads only the fields
  it indexes, so it may accept such a record: that is printed as a note, not a failure);
- over HTTP (TensorBoard's WSGI app with the plugin, each directory opened with `logdir=`): /runs,
  /tags (level, substring, regex, glob, bad regex), /hparams, /series for one tag of every run,
  /series_batch?format=binary and /export answer 200 or a 4xx with a message, never 500, and agree
  with the store.

A mutant that makes indexing raise (or drops its run) is reported, found by indexing runs alone, and
moved to a directory of its own so the other checks still run; that directory must still be served
(/runs completes, /tags answers). The failure message lists every failed check with examples.
"""

import json
import math
import os
import random
import signal
import struct
import threading
import time

import numpy as np
import pytest

google_crc32c = pytest.importorskip("google_crc32c")
tbx = pytest.importorskip("tensorboardX")

from tb_plus.store import Logdir  # noqa: E402

SEED = int(os.environ.get("TB_PLUS_FUZZ_SEED", "20240611"))  # fixed; set the variable to explore others
N_FRAMING = 900
N_PAYLOAD = 300
PYTHON_EVERY = 10  # every tenth mutant also goes through the pure-Python scanner
ALARM_S = 240
MAX_RECORD = 1 << 31  # lengths above this are a broken header for the store (it resynchronises)
KINDS = ("scalars", "tensors", "histograms", "blobs")
PREFIX = "/data/plugin/tb_plus"


# ---------------------------------------------------------------------------------------- base files


def write_torch(d):
    import torch
    from torch.utils.tensorboard import SummaryWriter

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    w = SummaryWriter(d)
    t0 = 1_700_000_000.0
    for s in range(150):
        v = math.nan if s == 77 else (math.inf if s == 5 else float(rng.normal()))
        w.add_scalar("train/loss", v, s, walltime=t0 + s)
        if s % 5 == 0:
            w.add_scalar("eval/acc", s / 150, s, walltime=t0 + s, new_style=True)  # a tensor scalar
        if s % 50 == 0:
            w.add_histogram("weights/hist", rng.normal(size=64), s, walltime=t0 + s)
            w.add_image("sample", rng.integers(0, 255, (3, 4, 4)).astype(np.uint8), s, walltime=t0 + s)
            w.add_text("note", f"step {s}", s, walltime=t0 + s)
            w.add_audio("sound", torch.rand(64) * 2 - 1, s, sample_rate=8000, walltime=t0 + s)
    w.close()


def write_tbx(d):
    from tensorboardX.summary import hparams

    rng = np.random.default_rng(2)
    w = tbx.SummaryWriter(d)
    t0 = 1_700_100_000.0
    exp, ssi, sei = hparams({"lr": 0.1, "opt": "adam", "bn": True}, {"hparam/loss": 0.0})
    for summ in (exp, ssi, sei):
        w._get_file_writer().add_summary(summ, walltime=t0)
    for s in range(150):
        w.add_scalar("train/loss", math.nan if s in (3, 90) else float(rng.normal()), s, walltime=t0 + s)
        if s % 3 == 0:
            for k in range(4):
                w.add_scalar(f"layers/{k}/grad_norm", float(k + rng.random()), s, walltime=t0 + s)
        if s % 50 == 0:
            w.add_histogram("weights/hist", rng.normal(size=64), s, walltime=t0 + s)
            w.add_image("sample", rng.integers(0, 255, (3, 4, 4)).astype(np.uint8), s, walltime=t0 + s)
            w.add_text("note", f"tbx step {s}", s, walltime=t0 + s)
    w.close()


def write_tf(d):
    try:
        import tensorflow as tf
    except ImportError:
        return False
    w = tf.summary.create_file_writer(d)
    with w.as_default():
        for s in range(60):
            tf.summary.scalar("tf/loss", 1.0 / (s + 1), step=s)
            if s % 20 == 0:
                tf.summary.histogram("tf/hist", tf.constant(np.linspace(-1, 1, 32), tf.float32), step=s)
                tf.summary.text("tf/text", f"tf step {s}", step=s)
    w.close()
    return True


def build_bases(src):
    writers = {"torch": write_torch, "tbx": write_tbx, "tf": write_tf}
    bases = {}
    for name, write in writers.items():
        d = os.path.join(src, name)
        os.makedirs(d)
        if write(d) is False:
            continue
        (f,) = [x for x in os.listdir(d) if "tfevents" in x]
        with open(os.path.join(d, f), "rb") as fh:
            bases[name] = fh.read()
    return bases


# ------------------------------------------------------------------------- independent TFRecord reading


def masked_crc(data) -> int:
    c = google_crc32c.value(bytes(data))
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(payload: bytes) -> bytes:
    head = struct.pack("<Q", len(payload))
    return head + struct.pack("<I", masked_crc(head)) + payload + struct.pack("<I", masked_crc(payload))


def walk(data):
    """Reads `data` record by record as TFRecord readers do, stopping at the first thing that is not a
    sound record: -> (status, pos, events), status 'clean' (every byte is a record with right CRCs whose
    payload parses as an Event), 'tail' (an incomplete record at pos: fewer than 12 bytes, or a sound
    header whose record runs past the end) or 'bad' (a header CRC, a length, a payload CRC or a payload
    that does not parse, at pos); events: (offset, Event) of the records before pos."""
    from tensorboard.compat.proto import event_pb2

    n, p, events = len(data), 0, []
    while p < n:
        if n - p < 12:
            return "tail", p, events
        (length,) = struct.unpack_from("<Q", data, p)
        if masked_crc(data[p : p + 8]) != struct.unpack_from("<I", data, p + 8)[0] or length > MAX_RECORD:
            return "bad", p, events
        if n - p < 16 + length:
            return "tail", p, events
        payload = data[p + 12 : p + 12 + length]
        if masked_crc(payload) != struct.unpack_from("<I", data, p + 12 + length)[0]:
            return "bad", p, events
        try:
            ev = event_pb2.Event.FromString(payload)
        except Exception:  # protobuf's DecodeError (or whatever garbage makes it raise)
            return "bad", p, events
        events.append((p, ev))
        p += 16 + length
    return "clean", p, events


def spans(data):
    """[(start, end)] of the records of a sound file."""
    out, p = [], 0
    while p + 12 <= len(data):
        (n,) = struct.unpack_from("<Q", data, p)
        out.append((p, p + 16 + n))
        p += 16 + n
    return out


def scalar_points(events, scalar_tags):
    """{tag: [(step, wall, value)]} of the values of `scalar_tags` in `events`, in order."""
    from tensorboard.util import tensor_util

    out = {}
    for _, ev in events:
        if ev.WhichOneof("what") != "summary":
            continue
        for v in ev.summary.value:
            if v.tag not in scalar_tags:
                continue
            kind = v.WhichOneof("value")
            if kind == "simple_value":
                x = float(v.simple_value)
            elif kind == "tensor":
                x = float(tensor_util.make_ndarray(v.tensor).item())
            else:
                continue
            out.setdefault(v.tag, []).append((int(ev.step), float(ev.wall_time), x))
    return out


def scalar_points_by_rule(events):
    """{tag: [(step, wall, value)]} by TensorBoard's rule, for files whose tags' kinds must be worked
    out (a record of them left out): a tag is a scalar one when its first value that says what it is
    (a simple_value, or a value with metadata) is a simple_value or has the scalars plugin's metadata;
    its values from there on are its points (a tensor that is no single number gives NaN)."""
    from tensorboard.util import tensor_util

    kind_of, out = {}, {}
    for _, ev in events:
        if ev.WhichOneof("what") != "summary":
            continue
        for v in ev.summary.value:
            kind = v.WhichOneof("value")
            if v.tag not in kind_of:
                if kind == "simple_value":
                    kind_of[v.tag] = True
                elif v.HasField("metadata"):
                    md = v.metadata
                    plugin = md.plugin_data.plugin_name
                    kind_of[v.tag] = md.data_class == 1 or (md.data_class == 0 and plugin == "scalars")
                else:
                    continue
            if not kind_of[v.tag] or kind not in ("simple_value", "tensor"):
                continue
            if kind == "simple_value":
                x = float(v.simple_value)
            else:
                try:
                    x = float(tensor_util.make_ndarray(v.tensor).item())
                except (ValueError, TypeError):
                    x = math.nan
            out.setdefault(v.tag, []).append((int(ev.step), float(ev.wall_time), x))
    return out


def key(step, wall, value):
    return (int(step), float(wall), "nan" if value != value else float(value))


def tensor_key(d):
    a = d.numpy
    data = tuple(a.ravel().tolist()) if a.dtype.kind == "O" else a.tobytes()
    return (d.step, d.wall_time, a.dtype.str, a.shape, data)


def is_subsequence(small, big):
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


# ------------------------------------------------------------------------------------------ mutations


class Mutator:
    def __init__(self, bases, seed):
        self.bases = bases
        self.names = sorted(bases)
        self.spans = {k: spans(v) for k, v in bases.items()}
        self.rng = random.Random(seed)
        self.first_meta = {}  # base -> [record index] of the records carrying a tag's first metadata
        for name, data in bases.items():
            _, _, events = walk(data)
            seen, firsts = set(), []
            for i, (_, ev) in enumerate(events):
                for v in ev.summary.value:
                    if v.HasField("metadata") and v.tag not in seen:
                        seen.add(v.tag)
                        firsts.append(i)
            self.first_meta[name] = sorted(set(firsts))

    def pick(self):
        name = self.rng.choice(self.names)
        return name, bytearray(self.bases[name])

    def rec(self, name, first=1):
        return self.rng.choice(self.spans[name][first:])

    # byte-level damage (no knowledge of records)
    def bitflip(self, b):
        for _ in range(self.rng.randint(1, 8)):
            i = self.rng.randrange(len(b))
            b[i] ^= 1 << self.rng.randrange(8)
        return b

    def overwrite(self, b):
        i = self.rng.randrange(len(b))
        n = self.rng.randint(1, 64)
        b[i : i + n] = self.rng.randbytes(len(b[i : i + n]))
        return b

    def truncate(self, b):
        return b[: self.rng.randrange(1, len(b))] if len(b) > 1 else b

    def insert_junk(self, b):
        i = self.rng.randrange(len(b) + 1)
        junk = self.rng.randbytes(self.rng.randint(1, 400))
        if self.rng.random() < 0.3:  # junk that starts like a header (length, wrong CRC)
            junk = struct.pack("<QI", self.rng.randint(0, 4000), self.rng.getrandbits(32)) + junk
        return b[:i] + junk + b[i:]

    def duplicate_range(self, b):
        i = self.rng.randrange(len(b))
        j = min(len(b), i + self.rng.randint(1, 2000))
        at = self.rng.randrange(len(b) + 1)
        return b[:at] + b[i:j] + b[at:]

    def remove_range(self, b):
        i = self.rng.randrange(len(b))
        j = min(len(b), i + self.rng.randint(1, 2000))
        return b[:i] + b[j:]

    def zero_range(self, b):
        i = self.rng.randrange(len(b))
        n = self.rng.randint(1, 256)
        b[i : i + n] = bytes(len(b[i : i + n]))
        return b

    BYTE_OPS = ("bitflip", "overwrite", "truncate", "insert_junk", "duplicate_range", "remove_range", "zero_range")

    def framing(self):
        """-> (op, bytes, base names, order_kept): order_kept says the served points must be a
        subsequence of the base's (no record duplicated or moved)."""
        op = self.rng.choice(
            self.BYTE_OPS
            + ("truncate_at_record", "remove_records", "duplicate_records", "swap_records", "length_field",
               "length_fixed_crc", "huge_length", "pending_length", "header_crc", "payload_crc", "concat",
               "concat_torn", "empty", "junk_file", "header_only", "stacked", "stacked")
        )
        name, b = self.pick()
        sp = self.spans[name]
        names, ordered = [name], True
        if op in self.BYTE_OPS:
            b = getattr(self, op)(b)
            ordered = op != "duplicate_range"
        elif op == "truncate_at_record":
            cut = self.rng.choice(sp)[1] + self.rng.choice([0, 0, 0, 1, -1, -4, 5, 11, 12, 13])
            b = b[: max(0, min(len(b), cut))]
        elif op == "remove_records":
            i = self.rng.randrange(1, len(sp))
            j = min(len(sp), i + self.rng.randint(1, 5))
            b = b[: sp[i][0]] + b[sp[j - 1][1] :]
        elif op == "duplicate_records":
            i = self.rng.randrange(len(sp))
            j = min(len(sp), i + self.rng.randint(1, 5))
            at = self.rng.choice(sp)[1]
            b = b[:at] + b[sp[i][0] : sp[j - 1][1]] + b[at:]
            ordered = False
        elif op == "swap_records":
            i, j = sorted(self.rng.sample(range(1, len(sp)), 2))
            (a0, a1), (c0, c1) = sp[i], sp[j]
            b = b[:a0] + b[c0:c1] + b[a1:c0] + b[a0:a1] + b[c1:]
            ordered = False
        elif op in ("length_field", "length_fixed_crc", "huge_length", "pending_length", "header_crc"):
            s0, s1 = self.rec(name, 0)
            (n,) = struct.unpack_from("<Q", b, s0)
            fix = True
            if op == "length_field":
                n, fix = (n + self.rng.choice([-1, 1]) * self.rng.randint(1, 1000)) % (1 << 64), False
            elif op == "length_fixed_crc":
                n = self.rng.randint(0, 2 * n + 20)
            elif op == "huge_length":
                n, fix = self.rng.randint(MAX_RECORD + 1, (1 << 64) - 1), self.rng.random() < 0.7
            elif op == "pending_length":  # a sound header promising more than the file holds
                n = self.rng.randint(len(b), MAX_RECORD)
            if op == "header_crc":
                b[s0 + 8 + self.rng.randrange(4)] ^= 1 << self.rng.randrange(8)
            else:
                b[s0 : s0 + 8] = struct.pack("<Q", n)
                if fix:
                    b[s0 + 8 : s0 + 12] = struct.pack("<I", masked_crc(b[s0 : s0 + 8]))
        elif op == "payload_crc":
            s0, s1 = self.rec(name, 0)
            b[s1 - 4 + self.rng.randrange(4)] ^= 1 << self.rng.randrange(8)
        elif op in ("concat", "concat_torn"):
            other = self.rng.choice(self.names)
            tail = self.bases[other]
            if op == "concat_torn":
                b = b[: self.rng.randrange(1, len(b))]
            b = b + tail
            names, ordered = sorted({name, other}), False
        elif op == "empty":
            b = bytearray()
        elif op == "junk_file":
            b = bytearray(self.rng.randbytes(self.rng.randint(1, 3000)))
            names = []
        elif op == "header_only":
            head = struct.pack("<Q", self.rng.randint(1, 5000))
            b = bytearray(head + struct.pack("<I", masked_crc(head)))
            names = []
        elif op == "stacked":
            ops = self.rng.sample(self.BYTE_OPS, self.rng.randint(2, 3))
            for o in ops:
                if len(b) > 1:
                    b = getattr(self, o)(b)
            op = "stacked:" + "+".join(ops)
            ordered = "duplicate_range" not in ops
        return op, bytes(b), names, ordered

    # payload damage behind recomputed CRCs
    def payload(self):
        """-> (op, bytes, base names, offset of the changed record, its index among the records)."""
        name, b = self.pick()
        op = self.rng.choice(
            ("p_bitflip", "p_overwrite", "p_cut", "p_extend", "p_random", "p_varint_bomb", "p_wire_type",
             "p_first_meta", "p_first_meta", "e_shape", "e_dtype", "e_meta", "e_tag", "e_step_wall", "e_image",
             "e_scalar_as_string", "e_drop_value_kind", "e_content_len")
        )
        if op == "p_first_meta":  # the record that gives a tag its kind
            s0, s1 = self.spans[name][self.rng.choice(self.first_meta[name])]
        else:
            s0, s1 = self.rng.choice(self.spans[name]) if self.rng.random() < 0.1 else self.rec(name)
        payload = bytearray(b[s0 + 12 : s1 - 4])
        if op.startswith("p_"):
            r = self.rng
            if op == "p_bitflip":
                for _ in range(r.randint(1, 4)):
                    i = r.randrange(len(payload))
                    payload[i] ^= 1 << r.randrange(8)
            elif op == "p_overwrite":
                i = r.randrange(len(payload))
                payload[i : i + r.randint(1, 16)] = r.randbytes(r.randint(1, 16))
            elif op == "p_cut":
                payload = payload[: r.randrange(len(payload))]
            elif op == "p_extend":
                payload += r.randbytes(r.randint(1, 64))
            elif op == "p_random":
                payload = bytearray(r.randbytes(r.randint(0, 200)))
            elif op == "p_varint_bomb":
                i = r.randrange(len(payload) + 1)
                payload[i:i] = b"\xff" * r.randint(1, 12)
            elif op == "p_wire_type":  # change the wire type of one key byte
                i = r.randrange(len(payload))
                payload[i] = (payload[i] & ~7) | r.randrange(8)
            elif op == "p_first_meta":  # break the SummaryMetadata bytes, keeping every outer length
                from tensorboard.compat.proto import event_pb2

                ev = event_pb2.Event.FromString(bytes(payload))
                md = r.choice([v for v in ev.summary.value if v.HasField("metadata")]).metadata.SerializeToString()
                i = bytes(payload).find(md)
                if md and i >= 0:
                    bad = bytearray(md)
                    how = r.randrange(3)
                    if how == 0 and len(bad) >= 2:
                        bad[1] = 0x7F  # the first field's length runs past the message
                    elif how == 1:
                        bad[0] = (bad[0] & ~7) | 7  # an invalid wire type
                    else:
                        bad[:] = b"\xff" * len(bad)  # an endless varint
                    payload[i : i + len(md)] = bad
            new = bytes(payload)
        else:
            new = self.event_mutation(op, bytes(payload))
            if new is None:  # the record has nothing this mutation applies to: damage raw bytes
                op = "p_bitflip"
                payload[self.rng.randrange(len(payload))] ^= 1 << self.rng.randrange(8)
                new = bytes(payload)
        return op, bytes(b[:s0] + frame(new) + b[s1:]), [name], s0, self.spans[name].index((s0, s1))

    def event_mutation(self, op, payload):
        from tensorboard.compat.proto import event_pb2

        ev = event_pb2.Event.FromString(payload)
        r = self.rng
        if op == "e_step_wall":
            ev.step = r.choice([-1, -(2**63), 2**63 - 1, 2**53 + 1])
            ev.wall_time = r.choice([math.nan, math.inf, -math.inf, -1.0, 1e300])
            return ev.SerializeToString()
        if ev.WhichOneof("what") != "summary" or not ev.summary.value:
            return None
        v = r.choice(ev.summary.value)
        if op == "e_shape":
            if not v.HasField("tensor"):
                return None
            dims = v.tensor.tensor_shape.dim
            if dims and r.random() < 0.7:
                r.choice(dims).size = r.choice([0, -1, 7, 10**9])
            else:
                v.tensor.tensor_shape.dim.add().size = r.choice([0, 2, 3])
        elif op == "e_dtype":
            if not v.HasField("tensor"):
                return None
            v.tensor.dtype = r.choice([0, 2, 3, 7, 9, 10, 19, 23, 99])
        elif op == "e_meta":
            md = v.metadata
            choice = r.randrange(4)
            if choice == 0:
                md.data_class = r.choice([0, 1, 2, 3, 7])
            elif choice == 1:
                md.plugin_data.plugin_name = r.choice(["images", "scalars", "histograms", "text", "hparams", "x"])
            elif choice == 2:
                md.plugin_data.content = r.randbytes(r.randint(0, 40))
            else:
                md.plugin_data.plugin_name = "hparams"
                md.plugin_data.content = r.randbytes(r.randint(0, 40))
        elif op == "e_tag":
            choice = r.randrange(3)
            if choice == 0:
                v.tag = ""
            elif choice == 1:
                v.tag = "t/" * 2000
            else:  # invalid UTF-8: protobuf refuses to serialise it, so patch the bytes after
                marker = "\x01" * len(v.tag.encode())
                old = v.tag
                v.tag = marker
                data = ev.SerializeToString()
                return data.replace(marker.encode(), b"\xff" * len(old.encode()), 1)
        elif op == "e_image":
            if not v.HasField("image"):
                return None
            v.image.encoded_image_string = r.randbytes(r.randint(0, 30))
            v.image.height = r.choice([0, -1, 10**6])
        elif op == "e_scalar_as_string":
            if v.WhichOneof("value") != "simple_value" and not v.HasField("tensor"):
                return None
            v.ClearField("simple_value")
            v.tensor.Clear()
            v.tensor.dtype = 7  # DT_STRING
            v.tensor.string_val.append(b"not a number")
        elif op == "e_content_len":  # tensor_content of a length that is no whole number of elements
            if not v.HasField("tensor"):
                return None
            v.tensor.ClearField("float_val")
            v.tensor.ClearField("double_val")
            v.tensor.tensor_content = r.randbytes(r.choice([1, 3, 5, 6, 7]))
        elif op == "e_drop_value_kind":
            for f in ("simple_value", "tensor", "histo", "image", "audio"):
                v.ClearField(f)
        return ev.SerializeToString()


# ------------------------------------------------------------------------------------------- helpers


class Failures:
    """Collects every failure (so one run shows all of them), grouped by check."""

    def __init__(self):
        self.groups = {}
        self.notes = {}  # differences worth knowing that are no failure

    def note(self, check, run, detail):
        self.notes.setdefault(check, []).append(f"{run}: {detail}")

    def add(self, check, run, detail):
        self.groups.setdefault(check, []).append(f"{run}: {detail}")

    def __bool__(self):
        return bool(self.groups)

    def report(self, groups=None):
        lines = []
        for check, items in (self.groups if groups is None else groups).items():
            lines.append(f"{check}: {len(items)} mutants")
            lines.extend("    " + x[:300] for x in items[:8])
        return "\n".join(lines)


def by_run(items, field="run"):
    out = {}
    for x in items:
        out.setdefault(x[field] if isinstance(x, dict) else getattr(x, field), []).append(x)
    return out


def reference(bases, cache):
    """What the base files hold, read through the store on the untouched files: per base, scalar tags
    and their points, tensor data and blobs (sets, to check what a mutant serves)."""
    src = os.path.join(cache, "..", "bases_logdir")
    os.makedirs(src)
    for name, data in bases.items():
        os.makedirs(os.path.join(src, name))
        with open(os.path.join(src, name, "events.out.tfevents.1.base"), "wb") as f:
            f.write(data)
    ld = Logdir(src, cache)
    assert ld.problems() == [], ld.problems()
    ref = {}
    for name, data in bases.items():
        status, _, events = walk(data)
        assert status == "clean", name
        scalar_tags = set(ld.tags(name))
        pts = scalar_points(events, scalar_tags)
        for t in scalar_tags:  # the independent reading and the store agree on the sound file
            s = ld.scalars(name, t)
            assert [key(*x) for x in pts[t]] == [key(*x) for x in zip(s.step, s.wall_time, s.value)], (name, t)
        tensors, blobs = {}, {}
        for t in ld.tags(name, "tensors"):
            tensors[t] = {tensor_key(d) for d in ld.tensors(name, t)}
        for t in ld.tags(name, "blobs"):
            blobs[t] = {(r.step, r.wall_time, tuple(ld.blob(r))) for r in ld.blobs(name, t)}
        ref[name] = {"scalar_tags": scalar_tags, "points": pts, "tensors": tensors, "blobs": blobs, "events": events}
    return ref


def read_all(ld, run, fails, check_values=None):
    """Every tag of every kind of `run`, every value; -> {tag: [keys]} of its scalar series.
    `check_values(kind, tag, items)` checks what was read."""
    out = {}
    try:
        tags = {k: ld.tags(run, k) for k in KINDS}
    except Exception as e:  # noqa: BLE001 - any exception here is a crash
        fails.add("tags() raised", run, f"{type(e).__name__}: {e}")
        return out
    for t in tags["scalars"]:
        try:
            s = ld.scalars(run, t)
        except Exception as e:  # noqa: BLE001
            fails.add("scalars() raised", run, f"{t!r}: {type(e).__name__}: {e}")
            continue
        if not (len(s.step) == len(s.wall_time) == len(s.value)):
            fails.add("scalars() columns of unequal length", run, t)
        out[t] = [key(*x) for x in zip(s.step.tolist(), s.wall_time.tolist(), s.value.tolist())]
    for t in tags["tensors"]:
        try:
            items = [tensor_key(d) for d in ld.tensors(run, t)]
        except Exception as e:  # noqa: BLE001
            fails.add("tensors() raised", run, f"{t!r}: {type(e).__name__}: {e}")
            continue
        if check_values:
            check_values("tensors", t, items)
    for t in tags["histograms"]:
        if t not in tags["tensors"]:
            fails.add("histogram tag not among tensors", run, t)
    for t in tags["blobs"]:
        try:
            items = [(r.step, r.wall_time, tuple(ld.blob(r))) for r in ld.blobs(run, t)]
        except Exception as e:  # noqa: BLE001
            fails.add("blobs()/blob() raised", run, f"{t!r}: {type(e).__name__}: {e}")
            continue
        if check_values:
            check_values("blobs", t, items)
    try:
        ld.tag_info(run, (tags["scalars"] or tags["tensors"] or tags["blobs"] or ["?"])[0])
    except KeyError:
        pass
    except Exception as e:  # noqa: BLE001
        fails.add("tag_info() raised", run, f"{type(e).__name__}: {e}")
    return out


def open_index(path, cache, expected_runs, fails, label, **kw):
    """Indexes `path`. Mutants whose file makes indexing raise, or whose run is missing from runs(), are
    recorded, found by indexing each run alone, and moved aside so the other checks go on.
    -> (Logdir, {run: why})."""
    ld = Logdir(path, cache, **kw)
    try:
        ld.refresh()
        listed = set(ld.runs())
        suspects = sorted(set(expected_runs) - listed)
    except Exception as e:  # noqa: BLE001 - "nothing raises out of indexing because of a file's content"
        fails.add(f"{label}: refresh() raised", "(log directory)", f"{type(e).__name__}: {e}")
        listed, suspects = set(), sorted(expected_runs)
    culprits = {}
    for run in suspects:
        alone = Logdir(os.path.join(path, run), cache + "-alone", **dict(kw, workers=1))
        try:
            alone.refresh()
            why = None if not listed else f"indexed alone: runs={alone.runs()} problems={alone.problems()}"
        except Exception as e:  # noqa: BLE001
            why = f"indexed alone, refresh() raises {type(e).__name__}: {e}"
        if why:
            missing = "" if run in listed or not listed else "not listed by runs(); "
            fails.add(f"{label}: indexing the mutant raised / lost its run", run, missing + why)
            culprits[run] = why
    if culprits or not listed:
        aside = path + "-aside"
        os.makedirs(aside, exist_ok=True)
        for run in culprits:
            os.rename(os.path.join(path, run), os.path.join(aside, run))
        ld = Logdir(path, cache, **kw)
        try:
            ld.refresh()
        except Exception as e:  # noqa: BLE001
            fails.add(f"{label}: refresh() raised without the culprits", "(log directory)", f"{type(e).__name__}: {e}")
            raise AssertionError(fails.report())
    return ld, culprits


# --------------------------------------------------------------------------------------------- HTTP


def http_checks(client, logdir, ld, fails, label):
    """The routes over one fuzzed directory, opened with logdir=."""
    from urllib.parse import quote

    q = f"logdir={quote(logdir)}"

    def get(path, run="(http)"):
        try:
            r = client.get(f"{PREFIX}{path}")
        except Exception as e:  # noqa: BLE001 - werkzeug's client re-raises what the app raised: a 500
            fails.add(f"{label}: HTTP 500 (the route raised)", run, f"{path[:150]}: {type(e).__name__}: {str(e)[:200]}")
            return None, 500
        body = r.get_data()
        if r.status_code != 200 and not (400 <= r.status_code < 500 and body.strip()):
            fails.add(f"{label}: HTTP {r.status_code}", run, f"{path[:200]}: {body[:300]!r}")
            return None, r.status_code
        return r, r.status_code

    runs = ld.runs()
    deadline = time.monotonic() + 90
    while True:  # a directory opened with logdir= answers at once; poll until its index is in
        r, code = get(f"/runs?{q}")
        if r is None:
            break  # recorded; the other routes wait for the index themselves
        body = r.get_json()
        if not body["progress"]["indexing"] and len(body["runs"]["name"]) == len(runs):
            break
        if time.monotonic() > deadline:
            fails.add(f"{label}: /runs never complete", "(http)", str(body["progress"]))
            return
        time.sleep(0.1)
    if r is not None and body["runs"]["name"] != runs:
        fails.add(f"{label}: /runs names differ from runs()", "(http)", "")
    want_tags = {r2: ld.tags(r2) for r2 in runs}
    all_tags = {t for ts in want_tags.values() for t in ts}
    r, _ = get(f"/tags?{q}")
    if r is not None and r.get_json()["count"] != len(all_tags):
        fails.add(f"{label}: /tags count", "(http)", f"{r.get_json()['count']} != {len(all_tags)}")
    for extra, code in (("filter=loss", 200), ("filter=%5Etrain%2F&mode=regex", 200),
                        ("filter=*%2Fhist&mode=glob", 200), ("filter=layers&under=", 200),
                        ("filter=%5B&mode=regex", 400), ("parent=nope", 404)):
        r, got = get(f"/tags?{q}&{extra}")
        if got != code:
            fails.add(f"{label}: /tags?{extra}", "(http)", f"status {got}, wanted {code}")
    r, _ = get(f"/hparams?{q}")
    if r is not None and r.get_json()["runs"] != runs:
        fails.add(f"{label}: /hparams runs", "(http)", "")
    r, code = get(f"/diagnostics?{q}")  # the rules read every kind of damaged series without failing
    if r is not None and (code != 200 or sorted(r.get_json()["runs"]) != sorted(runs)):
        fails.add(f"{label}: /diagnostics", "(http)", f"status {code}")
    for i, run in enumerate(runs):
        tags = [t for t in want_tags[run] if t]  # an empty tag cannot be named in a query (tag= is 'missing')
        tag = tags[0] if tags else "train/loss"
        path = f"/series?{q}&run={quote(run)}&tag={quote(tag, safe='')}&width=1000"
        if i % 7 == 0:
            path += "&smooth=ema"
        r, code = get(path, run)
        if r is None:
            continue
        if not tags:
            if code != 404:
                fails.add(f"{label}: /series for a missing tag", run, f"status {code}")
            continue
        if code != 200:
            fails.add(f"{label}: /series", run, f"status {code}: {r.get_data()[:200]!r}")
            continue
        s = ld.scalars(run, tag)
        got = r.get_json()
        if got["total"] != len(s) or (len(s) and got["step"][-1] != int(s.step[-1])):
            fails.add(f"{label}: /series disagrees with scalars()", run, f"total {got['total']} != {len(s)}")
        if i % 50 == 0:
            get(f"/export?{q}&run={quote(run)}&tag={quote(tag, safe='')}&format=csv", run)
    for i in range(0, len(runs), 200):  # one tag for up to 200 runs, binary
        rs = "".join(f"&run={quote(x)}" for x in runs[i : i + 200])
        r, code = get(f"/series_batch?{q}{rs}&tag=train%2Floss&width=1000&format=binary")
        if r is not None and code == 200:
            data = r.get_data()
            (hlen,) = struct.unpack_from("<I", data, 0)
            header = json.loads(data[4 : 4 + hlen])
            if len(header["series"]) != len(runs[i : i + 200]):
                fails.add(f"{label}: /series_batch entries", "(http)", str(len(header["series"])))


def http_aside(client, path, runs, fails, label, deadline_s=10):
    """The mutants whose indexing raised, in a directory of their own: /runs must still complete
    (not report `indexing` for ever) and list them, /tags must answer."""
    from urllib.parse import quote

    end = time.monotonic() + deadline_s
    while True:
        try:
            r = client.get(f"{PREFIX}/runs?logdir={quote(path)}")
        except Exception as e:  # noqa: BLE001
            fails.add(f"{label}: HTTP 500 on the directory of the mutants that broke indexing", "(http)",
                      f"/runs: {type(e).__name__}: {str(e)[:200]}")
            return
        body = r.get_json() if r.status_code == 200 else None
        if body is None or not body["progress"]["indexing"] or time.monotonic() > end:
            break
        time.sleep(0.2)
    if body is None or body["progress"]["indexing"] or body["runs"]["name"] != runs:
        fails.add(f"{label}: /runs on the directory of the mutants that broke indexing", "(http)",
                  f"status {r.status_code} after {deadline_s} s: {r.get_data()[:300]!r}")
    try:
        r = client.get(f"{PREFIX}/tags?logdir={quote(path)}")
        code = r.status_code
    except Exception as e:  # noqa: BLE001
        code = f"500 ({type(e).__name__}: {str(e)[:200]})"
    if code != 200:
        fails.add(f"{label}: /tags on the directory of the mutants that broke indexing", "(http)", f"status {code}")


# ---------------------------------------------------------------------------------------------- test


@pytest.fixture
def alarm():
    def on_alarm(signum, frame):
        raise TimeoutError(f"fuzz test still running after {ALARM_S} s: a hang")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(ALARM_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_fuzzed_event_files(tmp_path, alarm, monkeypatch):
    from werkzeug.test import Client

    import tb_plus.store.logdir as logdir_mod
    from tests.routes.conftest import make_app

    t_start = time.monotonic()
    bases = build_bases(str(tmp_path / "src"))
    assert {"torch", "tbx"} <= set(bases)
    ref = reference(bases, str(tmp_path / "cache_ref"))

    root = tmp_path / "root"
    framing_dir, payload_dir, python_dir = root / "framing", root / "payload", root / "python"
    for d in (root / "default", python_dir):
        os.makedirs(d)
    mut = Mutator(bases, SEED)
    meta = {}  # (dir, run) -> dict

    def put(d, run, data, **info):
        os.makedirs(d / run)
        # names as writers make them; each mutant's file is the only one of its run
        with open(d / run / f"events.out.tfevents.{1700000000 + len(meta)}.fuzz", "wb") as f:
            f.write(data)
        meta[(d.name, run)] = dict(info, data=data)

    ops_seen = {}
    for i in range(N_FRAMING):
        op, data, names, ordered = mut.framing()
        ops_seen[op.split(":")[0]] = ops_seen.get(op.split(":")[0], 0) + 1
        put(framing_dir, f"m{i:04d}", data, op=op, bases=names, ordered=ordered, payload_at=None)
    for i in range(N_PAYLOAD):
        op, data, names, at, k = mut.payload()
        ops_seen[op] = ops_seen.get(op, 0) + 1
        put(payload_dir, f"p{i:04d}", data, op=op, bases=names, ordered=False, payload_at=at, payload_rec=k)
    assert len(meta) >= 1000
    for (dname, run), m in meta.items():  # the pure-Python scanner: every payload mutant, every tenth other
        if dname == "payload" or int(run[1:]) % PYTHON_EVERY == 0:
            os.link(root / dname / run / os.listdir(root / dname / run)[0], _mk(python_dir / f"{dname}_{run}"))

    fails = Failures()
    cache = str(tmp_path / "cache")
    # index in worker processes, as for a large log directory (the pool's error path is exercised too)
    monkeypatch.setattr(logdir_mod, "_IN_PROCESS_BYTES", 0)
    results, aside, states = {}, {}, {}
    for d in (framing_dir, payload_dir):
        runs = sorted(run for (dn, run) in meta if dn == d.name)
        ld, culprits = open_index(str(d), cache, runs, fails, d.name, workers=2)
        results[d.name] = ld
        if culprits:
            aside[d.name] = (str(d) + "-aside", sorted(culprits))
        states[d.name] = dict(sorted(check_store(ld, d.name, meta, ref, fails).items()))
        # reopening reads no event-file byte and says the same
        again = Logdir(str(d), cache)
        if again.problems() != ld.problems() or again.stats["bytes_read"] != 0:
            fails.add(f"{d.name}: reopen differs or reads event files", "(log directory)",
                      f"bytes_read={again.stats['bytes_read']}")
    monkeypatch.undo()
    t_index = time.monotonic()

    # the pure-Python scanner on every tenth mutant: the C scanner's results
    py_runs = sorted(os.listdir(python_dir))
    pyld, _ = open_index(str(python_dir), str(tmp_path / "cache_py"), py_runs, fails, "python", force_python=True)
    check_python_twin(pyld, results, meta, fails)
    t_python = time.monotonic()

    # HTTP: TensorBoard's WSGI app; --logdir is an empty directory, the fuzzed ones are opened with
    # logdir= (TensorBoard's own loader never reads them)
    client = Client(make_app(root / "default", cache, "--tb_plus_roots", str(root)))
    try:
        for d in (framing_dir, payload_dir):
            http_checks(client, str(d), results[d.name], fails, d.name)
        for name, (path, runs) in aside.items():  # the mutants that broke indexing, served alone
            http_aside(client, path, runs, fails, name)
    finally:
        for th in threading.enumerate():
            if th.name in ("Reloader", "tb_plus-indexer"):
                th.join(60)
    t_end = time.monotonic()
    print(f"\nfuzz: {len(meta)} mutants ({N_FRAMING} framing, {N_PAYLOAD} payload), "
          f"ops {dict(sorted(ops_seen.items()))}")
    print(f"fuzz: independent reading of the mutants: {states}")
    print(f"fuzz: setup+index+store checks {t_index - t_start:.1f} s, python twin {t_python - t_index:.1f} s, "
          f"http {t_end - t_python:.1f} s")
    if fails.notes:
        print("fuzz notes (no failure):\n" + fails.report(fails.notes))
    assert not fails, "\n" + fails.report()


def _mk(d):
    os.makedirs(d)
    return d / "events.out.tfevents.1700000000.fuzz"


def check_store(ld, dname, meta, ref, fails):
    """-> counts of the mutants by what the independent reading found (and whether problems came)."""
    import collections

    seen = collections.Counter()
    problems = by_run(ld.problems())
    status = by_run(ld.file_status())
    runs = ld.runs()
    for run in runs:
        m = meta.get((dname, run))
        if m is None:
            fails.add(f"{dname}: unknown run listed", run, "")
            continue
        data, op = m["data"], m["op"]
        probs = problems.get(run, [])
        (fs,) = status[run]
        label = f"{dname}:{op}"
        state, pos, events = walk(data)
        seen[(state if data else "empty") + (" (with problems)" if probs else "")] += 1
        desc = f"{op}: size {len(data)}, independent reading: {state} at {pos}; problems " + \
            str([(p.kind, p.count, p.offset) for p in probs]) + f", status {fs}"
        if fs["error"]:
            fails.add(f"{label}: file error", run, desc)
        if not data:
            if [p.kind for p in probs] != ["empty"]:
                fails.add("empty file not reported as empty", run, desc)
        elif state == "clean":
            if probs or fs["pending_bytes"] or fs["offset"] != len(data) or fs["records"] != len(events):
                fails.add("sound file reported with problems / pending / wrong record count", run,
                          desc + f", records {len(events)}")
        elif state == "tail":
            if probs or fs["pending_bytes"] != len(data) - pos or fs["offset"] != pos:
                fails.add("incomplete last record not (only) left pending", run, desc)
        else:
            if m["payload_at"] is not None and not probs:
                # a CRC-valid record protobuf rejects: the store may decode it (its decoder reads only
                # the fields it needs) but must not drop what is before or crash; see check below
                pass
            elif not probs:
                fails.add("damage not reported in problems()", run, desc)
            if probs and min(p.offset for p in probs) != pos:
                fails.add("first problem not at the first damaged record", run, desc)
        # values: every point before the damage, in order
        want_tags = set().union(*(ref[b]["scalar_tags"] for b in m["bases"])) if m["bases"] else set()
        if m["payload_at"] is not None:  # the changed record and what follows may hold anything
            events = [e for e in events if e[0] < m["payload_at"]]
        before = {t: [key(*x) for x in pts] for t, pts in scalar_points(events, want_tags).items()}

        def check_values(kind, tag, items):
            if m["payload_at"] is not None or not m["bases"]:
                return
            pool = set().union(*(ref[b][kind].get(tag, set()) for b in m["bases"]))
            extra = [x for x in items if x not in pool]
            if extra:
                fails.add(f"{label}: {kind} value not in the base file", run, f"{tag!r}: {str(extra[0])[:120]}")

        got = read_all(ld, run, fails, check_values)
        for t, pts in before.items():
            if got.get(t, [])[: len(pts)] != pts:
                fails.add(f"{label}: points before the damage not served as written", run, f"{t!r}: {desc}")
            if state in ("clean", "tail") and m["payload_at"] is None and got.get(t) != pts:
                fails.add(f"{label}: sound records' points differ", run, t)
        if m["payload_at"] is not None and state == "bad" and pos == m["payload_at"]:
            # a record protobuf rejects, between intact ones: skipped or not, it must not take them down
            (b,) = m["bases"]
            others = [e for i, e in enumerate(ref[b]["events"]) if i != m["payload_rec"]]
            for t, pts in scalar_points_by_rule(others).items():
                if not is_subsequence([key(*x) for x in pts], got.get(t, [])):
                    fails.add(f"{label}: the points of intact records lost around a record protobuf rejects", run,
                              f"{t!r}: {len(pts)} intact points, {len(got.get(t, []))} served; {desc}")
        if m["payload_at"] is None and m["bases"]:
            for t, pts in got.items():
                base = [k for b in m["bases"] for k in [key(*x) for x in ref[b]["points"].get(t, [])]]
                if not set(pts) <= set(base):
                    fails.add(f"{label}: scalar point not in the base file", run, t)
                elif m["ordered"] and len(m["bases"]) == 1 and not is_subsequence(pts, base):
                    fails.add(f"{label}: scalar points out of the base's order", run, t)
    return seen


def check_python_twin(pyld, results, meta, fails):
    pprobs, pstatus = by_run(pyld.problems()), by_run(pyld.file_status())
    for prun in pyld.runs():
        dname, run = prun.split("_", 1)
        ld = results[dname]
        if run not in ld.runs():
            continue  # moved aside: already reported
        m = meta[(dname, run)]
        c = sorted((p.kind, p.count, p.offset) for p in ld.problems() if p.run == run)
        p = sorted((x.kind, x.count, x.offset) for x in pprobs.get(prun, []))
        (cs,) = [s for s in ld.file_status() if s["run"] == run]
        (ps,) = pstatus[prun]
        same_status = all(cs[k] == ps[k] for k in ("size", "offset", "records", "values", "pending_bytes", "error"))
        rejected = None
        if m["payload_at"] is not None:
            state, pos, _ = walk(m["data"])
            if state == "bad" and pos == m["payload_at"]:
                rejected = pos  # protobuf does not parse the changed record
                if p != [("unparsable", 1, pos)]:
                    fails.add(f"Python scanner: a record protobuf rejects not reported unparsable ({m['op']})",
                              f"{dname}/{run}", f"problems {p}, record at {pos}")
        if c != p or not same_status:
            detail = f"C {c} {cs['records']}/{cs['values']}, Python {p} {ps['records']}/{ps['values']}"
            if rejected is not None:
                # the C decoder reads only the fields it indexes, so it may accept what protobuf refuses
                fails.note(f"C scanner accepts a record protobuf rejects ({m['op']})", f"{dname}/{run}", detail)
            else:
                fails.add(f"C and Python scanners differ ({m['op']})", f"{dname}/{run}", detail)
            continue
        for kind in KINDS:
            if ld.tags(run, kind) != pyld.tags(prun, kind):
                fails.add(f"C and Python scanners differ in tags ({m['op']})", f"{dname}/{run}", kind)
        for t in ld.tags(run):
            a, b = ld.scalars(run, t), pyld.scalars(prun, t)
            if not (np.array_equal(a.step, b.step) and np.array_equal(a.wall_time, b.wall_time, equal_nan=True)
                    and np.array_equal(a.value, b.value, equal_nan=True)):
                fails.add(f"C and Python scanners differ in a series ({m['op']})", f"{dname}/{run}", t)
