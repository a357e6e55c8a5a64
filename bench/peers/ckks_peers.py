#!/usr/bin/env python3
"""Side-by-side CKKS timings of existing libraries on one machine.

Each (library, ring degree, thread count, mode) is measured in its own
subprocess so that thread settings (OMP_NUM_THREADS, GOMAXPROCS, the
library's own thread option) are fixed before the library is loaded and so
that memory figures of one library do not leak into another.

Usage (from this folder, with the virtual environment active):

    python ckks_peers.py                     # everything, tables on stdout
    python ckks_peers.py --libs openfhe,seal --logn 14 --no-boot
    python ckks_peers.py --json raw.json     # also keep the raw numbers

Libraries (skipped with a note when they cannot be imported):
    openfhe   OpenFHE through its Python wrapper `openfhe`
    desilo    desilofhe (DESILO FHE library, CPU mode)
    seal      Microsoft SEAL through tenseal.sealapi (TenSEAL's raw SEAL bindings)
    lattigo   Lattigo v6 (baahl-nyu fork) through the C API shipped in orion-fhe
    lattigo-client  Lattigo v6 client side through orion-v2-lattigo
              (key generation / encode / encrypt / decrypt only: it has no evaluator)
    ensi      ensi's own CKKS engine through `ensi bench ckks --json` (the binary at
              --ensi-bin, default $ENSI_BIN or target/release/ensi of the repository
              this script sits in; build it with `cargo build --release`)

A future implementation can be added as another worker function taking the
same `cfg` dict and returning the same result keys (see `WORKERS`).
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# common parameter targets (the same Q chain for every library where the
# library lets us choose it)
# ---------------------------------------------------------------------------
# logN -> (levels L, first prime bits, scale bits); Q = [60] + [40]*L
CHAIN = {16: (20, 60, 40), 14: (7, 60, 40)}
# key-switching digits we ask for where the library lets us choose
DNUM = {16: 3, 14: 8}

OPS = ["enc", "mul_relin", "rescale", "rotate1", "ptmul", "add", "dec"]
OP_TITLES = {
    "enc": "encode+encrypt",
    "mul_relin": "ct*ct mul+relin",
    "rescale": "rescale",
    "rotate1": "rotate 1",
    "ptmul": "pt*ct mul",
    "add": "ct+ct add",
    "dec": "decrypt+decode",
}


# ---------------------------------------------------------------------------
# helpers used inside workers
# ---------------------------------------------------------------------------
def rss_mib():
    """(current RSS, peak RSS) of this process in MiB, from /proc."""
    cur = peak = float("nan")
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return cur, peak


def bench(fn, reps, warmup=1):
    """Median wall time of fn() in milliseconds (fn may return a value that is dropped)."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def bench_prep(prep, fn, reps, warmup=1):
    """Like bench, but prep() makes a fresh input (untimed) for every call of fn(arg)."""
    for _ in range(warmup):
        fn(prep())
    ts = []
    for _ in range(reps):
        a = prep()
        t0 = time.perf_counter()
        fn(a)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def prec_bits(got, want):
    """(-log2 max |err|, -log2 mean |err|) over the slots compared."""
    import numpy as np

    got = np.asarray(got, dtype=float)[: len(want)]
    err = np.abs(got - np.asarray(want, dtype=float))
    mx = float(err.max())
    mean = float(err.mean())
    f = lambda e: (float("inf") if e == 0 else -math.log2(e))
    return round(f(mx), 1), round(f(mean), 1)


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t0


