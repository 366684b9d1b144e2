#!/usr/bin/env python3
"""tests/support/hub_server.py — a stand-in for the HuggingFace hub on
127.0.0.1, for tests/test_getmodel.c: it serves a tiny synthesized GPT-2
folder (config.json, model.safetensors, vocab.json, merges.txt; the standard
library only) in the hub's path layout, /openai-community/NAME/resolve/main/FILE,
the way the hub does: model.safetensors as a large (LFS) file, a 302 to a CDN
path with X-Linked-Etag (its sha256) and X-Linked-Size; Content-Length always;
Range requests honoured. --fault makes it misbehave in one way:

  drop      the first GET of the weights stops halfway and drops the connection
  short     every GET of the weights stops 1000 bytes before the end and drops it
  shortlen  HEAD announces the weights' length; GET sends 1000 bytes fewer, as a
            complete response
  corrupt   the weights are served with one byte changed (the sha256 announced
            is the true one)
  404       the weights are not found
  badmodel  config.json disagrees with the weights (every sum and length right)
  nohead    the CDN refuses HEAD (403), as a signed address for GET alone does

  hub_server.py --port-file F [--fault KIND] [--log F] [--dump DIR]
The port (ephemeral) is written to --port-file once it listens; every request
("METHOD PATH range=...") is appended to --log; --dump writes the true files.
"""
import argparse
import hashlib
import http.server
import json
import os
import random
import socket
import struct
import threading

NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
LFS = "model.safetensors"
C, L, T, H = 64, 2, 32, 2   # n_embd, n_layer, n_positions, n_head


def bytes_to_unicode():
    """GPT-2's map of the 256 bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def tiny_model(bad_config):
    """The four files of a 2-layer, 64-wide GPT-2 with a 262-token BPE, laid
    out as the hub's gpt2 is (Conv1D [in, out] weights, the attn.bias masks)."""
    byte_char = bytes_to_unicode()
    vocab = {byte_char[b]: b for b in range(256)}
    merges = [("H", "e"), ("l", "l"), ("l", "o"), ("He", "ll"), ("Hell", "o")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    V = len(vocab)
    config = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
              "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": T,
              "n_embd": C + 16 if bad_config else C, "n_head": H, "n_layer": L,
              "n_positions": T, "vocab_size": V}
    shapes = [("wte.weight", [V, C]), ("wpe.weight", [T, C])]
    for i in range(L):
        p = "h.%d." % i
        shapes += [(p + "ln_1.weight", [C]), (p + "ln_1.bias", [C]),
                   (p + "attn.c_attn.weight", [C, 3 * C]), (p + "attn.c_attn.bias", [3 * C]),
                   (p + "attn.c_proj.weight", [C, C]), (p + "attn.c_proj.bias", [C]),
                   (p + "ln_2.weight", [C]), (p + "ln_2.bias", [C]),
                   (p + "mlp.c_fc.weight", [C, 4 * C]), (p + "mlp.c_fc.bias", [4 * C]),
                   (p + "mlp.c_proj.weight", [4 * C, C]), (p + "mlp.c_proj.bias", [C]),
                   (p + "attn.bias", [1, 1, T, T])]   # the causal mask buffer the hub's files carry
    shapes += [("ln_f.weight", [C]), ("ln_f.bias", [C])]
    rng = random.Random(15)
    header, data, off = {}, [], 0
    for name, shape in shapes:
        n = 1
        for d in shape:
            n *= d
        if name.endswith(".attn.bias"):
            vals = [1.0 if j <= i else 0.0 for i in range(T) for j in range(T)]
        else:
            base = 1.0 if name.endswith("weight") and len(shape) == 1 else 0.0
            vals = [base + rng.uniform(-0.05, 0.05) for _ in range(n)]
        data.append(struct.pack("<%df" % n, *vals))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * n]}
        off += 4 * n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return {
        "config.json": json.dumps(config, indent=2).encode(),
        "vocab.json": json.dumps(vocab, ensure_ascii=False).encode(),
        "merges.txt": ("#version: 0.2\n" + "".join("%s %s\n" % m for m in merges)).encode(),
        LFS: struct.pack("<Q", len(h)) + h + b"".join(data),
    }


