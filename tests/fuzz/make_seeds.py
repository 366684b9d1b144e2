# tests/fuzz/make_seeds.py — makes the committed seed corpora under tests/fuzz/corpus/NAME/
# from the fixtures (small files: headers, configs, vocab subsets, damaged variants).
# Usage: python3 tests/fuzz/make_seeds.py ../shared/fixtures tests/fuzz/corpus
# (the outputs are committed; rerun only to change the seeds).
import collections, io, json, os, pickle, struct, sys, types, zipfile
FX = sys.argv[1]; OUT = sys.argv[2]
def put(name, fname, data):
    d = os.path.join(OUT, name); os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, fname), 'wb').write(data)

def st(entries, data, meta=True, pad=True):
    h = {}
    if meta: h["__metadata__"] = {"format": "pt"}
    h.update(entries)
    hb = json.dumps(h, separators=(',', ':')).encode()
    if pad: hb += b' ' * ((8 - len(hb) % 8) % 8)
    return struct.pack('<Q', len(hb)) + hb + data

# ---- safetensors
put('safetensors', 'tiny_valid', st({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                                     "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
                                     "c": {"dtype": "BF16", "shape": [], "data_offsets": [32, 34]}}, bytes(range(34))))
# gpt2-like names, data in a different order than the (sorted) header
ents = {}; off = 0; blobs = []
for name, shape in [("wte.weight", [5, 4]), ("wpe.weight", [3, 4]), ("h.0.ln_1.weight", [4]), ("h.0.ln_1.bias", [4]),
                    ("h.0.attn.c_attn.weight", [4, 12]), ("ln_f.weight", [4]), ("transformer.h.1.mlp.c_fc.weight", [4, 16])]:
    n = 4
    for s in shape: n *= s
    ents[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}; off += n
