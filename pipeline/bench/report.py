"""Benchmark results as a table, a JSON file and a PNG plot."""

import math

from ..fsutil import atomic_write_json, atomic_write_via


def _fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(result: dict) -> str:
    rows = result["rows"]
    eager = {(r["batch"], r["threads"], r["streams"]): r for r in rows if r["engine"] == "pytorch-eager"}
    lines = [f"{result['model']} @ {result['input_size']}  target {result['target']}  ({result['weights']})",
             f"{'engine':<16} {'batch':>5} {'thr':>3} {'strm':>4} {'p50 ms':>9} {'p90 ms':>9} {'img/s':>8} "
             f"{'vs eager':>8} {'peak MB':>8} {'file MB':>8} {'max|diff|':>9}"]
    for r in rows:
        ref = eager.get((r["batch"], r["threads"], r["streams"]))
        ratio = r["images_per_s"] / ref["images_per_s"] if ref and ref["images_per_s"] else float("nan")
        label = f"{r['engine']} ({'tuned' if r.get('tuned') else 'untuned'})" if r["engine"] == "tvm" else r["engine"]
        lines.append(f"{label:<16} {r['batch']:>5} {r['threads']:>3} {r['streams']:>4} "
                     f"{_fmt(r['p50_ms'], '9.2f')} {_fmt(r['p90_ms'], '9.2f')} {_fmt(r['images_per_s'], '8.2f')} "
                     f"{_fmt(ratio, '7.2f')}x {_fmt(r['peak_rss_mb'], '8.0f')} {_fmt(r['artifact_mb'], '8.1f')} "
                     f"{_fmt(r['max_abs_diff_vs_eager'], '9.1e')}")
    tuning = result.get("tvm_tuning") or {}
    if tuning.get("database"):
        lines.append(f"tvm: {tuning['coverage']} ({tuning['trials']} trials in {tuning['database']})")
    for name, why in result.get("unavailable", {}).items():
        lines.append(f"{name}: unavailable here ({why})")
    return "\n".join(lines)


def save_json(results: list, path):
    return atomic_write_json(path, {"results": results})


def plot(results: list, path):
    """One panel per model/size: throughput per engine for each (batch, threads, streams)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(10, 3.6 * len(results)), squeeze=False)
    for ax, result in zip(axes[:, 0], results):
        configs = sorted({(r["batch"], r["threads"], r["streams"]) for r in result["rows"]})
        engines = list(dict.fromkeys(r["engine"] for r in result["rows"]))
        width = 0.8 / max(1, len(engines))
        for i, engine in enumerate(engines):
            by_config = {(r["batch"], r["threads"], r["streams"]): r["images_per_s"]
                         for r in result["rows"] if r["engine"] == engine}
            ax.bar([c + i * width for c in range(len(configs))], [by_config.get(c, 0) for c in configs],
                   width, label=engine)
        ax.set_xticks([c + 0.4 - width / 2 for c in range(len(configs))])
        ax.set_xticklabels([f"b{b} t{t}" + (f" x{s} streams" if s > 1 else "") for b, t, s in configs])
        ax.set_ylabel("images / s")
        ax.set_yscale("log")
        ax.set_title(f"{result['model']} @ {result['input_size']} on {result['target']} (higher is better)")
        ax.legend(fontsize=8, ncol=len(engines))
    fig.tight_layout()
    atomic_write_via(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return path