class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.route(head=True)

    def do_GET(self):
        self.route(head=False)

    def route(self, head):
        hub = self.server.hub
        hub.note("%s %s range=%s" % (self.command, self.path, self.headers.get("Range")))
        parts = self.path.split("/")
        if (len(parts) == 6 and parts[1] == "openai-community" and parts[2] in NAMES
                and parts[3:5] == ["resolve", "main"] and parts[5] in hub.files):
            f = parts[5]
            if f == LFS and hub.fault == "404":
                return self.send_plain(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
            if f == LFS:
                sha = hashlib.sha256(hub.files[f]).hexdigest()
                return self.send_plain(302, b"", {
                    "Location": "http://127.0.0.1:%d/cdn/%s" % (self.server.server_port, sha),
                    "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(len(hub.files[f]))})
            body = hub.files[f]
            etag = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
            return self.send_file(body, head, {"ETag": '"%s"' % etag})
        if len(parts) == 3 and parts[1] == "cdn" and parts[2] == hashlib.sha256(hub.files[LFS]).hexdigest():
            if head and hub.fault == "nohead":
                return self.send_plain(403, b"SignatureDoesNotMatch", {})
            return self.send_file(hub.files[LFS], head, {}, lfs=True)
        self.send_plain(404, b"Not found", {})

    def send_plain(self, code, body, headers):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_file(self, body, head, headers, lfs=False):
        hub = self.server.hub
        fault = hub.fault if lfs else None
        if fault == "corrupt":
            body = bytearray(body)
            body[len(body) // 2] ^= 0x5A
            body = bytes(body)
        if fault == "shortlen" and not head:
            body = body[:-1000]
        total, start = len(body), 0
        rng = self.headers.get("Range")
        if rng:
            if not rng.startswith("bytes=") or not rng.endswith("-") or not rng[6:-1].isdigit():
                return self.send_plain(400, b"unsupported Range", {})
            start = int(rng[6:-1])
            if start >= total:
                return self.send_plain(416, b"", {"Content-Range": "bytes */%d" % total})
        self.send_response(206 if rng else 200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Accept-Ranges", "bytes")
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, total - 1, total))
        self.send_header("Content-Length", str(total - start))
        self.end_headers()
        if head:
            return
        end = total
        if fault == "short":
            end = max(start, total - 1000)
        elif fault == "drop" and hub.first_get():
            end = start + (total - start) // 2
        self.wfile.write(body[start:end])
        if end < total:   # drop the connection with bytes owed
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class HubState:
    def __init__(self, fault, log):
        self.fault = fault
        self.files = tiny_model(fault == "badmodel")
        self.log = log
        self.lock = threading.Lock()
        self.dropped = False

    def note(self, line):
        if self.log:
            with self.lock, open(self.log, "a") as f:
                f.write(line + "\n")

    def first_get(self):
        with self.lock:
            first, self.dropped = not self.dropped, True
            return first


def main():
    ap = argparse.ArgumentParser(description="a stand-in for the HuggingFace hub on 127.0.0.1")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--fault", default="none",
                    choices=["none", "drop", "short", "shortlen", "corrupt", "404", "badmodel", "nohead"])
    ap.add_argument("--log")
    ap.add_argument("--dump")
    a = ap.parse_args()
    hub = HubState(a.fault, a.log)
    if a.dump:
        os.makedirs(a.dump, exist_ok=True)
        for name, body in hub.files.items():
            with open(os.path.join(a.dump, name), "wb") as f:
                f.write(body)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    server.daemon_threads = True
    server.hub = hub
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_port)
    os.replace(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