put('safetensors', 'gpt2_like', st(ents, bytes(off)))
put('safetensors', 'empty_object', st({}, b'', meta=False))
put('safetensors', 'zero_size', st({"z": {"dtype": "F32", "shape": [0, 7], "data_offsets": [0, 0]}}, b''))
put('safetensors', 'escaped_name', st({"h\u00e9\\\"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)))
put('safetensors', 'overlap', st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)))
put('safetensors', 'reversed', st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8)))
put('safetensors', 'shape_overflow', st({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40, 16], "data_offsets": [0, 0]}}, b''))
put('safetensors', 'bad_dtype', st({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)))
put('safetensors', 'len_too_big', struct.pack('<Q', 1 << 40) + b'{}')
for fx in ('gpt2_tiny_hf', 'shakespeare_char'):
    b = open(os.path.join(FX, fx, 'model.safetensors'), 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    # the real header with its data cut off (every entry then points past the end)
    put('safetensors', fx + '_header_only', b[:8 + n])
    # the real header truncated to 2 KiB total
    put('safetensors', fx + '_truncated', b[:2048])
    # the real header with small data: shapes kept, offsets rebased to tiny tensors
    h = json.loads(b[8:8 + n])
    e2 = {}; off = 0
    for k in sorted(h):
        if k == '__metadata__': continue
        sz = 8
        e2[k] = {"dtype": "F16", "shape": [2, 2], "data_offsets": [off, off + sz]}; off += sz
    put('safetensors', fx + '_rebased', st(e2, bytes(off)))

# ---- config.json
for fx in ('gpt2_tiny_hf', 'shakespeare_char'):
    put('config', fx, open(os.path.join(FX, fx, 'config.json'), 'rb').read())
put('config', 'huge_layers', '{"n_layer":1048576,"n_head":4,"n_embd":128,"block_size":64,"vocab_size":65}')
put('config', 'huge_vocab', '{"n_layer":2,"n_head":4,"n_embd":128,"block_size":64,"vocab_size":2147483648}')
put('config', 'negative', '{"n_layer":-1,"n_head":4,"n_embd":128,"block_size":64,"vocab_size":65}')
put('config', 'indivisible', '{"n_layer":2,"n_head":3,"n_embd":128,"n_positions":64,"vocab_size":65,"n_ctx":32}')
put('config', 'hf_variants', '{"model_type":"gpt2","n_layer":1,"n_head":1,"n_embd":8,"n_positions":16,"vocab_size":300,'
    '"activation_function":"gelu","layer_norm_epsilon":1e-6,"eos_token_id":null,"n_inner":32,"x":[1,{"y":[true,false,null]}]}')
put('config', 'unicode', '{"n_layer":1,"n_head":1,"n_embd":8,"block_size":8,"vocab_size":9,"activation_function":"\\u0067elu\\ud83d\\ude00"}')
put('config', 'deep', '[' * 100 + ']' * 100)
put('config', 'float_ints', '{"n_layer":2.0,"n_head":4e0,"n_embd":1e400,"block_size":64,"vocab_size":65}')

# ---- char vocab: 2 bytes (vocab_size - 1, little-endian), then vocab.json
v = open(os.path.join(FX, 'shakespeare_char', 'vocab.json'), 'rb').read()
put('charvocab', 'shakespeare', struct.pack('<H', 64) + v)
put('charvocab', 'unicode', struct.pack('<H', 4) + '{"stoi":{},"itos":["a","\\u00e9","\\ud83d\\ude00","\u4e2d","\\n"]}'.encode())
put('charvocab', 'too_many', struct.pack('<H', 1) + b'{"itos":["a","b","c"]}')
put('charvocab', 'bad_escape', struct.pack('<H', 1) + b'{"itos":["\\ud800","\\x"]}')
put('charvocab', 'empty_token', struct.pack('<H', 1) + b'{"itos":["", "a"]}')

# ---- GPT-2 BPE files: 2 bytes vocab_size, vocab.json, 0 byte, merges.txt
voc = json.load(open(os.path.join(FX, 'gpt2_tiny_hf', 'vocab.json'), encoding='utf-8'))
merges = open(os.path.join(FX, 'gpt2_tiny_hf', 'merges.txt'), encoding='utf-8').read().split('\n')[1:]
for keep in (300, 420):
    sub = {k: i for k, i in voc.items() if i < keep}
    ms = []
    for m in merges:
        if not m: continue
        a, b = m.split(' ')
        if a in sub and b in sub and a + b in sub: ms.append(m)
        elif len(ms) and (a + b) in voc and voc[a + b] >= keep: break
    vb = json.dumps(sub, ensure_ascii=False).encode()
    mb = ('#version: 0.2\n' + '\n'.join(ms) + '\n').encode()
    put('bpe_load', 'first_%d' % keep, struct.pack('<H', keep) + vb + b'\0' + mb)
    if keep == 300:
        put('bpe_load', 'padded_vocab', struct.pack('<H', keep + 50) + vb + b'\0' + mb)
        put('bpe_load', 'crlf_no_version', struct.pack('<H', keep) + vb + b'\0' + '\r\n'.join(ms).encode())
        put('bpe_load', 'escaped', struct.pack('<H', keep) + json.dumps(sub, ensure_ascii=True).encode() + b'\0' + mb)
        put('bpe_load', 'bad_merge', struct.pack('<H', keep) + vb + b'\0' + b'#version: 0.2\nq z\n\xc4\xa0 t t\n')
        put('bpe_load', 'missing_byte', struct.pack('<H', keep) + json.dumps({k: i for k, i in sub.items() if i != 7}, ensure_ascii=False).encode() + b'\0' + mb)

# ---- BPE encode: texts from the tokenizer vectors, and some raw bytes
lines = open(os.path.join(FX, 'tokenizer', 'gpt2_vectors.jsonl'), encoding='utf-8').read().splitlines()
for i, l in enumerate(lines[::12]):
    put('bpe_encode', 'vec_%03d' % i, json.loads(l)['text'].encode('utf-8', 'surrogatepass'))
put('bpe_encode', 'invalid_utf8', b'ab\xff\xfe\xc0\x80 \xed\xa0\x80 caf\xc3 x\x00y \xf4\x90\x80\x80')
put('bpe_encode', 'spaces', b' ' * 300 + b'\n\n\t \r\n' + b'a' * 200)
put('bpe_encode', 'digits', b'1234567890' * 20 + b"'s'S'll'LL")

# ---- CLI: argv joined with 0 bytes
for i, a in enumerate([
        ['--model', 'm', '--num_samples', '3', '--temperature=0.5', '--top_k', '10', '--seed', '42'],
        ['--start-ids', '1,2,3', '--dtype', 'bf16', '--compare', '--arena-limit', '1000000'],
        ['--max-new-tokens', '-5', '--top_p', 'nan', '--batch', '99999999999'],
        ['--compare=1', 'stray', '--seed', '-1'],
        ['--kv_cache', 'off', '--start', 'hello world', '--temperature'],
        ['--start-ids=,1,,', '--arena-limit=18446744073709551616', '--top_p=1e39']]):
    put('cli', 'argv_%d' % i, '\0'.join(a))

# ---- nanoGPT ckpt.pt and meta.pkl (no torch here: torch.save's format by hand)
def fake_torch():
    torch = types.ModuleType('torch'); utils = types.ModuleType('torch._utils')
    def _rebuild_tensor_v2(*a): pass
    def _rebuild_parameter(*a): pass
    for f in (_rebuild_tensor_v2, _rebuild_parameter):
        f.__module__ = utils.__name__; f.__qualname__ = f.__name__
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2; utils._rebuild_parameter = _rebuild_parameter
    for k in ('FloatStorage', 'HalfStorage', 'BFloat16Storage', 'LongStorage'):
        c = type(k, (), {}); c.__module__ = 'torch'; setattr(torch, k, c)
    torch._utils = utils
    sys.modules['torch'] = torch; sys.modules['torch._utils'] = utils
    return torch, utils

torch, tutils = fake_torch()

class Storage:
    def __init__(self, key, kind, data, numel): self.key, self.kind, self.data, self.numel = key, kind, data, numel

class Tensor:
    def __init__(self, st, off, size, stride, param=False):
        self.st, self.off, self.size, self.stride, self.param = st, off, size, stride, param
    def __reduce__(self):
        t = (tutils._rebuild_tensor_v2, (self.st, self.off, tuple(self.size), tuple(self.stride), False,
                                         collections.OrderedDict()))
        if not self.param: return t
        inner = Tensor(self.st, self.off, self.size, self.stride)
        return (tutils._rebuild_parameter, (inner, True, collections.OrderedDict()))

class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage): return ('storage', getattr(torch, obj.kind), obj.key, 'cpu', obj.numel)
        return None

