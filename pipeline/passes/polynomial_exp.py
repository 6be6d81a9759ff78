"""Lower float32 ``exp`` to a polynomial on CPU targets, so that kernels calling it vectorize.

Not a Relax pass but an intrinsic lowering rule: TVM lowers ``tirx.exp`` on LLVM targets to
``llvm.exp``, which LLVM turns into one scalar call of libm's ``expf`` per element (it has no
vector math library to call), even inside a vectorized loop. Every SiLU and sigmoid goes through
it: the tuned yolov8-digits int8 library held 2248 ``call expf`` sites. The rule replaces it with
the Cephes single-precision approximation (range reduction by ln 2, a polynomial, the power of two
written into the exponent bits): plain arithmetic that LLVM vectorizes. Measured here: x *
sigmoid(x) 5.0 -> 1.3 ns per element, under 1 ulp from exact exp on [-87.33, 88.37]. Outside that
range it saturates (1.2e-38 below, 2.4e38 above) where ``expf`` goes denormal or infinite; for
sigmoid and SiLU that is less than 1e-37 off.

The rule changes code generation only, never the TIR a schedule is tuned on, so tuning records
keep applying; the tuning builder registers it too, so the tuner measures what compile builds.
"""

from functools import cache

# Cephes expf: ln 2 split in two so that n * ln 2 is exact for |n| < 256, and the polynomial for
# exp(r) - 1 - r on |r| <= ln 2 / 2.
_LN2_HI, _LN2_LO = 0.693359375, -2.12194440e-4
_LOG2E = 1.44269504088896341
_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
         5.0000001201e-1)
# x is clamped to these so that n = round(x / ln 2) stays in [-126, 127] and 2^n is a normal
# float32 written straight into the exponent bits (127.5 ln 2 = 88.376 would round n up to 128).
_X_MAX, _X_MIN = 88.37, -87.33


def polynomial_exp(x, lanes: int = 1):
    """exp(x) for a float32 TIR expression of ``lanes`` lanes, in vectorizable arithmetic."""
    from tvm import tirx

    suffix = f"x{lanes}" if lanes > 1 else ""
    f32 = lambda v: tirx.const(v, "float32")  # noqa: E731  (scalars broadcast to x's lanes)
    x = tirx.max(tirx.min(x, f32(_X_MAX)), f32(_X_MIN))
    n = tirx.floor(x * f32(_LOG2E) + f32(0.5))
    r = x - n * f32(_LN2_HI) - n * f32(_LN2_LO)
    p = f32(_POLY[0])
    for c in _POLY[1:]:
        p = p * r + f32(c)
    exp_r = p * r * r + r + f32(1.0)
    two_n = tirx.reinterpret("float32" + suffix, (n.astype("int32" + suffix) + 127) << 23)
    return exp_r * two_n


def _lowering_rule(stock_rule):
    """The rule for ``tirx.exp``: float32 (any lanes) to the polynomial, other widths to TVM's
    own LLVM rule (float16's ``llvm.exp.f16``, float64's ``exp``)."""

    def lower(call):
        dtype = call.ty.dtype
        if dtype.is_float and dtype.bits == 32:
            return polynomial_exp(call.args[0], dtype.lanes)
        return stock_rule(call)

    return lower


@cache
def register():
    """Install the rule for LLVM targets in this process (idempotent; above TVM's own level)."""
    import tvm
    from tvm.tirx import register_intrin_lowering

    stock_rule = tvm.ir.Op.get("tirx.exp").get_attr("llvm.FLowerIntrinsic")
    register_intrin_lowering("tirx.exp", target="llvm", f=_lowering_rule(stock_rule), level=99)