# ---------------------------------------------------------------------------
# OpenFHE
# ---------------------------------------------------------------------------
def worker_openfhe(cfg):
    import numpy as np
    import openfhe as o

    logn, reps = cfg["logn"], cfg["reps"]
    N = 1 << logn
    res = {}
    rng = np.random.default_rng(1)

    if cfg["mode"] == "ops":
        L, q0, sbits = CHAIN[logn]
        p = o.CCParamsCKKSRNS()
        p.SetMultiplicativeDepth(L)
        p.SetScalingModSize(sbits)
        p.SetFirstModSize(q0)
        p.SetScalingTechnique(o.ScalingTechnique.FIXEDMANUAL)
        p.SetRingDim(N)
        p.SetBatchSize(N // 2)
        p.SetSecurityLevel(o.SecurityLevel.HEStd_128_classic)
        p.SetKeySwitchTechnique(o.KeySwitchTechnique.HYBRID)
        p.SetNumLargeDigits(DNUM[logn])
        p.SetSecretKeyDist(o.SecretKeyDist.UNIFORM_TERNARY)
        cc = o.GenCryptoContext(p)
        for feat in (o.PKESchemeFeature.PKE, o.PKESchemeFeature.KEYSWITCH, o.PKESchemeFeature.LEVELEDSHE):
            cc.Enable(feat)
        t0 = time.perf_counter()
        kp = cc.KeyGen()
        cc.EvalMultKeyGen(kp.secretKey)
        cc.EvalRotateKeyGen(kp.secretKey, [1])
        res["keygen_s"] = round(time.perf_counter() - t0, 2)
        res["params"] = openfhe_describe(cc, o, p, L, q0, sbits, "FIXEDMANUAL")

        x = rng.uniform(-1, 1, N // 2)
        y = rng.uniform(-1, 1, N // 2)
        xl, yl = x.tolist(), y.tolist()
        enc = lambda v: cc.Encrypt(kp.publicKey, cc.MakeCKKSPackedPlaintext(v))
        c1, c2 = enc(xl), enc(yl)
        pt2 = cc.MakeCKKSPackedPlaintext(yl)
        dec = lambda c: cc.Decrypt(c, kp.secretKey).GetRealPackedValue()
        t = {}
        t["enc"] = bench(lambda: enc(xl), reps)
        t["mul_relin"] = bench(lambda: cc.EvalMult(c1, c2), reps)
        prod = cc.EvalMult(c1, c2)
        t["rescale"] = bench(lambda: cc.Rescale(prod), reps)
        t["rotate1"] = bench(lambda: cc.EvalRotate(c1, 1), reps)
        t["ptmul"] = bench(lambda: cc.EvalMult(c1, pt2), reps)
        t["add"] = bench(lambda: cc.EvalAdd(c1, c2), reps)
        t["dec"] = bench(lambda: dec(c1), reps)
        res["times_ms"] = t
        res["prec_enc"] = prec_bits(dec(c1), x)
        res["prec_mul"] = prec_bits(dec(cc.Rescale(prod)), x * y)
        res["prec_rot"] = prec_bits(dec(cc.EvalRotate(c1, 1)), np.roll(x, -1))
        res["mem_mib"] = rss_mib()
        return res

    # ---- bootstrapping ----
    sbits, q0 = cfg.get("boot_scale", 40), cfg.get("boot_q0", 60)
    level_budget = [4, 4]
    levels_after = cfg.get("boot_levels_after", 10)
    sk_dist = o.SecretKeyDist.UNIFORM_TERNARY
    depth = levels_after + o.FHECKKSRNS.GetBootstrapDepth(level_budget, sk_dist)
    p = o.CCParamsCKKSRNS()
    p.SetSecretKeyDist(sk_dist)
    sec = cfg.get("boot_security", "128")
    p.SetSecurityLevel(o.SecurityLevel.HEStd_128_classic if sec == "128" else o.SecurityLevel.HEStd_NotSet)
    p.SetRingDim(N)
    p.SetScalingModSize(sbits)
    p.SetFirstModSize(q0)
    p.SetScalingTechnique(o.ScalingTechnique.FLEXIBLEAUTO)
    p.SetMultiplicativeDepth(depth)
    p.SetBatchSize(N // 2)
    p.SetNumLargeDigits(cfg.get("boot_dnum", 0))
    cc = o.GenCryptoContext(p)
    for feat in (o.PKESchemeFeature.PKE, o.PKESchemeFeature.KEYSWITCH, o.PKESchemeFeature.LEVELEDSHE,
                 o.PKESchemeFeature.ADVANCEDSHE, o.PKESchemeFeature.FHE):
        cc.Enable(feat)
    slots = N // 2
    (_, t_setup) = timed(lambda: cc.EvalBootstrapSetup(level_budget))
    rss0, _ = rss_mib()
    t0 = time.perf_counter()
    kp = cc.KeyGen()
    cc.EvalMultKeyGen(kp.secretKey)
    cc.EvalBootstrapKeyGen(kp.secretKey, slots)
    res["boot_keygen_s"] = round(time.perf_counter() - t0, 1)
    res["boot_setup_s"] = round(t_setup, 1)
    rss1, _ = rss_mib()
    res["boot_key_mem_mib"] = round(rss1 - rss0)
    res["params"] = openfhe_describe(cc, o, p, depth, q0, sbits, "FLEXIBLEAUTO")
    res["params"]["boot"] = f"levelBudget {level_budget}, depth {depth}, security {sec}"
    x = rng.uniform(-1, 1, slots)
    pt = cc.MakeCKKSPackedPlaintext(x.tolist(), 1, depth - 1)
    ct = cc.Encrypt(kp.publicKey, pt)
    times = []
    out = None
    for _ in range(cfg["boot_reps"]):
        t0 = time.perf_counter()
        out = cc.EvalBootstrap(ct)
        times.append(time.perf_counter() - t0)
    res["boot_s"] = round(statistics.median(times), 2)
    res["boot_levels_after"] = depth - out.GetLevel() - (out.GetNoiseScaleDeg() - 1)
    try:
        got = cc.Decrypt(out, kp.secretKey).GetRealPackedValue()
        res["boot_prec"] = prec_bits(got, x)
    except Exception as e:  # noqa: BLE001  (OpenFHE refuses to decode when the error is too large)
        res["boot_prec"] = None
        res["notes"] = [_clean(f"decrypting the bootstrapped ciphertext failed: {e}")]
    res["boot_input"] = f"level {depth - 1} of {depth}"
    res["mem_mib"] = rss_mib()
    return res


def _find_key(x, key):
    if isinstance(x, dict):
        if key in x:
            return x[key]
        for v in x.values():
            r = _find_key(v, key)
            if r is not None:
                return r
    elif isinstance(x, list):
        for v in x:
            r = _find_key(v, key)
            if r is not None:
                return r
    return None


def openfhe_moduli(cc, o):
    """Q primes of a crypto context, read from its JSON serialization (the Python API has no getter)."""
    j = json.loads(o.Serialize(cc, o.JSON))
    plist = _find_key(_find_key(j, "elp"), "p")
    qs = []
    for e in plist:
        v = _find_key(e, "cm")["v"]
        qs.append(int(v[0] if isinstance(v, list) else v))
    return qs, _find_key(j, "dnum"), _find_key(j, "ab")


def openfhe_describe(cc, o, p, depth, q0, sbits, tech):
    try:
        qs, dnum, aux = openfhe_moduli(cc, o)
    except Exception:  # noqa: BLE001
        qs, dnum, aux = None, None, 60
    d = {"N": cc.GetRingDimension()}
    if qs:
        bits = [math.log2(q) for q in qs]
        dnum = dnum or p.GetNumLargeDigits()
        a = -(-len(qs) // dnum)
        max_digit = max(sum(bits[i:i + a]) for i in range(0, len(qs), a))
        nP = math.ceil(max_digit / aux)  # OpenFHE: sizeP = ceil(maxDigitBits / auxBits)
        d.update({"logQ": round(sum(bits), 1), "logQP(est)": round(sum(bits) + aux * nP), "nQ": len(qs),
                  "nP(est)": nP, "dnum": dnum})
    d.update({"scale_bits": sbits, "q0_bits": q0, "technique": tech,
              "secret": str(p.GetSecretKeyDist()).split(".")[-1].lower(),
              "security": str(p.GetSecurityLevel()).split(".")[-1], "keyswitch": "HYBRID"})
    return d


# ---------------------------------------------------------------------------
# desilofhe
# ---------------------------------------------------------------------------
def worker_desilo(cfg):
    import numpy as np
    import desilofhe as d

    logn, reps, th = cfg["logn"], cfg["reps"], cfg["threads"]
    rng = np.random.default_rng(1)
    res = {}
    if cfg["mode"] == "ops":
        L = CHAIN[logn][0]
        e = d.Engine(max_level=L, mode="cpu", thread_count=th)
        N = 2 * e.slot_count
        if N != (1 << logn):
            raise RuntimeError(f"desilofhe gave N={N} for max_level={L}, wanted 2^{logn}")
        t0 = time.perf_counter()
        sk = e.create_secret_key()
        pk = e.create_public_key(sk)
        rlk = e.create_relinearization_key(sk)
        rk1 = e.create_fixed_rotation_key(sk, 1)
        res["keygen_s"] = round(time.perf_counter() - t0, 2)
        x = rng.uniform(-1, 1, N // 2)
        y = rng.uniform(-1, 1, N // 2)
        c1, c2 = e.encrypt(x, pk), e.encrypt(y, pk)
        pt2 = e.encode(y)
        t = {}
        t["enc"] = bench(lambda: e.encrypt(x, pk), reps)
        t["mul_relin"] = bench(lambda: e.multiply(c1, c2, rlk), reps)  # includes the rescale
        t["rescale"] = None
        t["rotate1"] = bench(lambda: e.rotate(c1, rk1), reps)
        t["ptmul"] = bench(lambda: e.multiply(c1, pt2), reps)  # includes the rescale
        t["add"] = bench(lambda: e.add(c1, c2), reps)
        t["dec"] = bench(lambda: e.decrypt(c1, sk), reps)
        res["times_ms"] = t
        res["notes"] = ["multiply rescales automatically: mul+relin and pt*ct include the rescale; no separate rescale"]
        res["prec_enc"] = prec_bits(e.decrypt(c1, sk), x)
        res["prec_mul"] = prec_bits(e.decrypt(e.multiply(c1, c2, rlk), sk), x * y)
        res["prec_rot"] = prec_bits(e.decrypt(e.rotate(c1, rk1), sk), np.roll(x, -1))
        res["params"] = desilo_describe(e, c1)
        res["mem_mib"] = rss_mib()
        return res

    # ---- bootstrapping ----
    e = d.Engine(mode="cpu", bootstrap=True, thread_count=th)
    N = 2 * e.slot_count
    sk = e.create_secret_key()
    pk = e.create_public_key(sk)
    kind = cfg.get("desilo_boot_key", "medium")
    rss0, _ = rss_mib()
    t0 = time.perf_counter()
    rlk = e.create_relinearization_key(sk)
    conj = e.create_conjugation_key(sk)
    if kind == "small":
        rot = e.create_rotation_key(sk)
        sbk = e.create_small_bootstrap_key(sk)
        boot = lambda c: e.bootstrap(c, rlk, conj, rot, sbk)
    else:
        bk = e.create_bootstrap_key(sk, size=kind)
        boot = lambda c: e.bootstrap(c, rlk, conj, bk)
    res["boot_keygen_s"] = round(time.perf_counter() - t0, 1)
    rss1, _ = rss_mib()
    res["boot_key_mem_mib"] = round(rss1 - rss0)
    x = rng.uniform(-1, 1, N // 2)
    ct = e.encrypt(x, pk, level=0)
    times = []
    out = None
    for _ in range(cfg["boot_reps"]):
        t0 = time.perf_counter()
        out = boot(ct)
        times.append(time.perf_counter() - t0)
    res["boot_s"] = round(statistics.median(times), 2)
    res["boot_levels_after"] = out.level
    res["boot_prec"] = prec_bits(e.decrypt(out, sk), x)
    res["params"] = desilo_describe(e, e.encrypt(x, pk))
    res["params"]["boot"] = f"bootstrap key '{kind}', input at level 0"
    res["mem_mib"] = rss_mib()
    return res


def desilo_describe(e, ct):
    N = 2 * e.slot_count
    return {"N": N, "max_level": e.max_level,
            "ct_MiB_top": round(ct.nbytes / 2**20, 1),
            "note": "modulus sizes, dnum and secret distribution are not exposed by the Python API"}


# ---------------------------------------------------------------------------
# SEAL through tenseal.sealapi
# ---------------------------------------------------------------------------
def worker_seal(cfg):
    import numpy as np
    import tenseal.sealapi as s

    if cfg["mode"] != "ops":
        raise NotImplementedError("SEAL has no CKKS bootstrapping")
    logn, reps = cfg["logn"], cfg["reps"]
    N = 1 << logn
    L, q0, sbits = CHAIN[logn]
    bits = [q0] + [sbits] * L + [60]  # last prime = SEAL's single special prime
    parms = s.EncryptionParameters(s.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(N)
    parms.set_coeff_modulus(s.CoeffModulus.Create(N, bits))
    maxbits = s.CoeffModulus.MaxBitCount(N, s.SEC_LEVEL_TYPE.TC128)
    sec = s.SEC_LEVEL_TYPE.TC128 if maxbits > 0 else s.SEC_LEVEL_TYPE.NONE
    ctx = s.SEALContext(parms, True, sec)
    if not ctx.parameters_set():
        raise RuntimeError(ctx.parameters_error_message())
    res = {}
    t0 = time.perf_counter()
    kg = s.KeyGenerator(ctx)
    sk = kg.secret_key()
    pk = s.PublicKey()
    kg.create_public_key(pk)
    rlk = s.RelinKeys()
    kg.create_relin_keys(rlk)
    gk = s.GaloisKeys()
    kg.create_galois_keys([3], gk)  # Galois element 3 = rotation by one slot
    res["keygen_s"] = round(time.perf_counter() - t0, 2)
    encoder = s.CKKSEncoder(ctx)
    encryptor = s.Encryptor(ctx, pk)
    decryptor = s.Decryptor(ctx, sk)
    ev = s.Evaluator(ctx)
    scale = 2.0 ** sbits
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, N // 2)
    y = rng.uniform(-1, 1, N // 2)
    xl, yl = x.tolist(), y.tolist()

    def enc(v):
        pt = s.Plaintext()
        encoder.encode(v, scale, pt)
        ct = s.Ciphertext(ctx)
        encryptor.encrypt(pt, ct)
        return ct

    def dec(c):
        pt = s.Plaintext()
        decryptor.decrypt(c, pt)
        return encoder.decode_double(pt)

    def mul_relin(a, b):
        out = s.Ciphertext(ctx)
        ev.multiply(a, b, out)
        ev.relinearize_inplace(out, rlk)
        return out

    def out_op(f):
        out = s.Ciphertext(ctx)
        f(out)
        return out

    c1, c2 = enc(xl), enc(yl)
    pt2 = s.Plaintext()
    encoder.encode(yl, scale, pt2)
    prod = mul_relin(c1, c2)
    t = {}
    t["enc"] = bench(lambda: enc(xl), reps)
    t["mul_relin"] = bench(lambda: mul_relin(c1, c2), reps)
    t["rescale"] = bench(lambda: out_op(lambda o: ev.rescale_to_next(prod, o)), reps)
    t["rotate1"] = bench(lambda: out_op(lambda o: ev.rotate_vector(c1, 1, gk, o)), reps)
    t["ptmul"] = bench(lambda: out_op(lambda o: ev.multiply_plain(c1, pt2, o)), reps)
    t["add"] = bench(lambda: out_op(lambda o: ev.add(c1, c2, o)), reps)
    t["dec"] = bench(lambda: dec(c1), reps)
    res["times_ms"] = t
    res["prec_enc"] = prec_bits(dec(c1), x)
    res["prec_mul"] = prec_bits(dec(out_op(lambda o: ev.rescale_to_next(prod, o))), x * y)
    res["prec_rot"] = prec_bits(dec(out_op(lambda o: ev.rotate_vector(c1, 1, gk, o))), np.roll(x, -1))
    logq = sum(bits[:-1])
    res["params"] = {"N": N, "logQ": logq, "logQP": sum(bits), "nQ": len(bits) - 1, "nP": 1,
                     "dnum": len(bits) - 1, "scale_bits": sbits, "q0_bits": q0,
                     "secret": "uniform ternary",
                     "security": "TC128" if sec == s.SEC_LEVEL_TYPE.TC128 else
                     f"NONE (SEAL's table stops at N=2^15; logQP={sum(bits)})"}
    res["notes"] = ["SEAL evaluator is single-threaded; there is no thread setting"]
    res["mem_mib"] = rss_mib()
    return res


# ---------------------------------------------------------------------------
# Lattigo through the C API bundled in orion-fhe (orion/backend/lattigo)
# ---------------------------------------------------------------------------
class _ArrF(ctypes.Structure):
    _fields_ = [("Data", ctypes.POINTER(ctypes.c_float)), ("Length", ctypes.c_ulong)]


class _ArrU64(ctypes.Structure):
    _fields_ = [("Data", ctypes.POINTER(ctypes.c_ulong)), ("Length", ctypes.c_ulong)]


def _orion_lib():
    import importlib.util

    spec = importlib.util.find_spec("orion")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("orion-fhe is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "backend", "lattigo", "lattigo-linux.so")
    lib = ctypes.CDLL(path)
    I, U, F, V = ctypes.c_int, ctypes.c_ulong, ctypes.c_float, None
    PI, PF = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float)
    sig = {
        "NewScheme": ([I, PI, I, PI, I, I, I, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p], V),
        "NewKeyGenerator": ([], V), "GenerateSecretKey": ([], V), "GeneratePublicKey": ([], V),
        "GenerateRelinearizationKey": ([], V), "GenerateEvaluationKeys": ([], V),
        "NewEncoder": ([], V), "NewEncryptor": ([], V), "NewDecryptor": ([], V), "NewEvaluator": ([], V),
        "Encode": ([PF, I, I, U], I), "Decode": ([I], _ArrF), "Encrypt": ([I], I), "Decrypt": ([I], I),
        "AddRotationKey": ([I], V), "RotateNew": ([I, I], I), "Rescale": ([I], I),
        "MulRelinCiphertextNew": ([I, I], I), "MulPlaintextNew": ([I, I], I),
        "AddCiphertextNew": ([I, I], I), "SubPlaintextNew": ([I, I], I),
        "NewBootstrapper": ([PI, I, I], V), "Bootstrap": ([I, I], I),
        "GetCiphertextLevel": ([ctypes.c_longlong], I), "GetCiphertextScale": ([I], U),
        "GetModuliChain": ([], _ArrU64), "DeleteCiphertext": ([I], V), "DeletePlaintext": ([I], V),
        "FreeCArray": ([ctypes.c_void_p], V),
    }
    for name, (a, r) in sig.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = a, r
    return lib, path


class _Lattigo:
    def __init__(self, logn, logq, logp, logscale, h):
        self.lib, self.path = _orion_lib()
        ia = lambda v: (ctypes.c_int * len(v))(*v)
        self.lib.NewScheme(logn, ia(logq), len(logq), ia(logp), len(logp), logscale, h, b"standard", b"", b"")
        self.N, self.scale = 1 << logn, 1 << logscale

    def keygen(self):
        l = self.lib
        l.NewKeyGenerator(); l.GenerateSecretKey(); l.GeneratePublicKey()
        l.GenerateRelinearizationKey(); l.GenerateEvaluationKeys()
        l.NewEncoder(); l.NewEncryptor(); l.NewDecryptor()
        l.NewEvaluator()  # orion also makes all power-of-two rotation keys here

    def encode(self, v, level, scale=None):
        arr = (ctypes.c_float * len(v))(*v)
        return self.lib.Encode(arr, len(v), level, scale or self.scale)

    def encrypt(self, pid):
        return self.lib.Encrypt(pid)

    def decode(self, pid):
        r = self.lib.Decode(pid)
        import numpy as np

        out = np.ctypeslib.as_array(r.Data, shape=(r.Length,)).astype(float).copy()
        self.lib.FreeCArray(ctypes.cast(r.Data, ctypes.c_void_p))
        return out

    def decrypt_decode(self, cid):
        pid = self.lib.Decrypt(cid)
        out = self.decode(pid)
        self.lib.DeletePlaintext(pid)
        return out

    def moduli(self):
        r = self.lib.GetModuliChain()
        out = [int(r.Data[i]) for i in range(r.Length)]
        self.lib.FreeCArray(ctypes.cast(r.Data, ctypes.c_void_p))
        return out


def worker_lattigo(cfg):
    import numpy as np

    logn, reps = cfg["logn"], cfg["reps"]
    N = 1 << logn
    rng = np.random.default_rng(1)
    res = {}
    h = 192
    if cfg["mode"] == "ops":
        L, q0, sbits = CHAIN[logn]
        logq = [q0] + [sbits] * L
        nP = -(-len(logq) // DNUM[logn])  # dnum = ceil(#Q / #P)
        logp = [61] * nP
        lt = _Lattigo(logn, logq, logp, sbits, h)
        t0 = time.perf_counter()
        lt.keygen()
        res["keygen_s"] = round(time.perf_counter() - t0, 2)
        res["notes"] = ["keygen includes orion's 15 power-of-two rotation keys",
                        "values cross the orion C API as float32 (inputs are float32-exact; errors measured homomorphically)"]
        lib = lt.lib
        x = rng.uniform(-1, 1, N // 2).astype(np.float32).astype(float)
        y = rng.uniform(-1, 1, N // 2).astype(np.float32).astype(float)
        xl, yl = x.tolist(), y.tolist()
        top = L
        enc = lambda v: lt.encrypt(lt.encode(v, top))

        def enc_free(v):
            pid = lt.encode(v, top)
            cid = lt.encrypt(pid)
            lib.DeletePlaintext(pid)
            lib.DeleteCiphertext(cid)

        c1, c2 = enc(xl), enc(yl)
        p2 = lt.encode(yl, top)

        def op(f):
            def g():
                cid = f()
                lib.DeleteCiphertext(cid)
            return g

        t = {}
        t["enc"] = bench(lambda: enc_free(xl), reps)
        t["mul_relin"] = bench(op(lambda: lib.MulRelinCiphertextNew(c1, c2)), reps)
        t["rescale"] = bench_prep(lambda: lib.MulRelinCiphertextNew(c1, c2),
                                  lambda cid: (lib.Rescale(cid), lib.DeleteCiphertext(cid)), reps)
        t["rotate1"] = bench(op(lambda: lib.RotateNew(c1, 1)), reps)
        t["ptmul"] = bench(op(lambda: lib.MulPlaintextNew(c1, p2)), reps)
        t["add"] = bench(op(lambda: lib.AddCiphertextNew(c1, c2)), reps)
        t["dec"] = bench(lambda: lt.decrypt_decode(c1), reps)
        res["times_ms"] = t
        # precision: subtract the expected value homomorphically, decode the (small) error
        def err_bits(cid, want):
            lvl = lib.GetCiphertextLevel(cid)
            pw = lt.encode(list(map(float, np.asarray(want, dtype=np.float32))), lvl, lib.GetCiphertextScale(cid))
            d = lib.SubPlaintextNew(cid, pw)
            e = lt.decrypt_decode(d)[: N // 2]
            # residual float32 rounding of `want` is below 2^-25 and is added back as 0
            return prec_bits(e, np.zeros(N // 2))
        res["prec_enc"] = err_bits(c1, x)
        m = lib.MulRelinCiphertextNew(c1, c2)
        lib.Rescale(m)
        # the reference x*y is rounded to float32 when encoded: that adds at most 2^-25 to the error
        res["prec_mul"] = err_bits(m, x * y)
        res["prec_rot"] = err_bits(lib.RotateNew(c1, 1), np.roll(x, -1))
        q = lt.moduli()
        res["params"] = {"N": N, "logQ": round(sum(math.log2(v) for v in q), 1),
                         "logQP": round(sum(math.log2(v) for v in q) + sum(logp), 1),
                         "nQ": len(q), "nP": len(logp), "dnum": -(-len(q) // len(logp)),
                         "scale_bits": sbits, "q0_bits": q0, "secret": f"ternary, Hamming weight {h}",
                         "security": "~128 (Lattigo: LogQP <= 1550 at N=2^16 with H=192)" if logn == 16 else
                         "see logQP (HE standard 128-bit bound at N=2^14 is 438)"}
        res["mem_mib"] = rss_mib()
        return res

    # ---- bootstrapping: Lattigo's own example parameters ----
    logq = [55] + [40] * 10
    logp = [61, 61, 61]
    btp_logp = [61, 61, 61, 61]
    lt = _Lattigo(logn, logq, logp, 40, h)
    lt.keygen()
    lib = lt.lib
    slots = N // 2
    rss0, _ = rss_mib()
    t0 = time.perf_counter()
    lib.NewBootstrapper((ctypes.c_int * len(btp_logp))(*btp_logp), len(btp_logp), slots)
    res["boot_keygen_s"] = round(time.perf_counter() - t0, 1)
    rss1, _ = rss_mib()
    res["boot_key_mem_mib"] = round(rss1 - rss0)
    x = rng.uniform(-1, 1, slots).astype(np.float32).astype(float)
    cid = lt.encrypt(lt.encode(x.tolist(), 0))
    times = []
    out = None
    for _ in range(cfg["boot_reps"]):
        if out is not None:
            lib.DeleteCiphertext(out)
        t0 = time.perf_counter()
        out = lib.Bootstrap(cid, slots)
        times.append(time.perf_counter() - t0)
    res["boot_s"] = round(statistics.median(times), 2)
    res["boot_levels_after"] = lib.GetCiphertextLevel(out)
    lvl = lib.GetCiphertextLevel(out)
    pw = lt.encode(x.tolist(), lvl, lib.GetCiphertextScale(out))
    e = lt.decrypt_decode(lib.SubPlaintextNew(out, pw))[:slots]
    res["boot_prec"] = prec_bits(e, np.zeros(slots))
    q = lt.moduli()
    res["notes"] = ["boot keygen includes building the bootstrapping evaluator",
                    "RSS of the Go heap includes uncollected garbage (GOGC=100, GOMEMLIMIT=18GiB)"]
    res["params"] = {"N": N, "logQ": round(sum(math.log2(v) for v in q), 1), "nQ": len(q), "nP": len(logp),
                     "scale_bits": 40, "q0_bits": 55, "secret": f"ternary, Hamming weight {h}",
                     "boot": "Lattigo example: residual LogQ [55]+[40]*10, LogP [61]*3; bootstrapping LogP [61]*4, "
                             "defaults otherwise (CtS 4x56, EvalMod 60, StC 3x39, ephemeral H=32)"}
    res["mem_mib"] = rss_mib()
    return res


# ---------------------------------------------------------------------------
# Lattigo client side through orion-v2-lattigo (no evaluator)
# ---------------------------------------------------------------------------
def worker_lattigo_client(cfg):
    import numpy as np
    from lattigo import ckks, rlwe

    if cfg["mode"] != "ops":
        raise NotImplementedError("orion-v2-lattigo has no evaluator (client-side only)")
    logn, reps = cfg["logn"], cfg["reps"]
    N = 1 << logn
    L, q0, sbits = CHAIN[logn]
    logq = [q0] + [sbits] * L
    logp = [61] * (-(-len(logq) // DNUM[logn]))
    params = ckks.Parameters(logn, logq, logp, sbits, "standard", h=192)
    t0 = time.perf_counter()
    kg = rlwe.KeyGenerator(params)
    sk = kg.gen_secret_key()
    pk = kg.gen_public_key(sk)
    kg.gen_relin_key(sk)
    kg.gen_galois_key(sk, params.galois_element(1))
    res = {"keygen_s": round(time.perf_counter() - t0, 2)}
    enc = ckks.Encoder(params)
    encr = rlwe.Encryptor(params, pk)
    decr = rlwe.Decryptor(params, sk)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, N // 2)
    xl = x.tolist()
    sc = params.default_scale()
    t = {k: None for k in OPS}
    t["enc"] = bench(lambda: encr.encrypt_new(enc.encode(xl, L, sc)), reps)
    c1 = encr.encrypt_new(enc.encode(xl, L, sc))
    t["dec"] = bench(lambda: enc.decode(decr.decrypt_new(c1), N // 2), reps)
    res["times_ms"] = t
    res["prec_enc"] = prec_bits(enc.decode(decr.decrypt_new(c1), N // 2), x)
    res["params"] = {"N": N, "nQ": len(logq), "nP": len(logp), "scale_bits": sbits,
                     "secret": "ternary, Hamming weight 192"}
    res["notes"] = ["client-only binding: no evaluation operations"]
    res["mem_mib"] = rss_mib()
    return res


# ---------------------------------------------------------------------------
# ensi (its own CKKS engine, through the `ensi bench ckks --json` command)
# ---------------------------------------------------------------------------
# logN -> ensi's named set with the chain above: Q = 60 + L x 40 bits; dnum 3 at 2^16
# (P = 5 x 61 bits), dnum 8 at 2^14 (P = 1 x 61 bits); 2^15 (60 + 16 x 40, dnum 5) for ensi alone
ENSI_SETS = {16: "N16_QP1165_PEERS", 15: "N15_QP880", 14: "N14_QP401_PEERS"}


def ensi_default_bin():
    """$ENSI_BIN, else target/release/ensi of the repository holding this script, else of the cwd."""
    if os.environ.get("ENSI_BIN"):
        return os.environ["ENSI_BIN"]
    repo = os.path.abspath(os.path.join(HERE, "..", ".."))
    in_repo = os.path.join(repo, "target", "release", "ensi")
    return in_repo if os.path.exists(in_repo) else os.path.abspath(os.path.join("target", "release", "ensi"))


def worker_ensi(cfg):
    if cfg["mode"] != "ops":
        raise RuntimeError("ensi: only the operations are benchmarked here (no bootstrapping yet)")
    logn, reps, th = cfg["logn"], cfg["reps"], cfg["threads"]
    if logn not in ENSI_SETS:
        raise RuntimeError(f"ensi has no named set at N=2^{logn} (has {sorted(ENSI_SETS)})")
    binary = cfg.get("ensi_bin") or ensi_default_bin()
    if not os.path.exists(binary):
        raise RuntimeError(f"no ensi binary at {binary}: run `cargo build --release` or pass --ensi-bin")
    cmd = [binary, "bench", "ckks", "--set", ENSI_SETS[logn], "--threads", str(th),
           "--reps", str(reps), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])}: exit {p.returncode}: {p.stderr.strip()[-400:]}")
    (r,) = json.loads(p.stdout)
    res = {k: r[k] for k in ("times_ms", "params", "keygen_s")}
    # the peers' `enc` is a public-key encryption and their enc precision is of that ciphertext
    res["prec_enc"] = r["prec_enc_pk"]
    res["prec_mul"] = r["prec_mul"]
    res["prec_rot"] = r["prec_rot"]
    res["prec_enc_sk"] = r["prec_enc"]
    res["times_cpu_ms"] = r["times_cpu_ms"]
    res["mem_mib"] = r["mem_mib"]  # of the ensi process
    res["notes"] = [f"enc is a public-key encryption (secret-key: {fmt_ms(r['times_ms'].get('enc_sk'))} ms, "
                    f"prec {r['prec_enc'][0]}/{r['prec_enc'][1]}); "
                    f"hoisted rotation {fmt_ms(r['times_ms'].get('rotate_hoisted8'))} ms each of 8; "
                    f"mem is the ensi process's; threads: a dedicated rayon pool of {th}"]
    return res


WORKERS = {
    "openfhe": worker_openfhe,
    "desilo": worker_desilo,
    "seal": worker_seal,
    "lattigo": worker_lattigo,
    "lattigo-client": worker_lattigo_client,
    "ensi": worker_ensi,
}
BOOT_LIBS = {"openfhe", "desilo", "lattigo"}
MULTITHREAD_LIBS = {"openfhe", "desilo", "lattigo", "ensi"}  # lattigo: GOMAXPROCS only (ops are sequential)


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------
def versions(ensi_bin=None):
    from importlib import metadata

    out = {}
    try:
        p = subprocess.run([ensi_bin or ensi_default_bin(), "--version"], capture_output=True, text=True)
        out["ensi"] = p.stdout.strip().split()[-1] if p.returncode == 0 else None
    except OSError:
        out["ensi"] = None
    for dist in ("openfhe", "desilofhe", "tenseal", "orion-fhe", "orion-v2-lattigo", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except Exception:
            out[dist] = None
    try:
        import openfhe

        v = getattr(openfhe, "__version__", None)
        bv = os.path.join(os.path.dirname(openfhe.__file__), "BUILD_VERSION")
        if v is None and os.path.exists(bv):
            v = open(bv).read().strip()
        out["openfhe"] = out["openfhe"] or v
    except Exception as e:  # noqa: BLE001
        out["openfhe"] = f"import failed: {type(e).__name__}: {e}"
    return out


def run_worker(lib, logn, threads, mode, args, extra=None):
    cfg = {"lib": lib, "logn": logn, "threads": threads, "mode": mode, "reps": args.reps,
           "boot_reps": args.boot_reps}
    if lib == "ensi":
        cfg["ensi_bin"] = args.ensi_bin
    cfg.update(extra or {})
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "GOMAXPROCS": str(threads),
                "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if lib == "lattigo" and mode == "boot":
        # soft heap limit so that Go's garbage (GOGC=100 lets the heap reach twice the live
        # size) cannot push a 24 GiB machine into the OOM killer; it only matters near the limit
        env.setdefault("GOMEMLIMIT", "18GiB")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s", "cfg": cfg}
    wall = time.time() - t0
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["cfg"], r["wall_s"] = cfg, round(wall, 1)
            return r
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"error": _clean(f"exit {p.returncode}: " + " | ".join(tail)), "cfg": cfg, "wall_s": round(wall, 1)}


def fmt_ms(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ops_table(results, threads):
    lines = [f"| library | N | " + " | ".join(OP_TITLES[o] for o in OPS) +
             " | enc prec (max/mean bits) | mul prec | keygen s | peak RSS MiB |",
             "|" + "---|" * (len(OPS) + 6)]
    for r in results:
        c = r["cfg"]
        if c["mode"] != "ops" or c["threads"] != threads:
            continue
        name = c["lib"]
        if "error" in r:
            lines.append(f"| {name} | 2^{c['logn']} | " + " | ".join(["-"] * len(OPS)) +
                         f" | - | - | - | failed: {r['error'][:120]} |")
            continue
        t = r["times_ms"]
        pe = r.get("prec_enc")
        pm = r.get("prec_mul")
        lines.append(f"| {name} | 2^{c['logn']} | " + " | ".join(fmt_ms(t.get(o)) for o in OPS) +
                     f" | {pe[0]}/{pe[1]} | " + (f"{pm[0]}/{pm[1]}" if pm else "n/a") +
                     f" | {r.get('keygen_s')} | {r['mem_mib'][1]:.0f} |")
    return "\n".join(lines)


def boot_table(results):
    lines = ["| library | N | threads | bootstrap s (median) | prec bits (max/mean err) | levels after | "
             "boot keygen s | boot key mem MiB | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r["cfg"]
        if c["mode"] != "boot":
            continue
        tag = c["lib"] + (f" ({c['variant']})" if c.get("variant") else "")
        if "error" in r:
            lines.append(f"| {tag} | 2^{c['logn']} | {c['threads']} | failed: {r['error'][:160]} | | | | | |")
            continue
        bp = r["boot_prec"]
        bps = f"{bp[0]}/{bp[1]}" if bp else "decode failed (error too large)"
        lines.append(f"| {tag} | 2^{c['logn']} | {c['threads']} | {r['boot_s']} | {bps} | "
                     f"{r['boot_levels_after']} | {r['boot_keygen_s']} | {r['boot_key_mem_mib']} | "
                     f"{r['mem_mib'][1]:.0f} |")
    return "\n".join(lines)


def params_table(results):
    lines = ["| library | mode | parameters |", "|---|---|---|"]
    seen = set()
    for r in results:
        c = r["cfg"]
        if "params" not in r:
            continue
        key = (c["lib"], c["mode"], c["logn"], c.get("variant"))
        if key in seen:
            continue
        seen.add(key)
        tag = c["lib"] + (f" ({c['variant']})" if c.get("variant") else "")
        ps = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        notes = "; ".join(r.get("notes", []))
        lines.append(f"| {tag} | {c['mode']} 2^{c['logn']} | {ps}" + (f"; notes: {notes}" if notes else "") + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--libs", default="openfhe,desilo,seal,lattigo,lattigo-client,ensi")
    ap.add_argument("--ensi-bin", default=None,
                    help="the ensi binary (default: $ENSI_BIN, else target/release/ensi of this repository)")
    ap.add_argument("--logn", default="16,14", help="comma list of log2 ring degrees for the op timings")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=10, help="repetitions per op (median reported)")
    ap.add_argument("--boot-reps", type=int, default=3)
    ap.add_argument("--boot-threads", default="1,2")
    ap.add_argument("--no-boot", action="store_true")
    ap.add_argument("--boot-only", action="store_true")
    ap.add_argument("--openfhe-boot-variants", default="s40@1,s59",
                    help="comma list of s40 (40-bit scale, 128-bit secure) and s59 (library example: 59-bit "
                         "scale, not 128-bit secure at N=2^16); NAME@T runs NAME only with T threads")
    ap.add_argument("--desilo-boot-key", default="medium", help="medium | large | small")
    ap.add_argument("--timeout", type=int, default=1200, help="per worker, seconds")
    ap.add_argument("--json", help="also write raw results to this file")
    ap.add_argument("--from-json", help="only print the report for raw results saved with --json")
    args = ap.parse_args()

    if args.from_json:
        with open(args.from_json) as f:
            d = json.load(f)
        print(render(d["meta"], d["results"]))
        return

    if args.worker:
        cfg = json.loads(args.worker)
        try:
            r = WORKERS[cfg["lib"]](cfg)
        except Exception as e:  # noqa: BLE001
            r = {"error": _clean(f"{type(e).__name__}: {e}")}
        gc.collect()
        print("RESULT " + json.dumps(r), flush=True)
        os._exit(0)  # skip library teardown (Go runtimes, large key sets)

    libs = [l for l in args.libs.split(",") if l]
    logns = [int(v) for v in args.logn.split(",") if v]
    threads = [int(v) for v in args.threads.split(",") if v]
    results = []
    load_start = os.getloadavg()
    log = lambda m: print(m, file=sys.stderr, flush=True)
    if not args.boot_only:
        for th in threads:
            for lib in libs:
                if th > 1 and lib not in MULTITHREAD_LIBS:
                    continue
                for logn in logns:
                    log(f"[ops] {lib} N=2^{logn} threads={th} ...")
                    r = run_worker(lib, logn, th, "ops", args)
                    log(f"      -> {r.get('error') or r.get('times_ms')} ({r.get('wall_s')} s)")
                    results.append(r)
    if not args.no_boot:
        for th in [int(v) for v in args.boot_threads.split(",") if v]:
            for lib in libs:
                if lib not in BOOT_LIBS:
                    continue
                variants = [None]
                if lib == "openfhe":
                    # "s40@1" = run variant s40 only with 1 thread
                    variants = [v.split("@")[0] for v in args.openfhe_boot_variants.split(",")
                                if "@" not in v or int(v.split("@")[1]) == th]
                for var in variants:
                    extra = {}
                    if lib == "openfhe":
                        # s40: q0=48 because OpenFHE needs log2(q0/scale) <= its correction factor (8 here);
                        # dnum=5 is the smallest OpenFHE accepts for N=2^16 at HEStd_128_classic
                        extra = ({"boot_scale": 40, "boot_q0": 48, "boot_security": "128", "boot_dnum": 5,
                                  "variant": "40-bit scale"}
                                 if var == "s40" else
                                 {"boot_scale": 59, "boot_q0": 60, "boot_security": "none", "boot_dnum": 0,
                                  "variant": "59-bit scale, not 128-bit secure"})
                    if lib == "desilo":
                        extra = {"desilo_boot_key": args.desilo_boot_key, "variant": f"{args.desilo_boot_key} key"}
                    log(f"[boot] {lib} {extra.get('variant', '')} threads={th} ...")
                    r = run_worker(lib, 16, th, "boot", args, extra)
                    log(f"      -> {r.get('error') or (r.get('boot_s'), r.get('boot_prec'))} ({r.get('wall_s')} s)")
                    results.append(r)

    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "python": platform.python_version(), "machine": platform.machine(), "cores": os.cpu_count(),
            "cpu": _cpu_name(), "versions": versions(args.ensi_bin), "reps": args.reps, "boot_reps": args.boot_reps,
            "threads": threads, "boot_run": not args.no_boot, "ops_run": not args.boot_only,
            "loadavg_start": [round(v, 2) for v in load_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
    print(render(meta, results))


def render(meta, results):
    out = []
    out.append("# CKKS peer libraries on this machine\n")
    out.append(f"date: {meta['date']}  ")
    out.append(f"python: {meta['python']}, machine: {meta['machine']}, cores: {meta['cores']}, cpu: {meta['cpu']}  ")
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + "  ")
    if "loadavg_start" in meta:
        out.append(f"load average (1/5/15 min): {meta['loadavg_start']} at the start, "
                   f"{meta['loadavg_end']} at the end  ")
    out.append("")
    out.append(f"Times are medians in milliseconds over {meta['reps']} repetitions (after one warm-up), "
               "for fresh ciphertexts at the top level, N/2 real slots uniform in [-1, 1]. "
               "Precision is -log2 of the max / mean absolute slot error. "
               "Bootstrapping: median of " + str(meta["boot_reps"]) + " runs.\n")
    if meta["ops_run"]:
        for th in meta["threads"]:
            out.append(f"## Operations, {th} thread{'s' if th > 1 else ''}\n")
            out.append(ops_table(results, th) + "\n")
    if meta["boot_run"]:
        out.append("## Bootstrapping (N=2^16, all slots)\n")
        out.append(boot_table(results) + "\n")
    out.append("## Parameters used\n")
    out.append(params_table(results) + "\n")
    return "\n".join(out)


def _clean(msg):
    """Drop machine-specific absolute paths from messages (keep the file name and line)."""
    import re

    return re.sub(r"(/[^\s:/]+)+/([^\s:/]+)", r"\2", msg)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


if __name__ == "__main__":
    main()