def zput(zf, name, data):
    zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)   # fixed time: same bytes every run

def torch_zip(obj, storages, root='ckpt'):
    b = io.BytesIO(); TorchPickler(b, protocol=2).dump(obj)
    z = io.BytesIO()
    with zipfile.ZipFile(z, 'w', zipfile.ZIP_STORED) as zf:
        zput(zf, root + '/data.pkl', b.getvalue())
        for s in storages: zput(zf, root + '/data/' + s.key, s.data)
        zput(zf, root + '/version', '3\n')
    return z.getvalue()

def tiny_ckpt(C=4, L=1, V=3, T=8, kind='FloatStorage', param=True):
    es = {'FloatStorage': 4, 'HalfStorage': 2, 'BFloat16Storage': 2}[kind]
    sts = []; model = collections.OrderedDict()
    def add(name, shape, share=None):
        if share is not None: model[name] = share; return share
        n = 1
        for d in shape: n *= d
        s = Storage(str(len(sts)), kind, bytes(range(256)) * (n * es // 256) + bytes(n * es % 256), n); sts.append(s)
        stride = [1] * len(shape)
        for i in range(len(shape) - 2, -1, -1): stride[i] = stride[i + 1] * shape[i + 1]
        t = Tensor(s, 0, shape, stride, param); model[name] = t; return t
    wte = add('transformer.wte.weight', [V, C]); add('transformer.wpe.weight', [T, C])
    for l in range(L):
        p = 'transformer.h.%d.' % l
        add(p + 'ln_1.weight', [C]); add(p + 'attn.c_attn.weight', [3 * C, C]); add(p + 'attn.c_proj.weight', [C, C])
        add(p + 'attn.bias', [1, 1, T, T]); add(p + 'ln_2.weight', [C])
        add(p + 'mlp.c_fc.weight', [4 * C, C]); add(p + 'mlp.c_proj.weight', [C, 4 * C])
    add('transformer.ln_f.weight', [C]); add('lm_head.weight', None, share=wte)
    args = dict(n_layer=L, n_head=1, n_embd=C, block_size=T, bias=False, vocab_size=V, dropout=0.0)
    obj = {'model': model, 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.001, 'params': [0, 1]}]},
           'model_args': args, 'iter_num': 2000, 'best_val_loss': 1.5, 'config': dict(args, out_dir='out')}
    return torch_zip(obj, sts)

