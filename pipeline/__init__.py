"""slimdet: prune, quantize, tune and compile YOLO-style detectors with Apache TVM."""

from .runtime.threads import size_tvm_thread_pool

# Before anything imports TVM: the tuning runner's worker processes inherit this too, so trials
# are measured with the threads the deployed library will use.
size_tvm_thread_pool()
