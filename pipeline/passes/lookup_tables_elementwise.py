"""Tell the fuser that our table lookups are element-wise.

``AnnotateTIROpPattern`` calls ``table[x[i]]`` opaque (it cannot see that the table is a
constant), and FuseOps fuses nothing into an opaque kernel: every lookup
``quantized_activation_as_table`` wrote would be a kernel of its own, with a pass over the
activation and a thread-pool launch each. In ``x`` the lookup is element-wise, so it is marked
so, after that pass and before fusion: the lookup then fuses into the conv's epilogue.
"""

import tvm
from tvm import tirx

from .quantized_activation_as_table import LOOKUP_TABLE

ELEMENTWISE = 0  # TVM's OpPatternKind kElemWise


@tvm.transform.module_pass(opt_level=0, name="LookupTablesElementwise")
def lookup_tables_elementwise(mod, _ctx):
    result = mod.clone()
    for gvar, func in mod.functions_items():
        if isinstance(func, tirx.PrimFunc) and func.attrs and LOOKUP_TABLE in func.attrs:
            result.update_func(gvar, func.with_attr("op_pattern", ELEMENTWISE))
    return result