put('ckpt', 'tiny_f32', tiny_ckpt())
put('ckpt', 'tiny_f16_plain', tiny_ckpt(kind='HalfStorage', param=False))
put('ckpt', 'tiny_bf16_2layers', tiny_ckpt(L=2, kind='BFloat16Storage'))
t = tiny_ckpt()
put('ckpt', 'truncated_half', t[:len(t) // 2])
put('ckpt', 'no_eocd', t[:-22])
put('ckpt', 'bad_global', t.replace(b'_rebuild_parameter', b'_rebuild_parametex'))
# the fixture's own pickle with its storages left out (every tensor then names a missing storage)
with zipfile.ZipFile(os.path.join(FX, 'shakespeare_char', 'ckpt.pt')) as zf:
    pk = [n for n in zf.namelist() if n.endswith('data.pkl')][0]
    real = zf.read(pk)
z = io.BytesIO()
with zipfile.ZipFile(z, 'w', zipfile.ZIP_STORED) as zf:
    zput(zf, pk, real)
    zput(zf, pk.rsplit('/', 1)[0] + '/version', '3\n')
put('ckpt', 'fixture_pickle_only', z.getvalue())

meta = open(os.path.join(FX, 'shakespeare_char', 'meta.pkl'), 'rb').read()
put('meta', 'shakespeare', struct.pack('<H', 64) + meta)
itos = {0: 'a', 1: '\u00e9', 2: '\U0001F600', 3: '\n'}
small = {'vocab_size': 4, 'itos': itos, 'stoi': {v: k for k, v in itos.items()}}
for proto in (2, 3, 4):
    put('meta', 'small_p%d' % proto, struct.pack('<H', 3) + pickle.dumps(small, protocol=proto))
put('meta', 'stoi_mismatch', struct.pack('<H', 3) + pickle.dumps(dict(small, stoi={'a': 1}), protocol=4))
put('meta', 'truncated', struct.pack('<H', 64) + meta[:300])
# 'P', k, k storage sizes (u16 LE), a bare pickle: fuzz_ckpt wraps it into a zip with those storages
def p_form(z):
    with zipfile.ZipFile(io.BytesIO(z)) as zf:
        sizes = []
        while 'ckpt/data/%d' % len(sizes) in zf.namelist(): sizes.append(zf.getinfo('ckpt/data/%d' % len(sizes)).file_size)
        return b'P' + bytes([len(sizes)]) + b''.join(struct.pack('<H', x) for x in sizes) + zf.read('ckpt/data.pkl')
for name, kw in (('pickle_f32', {}), ('pickle_f16_plain', dict(kind='HalfStorage', param=False)),
                 ('pickle_bf16_2layers', dict(L=2, kind='BFloat16Storage'))):
    put('ckpt', name, p_form(tiny_ckpt(**kw)))
put('ckpt', 'pickle_fixture', b'P\0' + real)

# ---- sampler: vocab-1, top_k, top_p*255, temperature*32, seed (8 bytes), float logits
import random
rnd = random.Random(1234)
def sampler_seed(v, k, p, t, logits):
    return bytes([v - 1, k, p, t]) + struct.pack('<Q', 1337) + struct.pack('<%df' % len(logits), *logits)
put('sampler', 'normal_65', sampler_seed(65, 200, 0, 26, [rnd.gauss(0, 3) for _ in range(65)]))
put('sampler', 'greedy_ties', sampler_seed(16, 0, 0, 0, [1.0] * 16))
put('sampler', 'top_k_3_top_p', sampler_seed(40, 3, 230, 32, [rnd.gauss(0, 1) for _ in range(40)]))
put('sampler', 'nan_inf', sampler_seed(8, 4, 128, 16, [float('nan'), 1.0, float('inf'), -float('inf'), 0.0, 5e-45, -1e38, 3e38]))
put('sampler', 'all_neg_inf', sampler_seed(6, 2, 0, 32, [-float('inf')] * 6))
put('sampler', 'huge_256', sampler_seed(256, 255, 255, 1, [rnd.uniform(-3e38, 3e38) for _ in range(256)]))

# ---- open: 1 byte config (bit 0 biases, bit 1 HF layout with 2 layers), then model.safetensors
def model_st(variant, dtype='F32', seed=7):
    r = random.Random(seed); bias = variant & 1 or variant & 2; hf = variant & 2
    C, V, T, L = 8, 5, 8, 2 if hf else 1
    pre = '' if hf else 'transformer.'
    ents, blobs, off = {}, [], 0
    fmt = {'F32': ('<f', 4), 'F16': ('<e', 2)}[dtype]
    def add(name, shape):
        nonlocal off
        n = 1
        for d in shape: n *= d
        b = b''.join(struct.pack(fmt[0], r.gauss(0, 0.5)) for _ in range(n))
        ents[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}; off += len(b); blobs.append(b)
    def lin(name, i, o):
        add(pre + name + '.weight', [i, o] if hf else [o, i])
        if bias: add(pre + name + '.bias', [o])
    add(pre + 'wte.weight', [V, C]); add(pre + 'wpe.weight', [T, C])
    for l in range(L):
        h = 'h.%d.' % l
        for ln in ('ln_1', 'ln_2'):
            add(pre + h + ln + '.weight', [C])
            if bias: add(pre + h + ln + '.bias', [C])
        lin(h + 'attn.c_attn', C, 3 * C); lin(h + 'attn.c_proj', C, C)
        lin(h + 'mlp.c_fc', C, 4 * C); lin(h + 'mlp.c_proj', 4 * C, C)
    add(pre + 'ln_f.weight', [C])
    if bias: add(pre + 'ln_f.bias', [C])
    return st(ents, b''.join(blobs))
for v in range(4):
    put('open', 'valid_%d' % v, bytes([v]) + model_st(v))
put('open', 'valid_f16_greedy', bytes([4 | 1]) + model_st(1, 'F16'))
m = bytearray(model_st(0)); m[-40:] = struct.pack('<10f', *([float('nan')] * 5 + [float('inf')] * 5))
put('open', 'nan_weights', bytes([0]) + bytes(m))
put('open', 'wrong_layout', bytes([2]) + model_st(0))

# ---- issue 14's shapes, small: a far memo chain read by many model_args entries past
# opcodes that build nothing, a list of many None, torch's own zip layout (data
# descriptors, "FB" padding in the local extra field), a local extra length that moves
# the data, a directory of many entries; long pre-tokens; CR-only merges; a CJK char
# vocabulary; escaped config keys and values; numbers at the float limits.
def far_chain_pickle(frames=0, nones=0, far_args=20):
    b = bytearray(b'\x80\x02}(')
    def s(t): t = t.encode(); b.extend(b'X' + struct.pack('<I', len(t)) + t)
    def glob(m, n): b.extend(b'c' + m.encode() + b'\n' + n.encode() + b'\n')
    def tensor(key, numel, shape):
        glob('torch._utils', '_rebuild_tensor_v2'); b.extend(b'((')
        s('storage'); glob('torch', 'FloatStorage'); s(key); s('cpu'); b.extend(b'K' + bytes([numel]) + b'tQK\0(')
        for d in shape: b.extend(b'K' + bytes([d]))
        b.extend(b't(')
        for d in ([shape[1], 1] if len(shape) == 2 else [1]): b.extend(b'K' + bytes([d]))
        b.extend(b't\x89}tR')
    s('model'); glob('collections', 'OrderedDict'); b.extend(b')R(')
    s('transformer.wte.weight'); tensor('0', 12, [3, 4]); s('transformer.ln_f.weight'); tensor('1', 4, [4]); b.extend(b'u')
    s('chain'); b.extend(b'](K\x01q\x00h\x00q\x01h\x01q\x02h\x02q\x03e')
    for _ in range(frames): b.extend(b'\x95' + struct.pack('<Q', 0))
    if nones: s('junk'); b.extend(b'](' + b'N' * nones + b'e')
    s('model_args'); b.extend(b'}(')
    for k, v in (('n_layer', None), ('n_head', 1), ('n_embd', 4), ('block_size', 8), ('vocab_size', 3)):
        s(k); b.extend(b'h\x03' if v is None else b'K' + bytes([v]))
    s('bias'); b.extend(b'\x89')
    for k in range(far_args): s('x%d' % k); b.extend(b'h\x03')
    b.extend(b'uu.')
    return bytes(b)
put('ckpt', 'p14_far_chain', b'P\x02' + struct.pack('<HH', 48, 16) + far_chain_pickle(frames=400))
put('ckpt', 'p14_many_nones', b'P\x02' + struct.pack('<HH', 48, 16) + far_chain_pickle(nones=3000))

def torch_style_zip(entries, junk=0, extra_of=None):
    """A stored zip as torch writes it: flag 8 with a data descriptor after each entry, an FB padding record."""
    out = bytearray(); cd = bytearray()
    for name, data in entries:
        nb = name.encode(); crc = zlib.crc32(data)
        pad = (-(len(out) + 30 + len(nb) + 4)) % 64
        extra = b'FB' + struct.pack('<H', pad) + b'Z' * pad
        lho = len(out)
        out += struct.pack('<IHHHHHIIIHH', 0x04034b50, 0, 0x808, 0, 0, 0, 0, 0, 0, len(nb), len(extra)) + nb + extra
        out += data + struct.pack('<IIII', 0x08074b50, crc, len(data), len(data))
        cd += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 0, 0, 0x808, 0, 0, 0, crc, len(data), len(data), len(nb),
                          0, 0, 0, 0, 0, lho) + nb
    for k in range(junk):
        nb = ('ckpt/junk/%d' % k).encode()
        cd += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 0, 0, 0x808, 0, 0, 0, 0, 0, 0, len(nb), 0, 0, 0, 0, 0, 0) + nb
    n = len(entries) + junk
    cdo = len(out); out += cd
    out += struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, n, n, len(cd), cdo, 0)
    return bytes(out)
import zlib
with zipfile.ZipFile(io.BytesIO(tiny_ckpt())) as zf:
    tiny_entries = [(n, zf.read(n)) for n in zf.namelist()]
put('ckpt', 'z14_torch_style', torch_style_zip(tiny_entries))
put('ckpt', 'z14_many_entries', torch_style_zip(tiny_entries, junk=400))
moved = bytearray(torch_style_zip(tiny_entries + [('ckpt/filler', bytes(range(256)) * 280)]))
at = moved.find(b'ckpt/data/0') - 30
moved[at + 28:at + 30] = struct.pack('<H', 0xfff0)
put('ckpt', 'z14_extra_fff0', bytes(moved))

put('bpe_encode', 'long_equals', b'=' * 3000)
put('bpe_encode', 'long_letters', bytes(rnd.choice(b'abcdefghijklmnopqrstuvwxyz') for _ in range(3000)))
put('bpe_encode', 'long_digits_symbols', b'1234567890' * 150 + b'=-+*#!?~' * 190)
sub = {k: i for k, i in voc.items() if i < 300}
ms = [m for m in merges if m and all(x in sub for x in m.split(' ')) and ''.join(m.split(' ')) in sub]
put('bpe_load', 'cr_only', struct.pack('<H', 300) + json.dumps(sub, ensure_ascii=False).encode() + b'\0' +
    ('#version: 0.2\r' + '\r'.join(ms) + '\r').encode())
cjk = [chr(0x4E00 + i) for i in range(300)]
put('charvocab', 'cjk_300', struct.pack('<H', 299) + json.dumps({'stoi': {c: i for i, c in enumerate(cjk)}, 'itos': cjk}).encode())
put('charvocab', 'dup_char', struct.pack('<H', 3) + '{"stoi":{"a":0,"b":1,"c":2,"d":3},"itos":["a","b","a","d"]}'.encode())
put('charvocab', 'stoi_dup_id', struct.pack('<H', 2) + '{"stoi":{"a":0,"b":0,"c":2},"itos":["a","b","c"]}'.encode())
put('config', 'escaped_keys', '{"model_type":"gpt2","n_l\\u0061yer":1,"n_\\u0068ead":1,"n_embd":8,"n_positions":16,'
    '"vocab_size":300,"activation_function":"gel\\u0075"}')
put('config', 'nul_in_value', '{"model_type":"gpt2","n_layer":1,"n_head":1,"n_embd":8,"n_positions":16,"vocab_size":300,'
    '"activation_function":"gelu\\u0000xyz"}')
put('cli', 'argv_float_limits', '\0'.join(['--temperature', '1e-38', '--top_p=1e-46', '--seed', '99999999999999999999',
                                          '--start-ids', '99999999999999999999']))

# every regression input is a seed too
REG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'regress')
for name in sorted(os.listdir(REG)) if os.path.isdir(REG) else []:
    for f in sorted(os.listdir(os.path.join(REG, name))):
        put(name, 'regress_' + f, open(os.path.join(REG, name, f), 'rb').read())
