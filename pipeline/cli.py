"""``slimdet``: a thin command line over the Python API (each command is a few calls)."""

import argparse
import sys
import warnings
from pathlib import Path

from .errors import SlimdetError, exit_status
from .runtime import profile
from .tuning.tasks import CONV3X3_ALGORITHMS


# Emulated trials take about a minute each (qemu): the default shows the path works, no more.
EMULATED_TRIALS = 8


def _ints(text):
    return tuple(int(v) for v in text.split(",") if v)


def _floats(text):
    return tuple(float(v) for v in text.split(",") if v)


THIS_CPU_HELP = ("this host's CPU model's database beside the preset's (schedules/<preset>/<model>-<variant>/cpus/"
                 "<cpu>/): seeded with the preset database's best records timed here, then tuned on; compile on "
                 "this CPU model prefers its records")


def cmd_fetch(args):
    from . import assets

    for bundle in assets.ALL_BUNDLES:
        paths = bundle.paths()
        print(f"{bundle.name}: {len(paths)} files verified in {bundle.directory()}")


def cmd_compile(args):
    from .build import compile_model

    artifact = compile_model(args.model, args.target, args.out, args.imgsz, args.batch, tuned=not args.untuned,
                             schedules_root=args.schedules, variant=args.variant, weights_dir=args.weights_dir)
    meta = artifact.metadata
    print(f"wrote {artifact.library} ({artifact.library.stat().st_size / 1e6:.1f} MB) and {artifact.metadata_path}")
    print(f"target {meta['target_preset']}: {meta['target']}; compiled in {meta['compile_seconds']} s")
    tuning = meta["tuning"]
    if meta.get("device") == "cuda":
        print(f"device code: compiled {meta['gpu_arch']} machine code (fatbin); runs only on an {meta['gpu_arch']} GPU")
    if tuning["database"]:
        print(f"{tuning['coverage']} (database {tuning['database']}, {tuning['trials']} trials)")
        if tuning.get("cpu_database"):
            print(f"{tuning['cpu_tuned_tasks']}/{tuning['tasks']} tasks take records timed on this CPU model "
                  f"({tuning['cpu']}: {tuning['cpu_database']}, {tuning['cpu_trials']} trials)")
    else:
        print(f"untuned default schedules ({tuning['reason']}); `slimdet tune` makes it fast")


def cmd_tune(args):
    import logging

    from .tuning.tune import POPULATION, TRIALS_PER_ITER, tune

    if not args.verbose:  # our progress line replaces MetaSchedule's per-round tables
        logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.WARNING)
    # `--target arm` with no tracker: the emulated device, so the ARM path works with nothing set up.
    emulate = args.emulate or (args.target == "arm" and not args.rpc_tracker)
    trials = args.trials or (EMULATED_TRIALS if emulate else 2000)
    report = tune(args.model, args.target, args.variant, args.imgsz, args.batch, trials, args.trials_per_task,
                  trials_per_iter=args.trials_per_iter or TRIALS_PER_ITER, time_budget=args.time_budget,
                  rpc_tracker=args.rpc_tracker, rpc_key=args.rpc_key,
                  emulate=emulate, root=args.schedules, population=args.population or POPULATION,
                  conv3x3=args.conv3x3, this_cpu=args.this_cpu)
    print(report.table())
    print(f"{report.trials_run} trials in {report.seconds / 60:.1f} min this run ({report.trials_before} before); "
          f"{report.coverage}")
    print(f"database: {report.database}")
    if emulate:
        print("EMULATED timings (qemu-user on this machine): not ARM timings; the database stays in the cache. "
              f"Compile with it: slimdet compile --target {args.target} --schedules {Path(report.database).parents[1]}")
    if report.device_lost:
        raise SlimdetError("the device stopped answering during the tune; records measured so far are saved, "
                           "run the same command again once it is back")
    if report.interrupted:
        sys.exit(130)  # what a shell expects of a command stopped by Ctrl-C


def cmd_remeasure(args):
    from .tuning.remeasure import remeasure

    report = remeasure(args.model, args.target, args.variant, args.top, args.schedules, args.imgsz, args.batch,
                       tuple(args.task or ()), source=args.source, this_cpu=args.this_cpu)
    if args.this_cpu:
        print(f"{len(report.tasks)} tasks seeded: the best {args.top} records of each in the {args.target} database "
              f"timed on this CPU; `slimdet tune --this-cpu` goes on from them")
    elif args.source:
        print(f"{len(report.tasks)} tasks seeded: the best {args.top} {args.source} records of each measured on "
              f"{args.target}; `slimdet tune` goes on from them")
    else:
        faster = sum(r.faster for r in report.tasks)
        print(f"{len(report.tasks)} tasks: the best {args.top} records of each measured again and appended; "
              f"{faster} task(s) now run faster than their best record said")
    if report.interrupted:
        sys.exit(130)


def cmd_rpc(args):
    from .remote import rpc

    if args.role == "tracker":
        service = rpc.start_tracker(args.host, args.port, log=sys.stderr)
        print(f"RPC tracker listening on {service.address}; register devices with "
              f"`slimdet rpc device --tracker {service.address} --key KEY`", flush=True)
    else:
        if not args.tracker or not args.key:
            raise SlimdetError("slimdet rpc device needs --tracker HOST:PORT and --key KEY")
        service = rpc.start_device(args.tracker, args.key, args.emulate, args.host, log=sys.stderr)
        kind = "EMULATED aarch64 device (qemu-user)" if args.emulate else "device server"
        print(f"{kind} registered with {args.tracker} under key {args.key!r}", flush=True)
    try:
        service.process.wait()
    except KeyboardInterrupt:
        service.stop()


def cmd_predict(args):
    from .runtime import Predictor
    from .runtime.draw import draw_detections, save_png
    from .runtime.preprocess import load_image

    predictor = Predictor(args.artifact, conf_threshold=args.conf, iou_threshold=args.iou)
    image = load_image(args.image)
    detections = predictor.predict(image)
    for d in detections:
        print(f"{d.label:<16} {d.score:.3f}  [{', '.join(f'{v:.0f}' for v in d.box)}]")
    if not detections:
        print("no detections above the threshold")
    if args.out:
        save_png(draw_detections(image, detections), args.out)
        print(f"wrote {args.out}")


def cmd_bench(args):
    from .bench.harness import bench_model
    from .bench.report import format_table, plot, save_json

    results = []
    for size in args.imgsz or (None,):
        result = bench_model(args.model, size, args.target, args.batch, args.threads, args.streams, args.reps,
                             engines=args.engines.split(","), memory=not args.no_memory)
        print(format_table(result))
        results.append(result)
    if args.json:
        save_json(results, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


def cmd_bench_gpu(args):
    from .bench import gpu

    facts, rows = gpu.device_facts(), []
    print(f"[bench-gpu] {facts}", file=sys.stderr, flush=True)
    for model in args.model:
        rows += gpu.bench_model_gpu(model, args.imgsz, args.batch, args.target, Path(args.out), args.rounds,
                                    args.schedules, args.cuda_graph_batch)
        print(gpu.format_table(rows), flush=True)
    print(f"wrote {gpu.save_results(rows, facts, Path(args.out) / 'bench-gpu.json')}")


DEFAULT_CHECK_CASES = [
    {"model": "yolov3-tiny", "input_size": 416, "batch": 1, "threads": 2},
    {"model": "yolov8n", "input_size": 640, "batch": 1, "threads": 2},
    # int8: against the unpruned model on eager PyTorch, its own Q/DQ model on ONNX Runtime and
    # OpenVINO, and the tuned fp32 library (issue 5's gates: >= 2x fp32, ahead of the int8 peers).
    {"model": "yolov3-tiny", "variant": "int8", "input_size": 416, "batch": 1, "threads": 2,
     "peers": ["pytorch-eager fp32", "onnxruntime int8", "openvino int8", "tvm fp32"]},
    {"model": "yolov8-digits", "variant": "int8", "input_size": 256, "batch": 1, "threads": 2,
     "peers": ["pytorch-eager fp32", "onnxruntime int8", "openvino int8", "tvm fp32"]},
    # pruned + int8 (issue 5's >= 5x eager gate) against its own Q/DQ model on the int8 peers and
    # the tuned library of the unpruned fp32 model
    {"model": "yolov8-digits", "variant": "pruned46-int8", "input_size": 256, "batch": 1, "threads": 2,
     "peers": ["pytorch-eager fp32", "onnxruntime pruned46-int8", "openvino pruned46-int8", "tvm fp32"]},
    {"model": "yolov3-tiny", "variant": "pruned52-int8", "input_size": 416, "batch": 1, "threads": 2,
     "peers": ["pytorch-eager fp32", "onnxruntime pruned52-int8", "openvino pruned52-int8", "tvm fp32"]},
]


def cmd_bench_check(args):
    from .bench import check

    peers = args.peers.split(",")
    if args.record:
        cases = [{"peers": peers, **c} for c in DEFAULT_CHECK_CASES if check.selected(c, args.model, args.variant)]
        print(f"wrote {check.record(cases, args.target, args.reps, args.tolerance)}")
        return
    results = check.check(args.target, args.reps, models=args.model, variants=args.variant)
    print(check.format_results(results))
    failed = [r for r in results if not r.ok]
    if failed:
        raise SlimdetError(f"{len(failed)} ratio(s) fell below baseline x (1 - tolerance)")


def cmd_demo(args):
    from . import assets
    from .bench.harness import bench_model
    from .bench.report import format_table, plot, save_json
    from .build import compile_model
    from .runtime import Predictor
    from .runtime.draw import draw_detections, save_png
    from .runtime.preprocess import load_image

    out = Path(args.out)
    print(f"== compiling {args.model} for {args.target}")
    artifact = compile_model(args.model, args.target, out / "artifact")
    print(f"   {artifact.library} + {artifact.metadata_path.name}")
    predictor = Predictor(artifact.metadata_path)
    print("== detecting on real photos (darknet's and scikit-image's)")
    for path in assets.DARKNET_PHOTOS.paths().values():
        image = load_image(path)
        detections = predictor.predict(image)
        save_png(draw_detections(image, detections), out / f"{path.stem}.png")
        found = ", ".join(f"{d.label} {d.score:.2f}" for d in detections) or "nothing"
        print(f"   {path.name:<12} -> {found}")
    print("== benchmark (interleaved, medians)")
    result = bench_model(args.model, None, args.target, (1,), (2,), (), args.reps,
                         engines=("pytorch-eager", "onnxruntime", "openvino", "tvm"), workdir=out / "bench")
    print(format_table(result))
    save_json([result], out / "bench.json")
    plot([result], out / "bench.png")
    print(f"== wrote annotated PNGs, bench.json and bench.png under {out}")


def cmd_eval(args):
    from .eval.evaluate import LABELLED_TEST_SETS, fidelity_report, labelled_report

    engines = tuple(args.engines.split(","))
    if args.model in LABELLED_TEST_SETS:
        report = labelled_report(args.model, args.target, engines, args.images, args.imgsz, variant=args.variant)
        print(f"mAP of {report['model']} ({args.variant}) @ {report['input_size']} on {report['images']} images "
              f"of the {report['data']}:")
        scores = report["map"]
    else:
        # fp32 eager PyTorch is the reference; it is scored only when it runs another variant.
        scored = tuple(e for e in engines if e != "pytorch-eager" or args.variant != "fp32")
        report = fidelity_report(args.model, args.target, scored, args.imgsz, variant=args.variant,
                                 photos=args.photos)
        print(f"fidelity mAP of {report['model']} ({args.variant}) @ {report['input_size']} against "
              f"{report['reference']} on {report['images']} real photos ({args.photos}) and crops "
              f"(its detections at conf >= 0.25 as ground truth):")
        scores = report["fidelity"]
    for engine, r in scores.items():
        print(f"  {engine:<14} mAP@0.5 {r['map50']:.4f}   mAP@0.5:0.95 {r['map']:.4f}")
    if args.json:
        from .fsutil import atomic_write_json

        atomic_write_json(Path(args.json), report)


def cmd_prune(args):
    from .compress.prune import prune, ratio_for_macs
    from .models import load_model, save_variant

    spec = load_model(args.model, args.imgsz)
    example = spec.example_input()
    ratio = args.ratio
    if ratio is None:
        ratio = ratio_for_macs(spec.module, example, args.macs_kept, args.round_to, args.importance)
    report = prune(spec.module, example, ratio, args.round_to, args.importance)
    variant = args.variant or f"pruned{round(100 * (1 - report.macs_kept))}"
    path = save_variant(spec.module, spec.name, variant, {"pruning": report.as_dict(), "recovery": None},
                        args.weights_dir)
    print(f"{spec.name} channel ratio {ratio:.3g} ({args.importance}, widths multiple of {args.round_to}): "
          f"params {report.base_params / 1e6:.2f} M -> {report.params / 1e6:.2f} M, "
          f"MACs {report.base_macs / 1e9:.3f} G -> {report.macs / 1e9:.3f} G ({report.macs_kept:.1%} kept)")
    print(f"saved variant {variant!r} to {path}; recover accuracy with "
          f"`slimdet distill --model {spec.name} --variant {variant}`, then compile/tune with --variant {variant}")


def cmd_prune_sweep(args):
    from .compress import sweep
    from .fsutil import atomic_write_json
    from .models import load_model

    spec = load_model(args.model, args.imgsz)
    rows = sweep.sweep(spec, args.ratios, _ints(args.round_to), args.importance, args.threads, args.reps,
                       unstructured=_floats(args.unstructured))
    print(sweep.table(rows))
    if args.json:
        atomic_write_json(Path(args.json), sweep.as_json(spec, rows, args.importance, args.threads))
    if args.plot:
        sweep.plot(rows, Path(args.plot), f"{spec.name} @ {spec.input_size}: pruning, measured ({args.threads} threads)")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(directory) -> list:
    from .errors import InputError

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"--images: {directory} is not a directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"--images: no {'/'.join(IMAGE_SUFFIXES)} files in {directory}")
    return files


def cmd_distill(args):
    from . import assets
    from .compress.distill import distill
    from .models import load_model, read_checkpoint, save_variant, variant_path
    from .training.train import TrainConfig

    student = load_model(args.model, None, args.variant, args.weights_dir)
    teacher = load_model(args.model)
    config = TrainConfig(steps=args.steps, batch=args.batch, input_size=args.imgsz or student.input_size, lr=args.lr,
                         warmup_steps=min(50, args.steps // 10), seed=args.seed, time_budget=args.time_budget)
    # Photos for models with no labelled data: yours (--images), else the scikit-image ones; the
    # darknet ones stay held out for fidelity (`slimdet eval --photos darknet`).
    photos = image_files(args.images) if args.images else list(assets.SKIMAGE_PHOTOS.paths().values())
    checkpoint = Path(args.checkpoint or f"out/distill/{args.model}-{args.variant}-last.pt")
    result = distill(student, teacher, checkpoint, config, photos=photos,
                     photos_label=args.images or "scikit-image; the darknet photos held out")
    print(f"distilled {result['steps']} steps in {result['seconds']} s; last loss {result.get('loss', float('nan')):.4f}")
    if result["steps"] >= config.steps:
        info = read_checkpoint(variant_path(args.model, args.variant, args.weights_dir), "")
        recovery = {"method": "distillation from the unpruned model", "steps": result["steps"],
                    "config": vars(config), "data": result["data"]}
        path = save_variant(student.module, args.model, args.variant, {"pruning": info.get("pruning"),
                                                                      "recovery": recovery}, args.weights_dir)
        print(f"saved the recovered variant {args.variant!r} to {path}")
    else:
        print(f"the variant is unchanged: run the same command again to go on, or with --steps {result['steps']} "
              f"to keep what the {result['steps']} steps learnt")


def cmd_quantize(args):
    from .compress.quantize import default_calibration, int8_variant, quantize
    from .models import load_model, variant_path
    from .runtime.preprocess import load_image

    spec = load_model(args.model, args.imgsz, args.variant, args.weights_dir)
    if args.calib:
        images = [load_image(p) for p in image_files(args.calib)[: args.images]]
        description = args.calib
    else:
        images, description = default_calibration(spec, args.images)
    out = variant_path(spec.name, int8_variant(spec.variant), args.weights_dir)
    report = quantize(spec, images, out, args.method, not args.full_range_weights, description)
    print(f"{spec.name} {spec.variant} -> {report.variant}: {report.quantized_convs}/{report.convs} convs int8 "
          f"({report.method} calibration on {report.images} images: {description}), {report.file_mb} MB, "
          f"{report.seconds} s; saved to {out}")
    print(f"score it with `slimdet eval --model {spec.name} --variant {report.variant}`, tune/compile with "
          f"--variant {report.variant}")


def cmd_report(args):
    from .bench import variants
    from .fsutil import atomic_write_bytes, atomic_write_json

    report = variants.variant_report(args.model, tuple(args.variants.split(",")), args.target, args.threads,
                                     args.reps, args.images)
    table = variants.markdown(report)
    print(table)
    if args.json:
        atomic_write_json(Path(args.json), report)
    if args.md:
        atomic_write_bytes(Path(args.md), (table + "\n").encode())
    if args.plot:
        variants.plot(report, Path(args.plot))


def cmd_train(args):
    from .models import DIGITS_ARCH, WEIGHTS_DIR
    from .models.yolov8 import YOLOv8
    from .training.train import TrainConfig, export_weights, train

    model = YOLOv8(**DIGITS_ARCH)
    config = TrainConfig(steps=args.steps, batch=args.batch, input_size=args.imgsz, lr=args.lr, seed=args.seed,
                         time_budget=args.time_budget)
    result = train(model, Path(args.checkpoint), config)
    print(f"trained {result['steps']} steps in {result['seconds']} s; last loss {result.get('loss', float('nan')):.3f}")
    if result["steps"] >= config.steps:
        out = export_weights(model, Path(args.export or WEIGHTS_DIR / "yolov8-digits.pt"), result["steps"], config)
        print(f"exported the model weights (fp16) to {out}")


def add_weights_dir(p):
    p.add_argument("--weights-dir", help="where variants live (default: the packaged weights)")


def build_parser():
    parser = argparse.ArgumentParser(prog="slimdet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch", help="download and verify the real weights and photos")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("compile", help="import a model into TVM, compile it and export .so + metadata")
    p.add_argument("--model", required=True)
    p.add_argument("--target", default="x86")
    p.add_argument("--out", required=True)
    p.add_argument("--variant", default="fp32",
                   help="fp32, or a variant made by `slimdet prune` / `slimdet quantize` (pruned46, int8, ...)")
    add_weights_dir(p)
    p.add_argument("--imgsz", type=int)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--untuned", action="store_true", help="ignore tuning databases")
    p.add_argument("--schedules", help="tuning databases root (default: the committed schedules/)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("remeasure", help="measure each task's best records again (after a code generation "
                                         "change) and append them with today's times")
    p.add_argument("--model", required=True)
    p.add_argument("--target", default="x86")
    p.add_argument("--variant", default="fp32")
    p.add_argument("--imgsz", type=int)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--top", type=int, default=4, help="records per task (default 4)")
    p.add_argument("--task", action="append", metavar="NAME",
                   help="only tasks whose name contains NAME (repeatable; default: every task)")
    p.add_argument("--from", dest="source", metavar="PRESET",
                   help="seed the target's database: measure the best records of the model's database for "
                        "PRESET (e.g. x86-avx2 for a new x86-avx512-vnni database) on the target")
    p.add_argument("--this-cpu", action="store_true", help=THIS_CPU_HELP)
    p.add_argument("--schedules", help="schedules root (default: the committed schedules/)")
    p.set_defaults(func=cmd_remeasure)

    p = sub.add_parser("tune", help="tune with MetaSchedule + XGBoost into schedules/<target>/<model>-<variant>/")
    p.add_argument("--model", required=True)
    p.add_argument("--target", default="x86")
    p.add_argument("--variant", default="fp32")
    p.add_argument("--imgsz", type=int)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--trials", type=int, help="total budget, trials already recorded included "
                   f"(default 2000; {EMULATED_TRIALS} on the emulated device)")
    p.add_argument("--trials-per-task", type=int)
    p.add_argument("--trials-per-iter", type=int,
                   help="candidates measured per search iteration, the least a task gets (default 16; 8 covers "
                        "a many-task model sooner, with a weaker first search)")
    p.add_argument("--population", type=int,
                   help="candidates per evolutionary-search generation (default 512, upstream's; smaller: "
                        "quicker iterations, a narrower search)")
    p.add_argument("--conv3x3", choices=sorted(CONV3X3_ALGORITHMS),
                   help="how a new database computes fp32 3x3 stride-1 convs (default direct; winograd4: "
                        "Winograd F(4x4, 3x3)); an existing database keeps its own")
    p.add_argument("--time-budget", type=float, help="seconds; stops after the trials in flight")
    p.add_argument("--this-cpu", action="store_true", help=THIS_CPU_HELP)
    p.add_argument("--rpc-tracker", help="HOST:PORT of a TVM RPC tracker with devices registered")
    p.add_argument("--rpc-key")
    p.add_argument("--emulate", action="store_true",
                   help="measure on the emulated aarch64 device (default for --target arm without a tracker)")
    p.add_argument("--schedules", help="tuning databases root (default: schedules/; emulated: the cache)")
    p.add_argument("--verbose", action="store_true", help="keep MetaSchedule's own logs")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("rpc", help="start an RPC tracker, or a device server registered with one")
    p.add_argument("role", choices=("tracker", "device"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=9190, help="tracker port")
    p.add_argument("--tracker", help="device: HOST:PORT of the tracker to register with")
    p.add_argument("--key", help="device: the key tunes ask for, e.g. rpi4")
    p.add_argument("--emulate", choices=("aarch64",), help="device: serve as the emulated aarch64 board")
    p.set_defaults(func=cmd_rpc)

    p = sub.add_parser("predict", help="detect objects in an image with an exported artifact")
    p.add_argument("--artifact", required=True, help="artifact directory or its .json")
    p.add_argument("--image", required=True)
    p.add_argument("--out", help="write the image with boxes drawn to this PNG")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--iou", type=float, default=0.45)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("profile", help="time each kernel of an exported library: where an inference spends it")
    profile.add_arguments(p)
    p.set_defaults(func=profile.run_profile)

    p = sub.add_parser("bench", help="TVM vs eager PyTorch, torch.compile, ONNX Runtime, OpenVINO in one run")
    p.add_argument("--model", required=True)
    p.add_argument("--target", default="x86")
    p.add_argument("--imgsz", type=int, action="append", help="repeat for several sizes")
    p.add_argument("--batch", type=_ints, default=(1,), help="comma list, e.g. 1,4")
    p.add_argument("--threads", type=_ints, default=(1, 2), help="comma list, e.g. 1,2")
    p.add_argument("--streams", type=_ints, default=(), help="parallel single-thread streams, e.g. 2")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--engines", default="pytorch-eager,torch.compile,onnxruntime,openvino,tvm")
    p.add_argument("--no-memory", action="store_true", help="skip the per-engine peak-memory processes")
    p.add_argument("--json")
    p.add_argument("--plot")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("bench-gpu", help="TVM CUDA library vs eager PyTorch and torch.compile on this host's GPU")
    p.add_argument("--model", action="append", required=True, help="repeatable")
    p.add_argument("--target", default="cuda-sm90")
    p.add_argument("--imgsz", type=int)
    p.add_argument("--batch", type=_ints, default=(1, 8, 32), help="comma list")
    p.add_argument("--cuda-graph-batch", type=_ints, default=(1,), help="batches also built with CUDA graphs")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--schedules", help="tuning databases root (default: the committed schedules/)")
    p.add_argument("--out", default="out/bench-gpu")
    p.set_defaults(func=cmd_bench_gpu)

    p = sub.add_parser("bench-check", help="hold tuned-TVM speed ratios against benchmarks/baselines/")
    p.add_argument("--target", default="x86")
    p.add_argument("--model", action="append", help="only this model (repeatable)")
    p.add_argument("--variant", action="append", help="only this variant, e.g. fp32 or int8 (repeatable)")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--record", action="store_true", help="measure and write the baseline instead of checking")
    p.add_argument("--tolerance", type=float, default=0.25)
    p.add_argument("--peers", default="pytorch-eager,torch.compile,onnxruntime,openvino",
                   help="peers of the fp32 cases (variant cases name their own)")
    p.set_defaults(func=cmd_bench_check)

    p = sub.add_parser("eval", help="accuracy of compiled and peer engines through the same pre/post-processing")
    p.add_argument("--model", required=True)
    p.add_argument("--target", default="x86")
    p.add_argument("--imgsz", type=int)
    p.add_argument("--engines", default="pytorch-eager,tvm,onnxruntime", help="comma list of engines to score")
    p.add_argument("--images", type=int, default=500, help="test images (labelled data only)")
    p.add_argument("--variant", default="fp32", help="fp32, or a compressed variant made by `slimdet prune`")
    p.add_argument("--photos", default="all", choices=("all", "darknet", "skimage"),
                   help="photo set for fidelity (darknet: held out from distillation)")
    p.add_argument("--json")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("prune", help="structured channel pruning (dependency graph) into a named variant")
    p.add_argument("--model", required=True)
    how_much = p.add_mutually_exclusive_group(required=True)
    how_much.add_argument("--ratio", type=float, help="fraction of each prunable layer's channels to remove")
    how_much.add_argument("--macs-kept", type=float, help="fraction of the MACs to keep (finds the ratio)")
    p.add_argument("--round-to", type=int, default=16, help="keep widths at multiples of this (default 16)")
    p.add_argument("--importance", choices=("l2", "bn"), default="l2")
    p.add_argument("--variant", help="name of the variant (default pruned<percent of MACs removed>)")
    p.add_argument("--imgsz", type=int)
    add_weights_dir(p)
    p.set_defaults(func=cmd_prune)

    p = sub.add_parser("prune-sweep", help="params, MACs and measured latency over pruning ratios")
    p.add_argument("--model", required=True)
    p.add_argument("--ratios", type=_floats, default=(0.1, 0.2, 0.3, 0.4, 0.5))
    p.add_argument("--round-to", default="16,1", help="widths rounding to compare (1 = none)")
    p.add_argument("--unstructured", default="0.5", help="fractions of conv weights to zero, for comparison")
    p.add_argument("--importance", choices=("l2", "bn"), default="l2")
    p.add_argument("--imgsz", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--json")
    p.add_argument("--plot")
    p.set_defaults(func=cmd_prune_sweep)

    p = sub.add_parser("distill", help="recover a pruned variant by distillation from the unpruned model")
    p.add_argument("--model", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--imgsz", type=int, help="training image size (default: the model's)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, help="seconds; stops with a checkpoint, a re-run resumes")
    p.add_argument("--images", help="a directory of unlabelled photos from your domain (default: the "
                   "scikit-image photos); more and closer-to-deployment images recover more")
    p.add_argument("--checkpoint", help="resumable run state (default out/distill/<model>-<variant>-last.pt)")
    add_weights_dir(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("quantize", help="static int8 PTQ (Q/DQ ONNX) calibrated on real images, as a variant")
    p.add_argument("--model", required=True)
    p.add_argument("--variant", default="fp32", help="the variant to quantize (fp32 or a pruned one)")
    p.add_argument("--calib", help="a directory of calibration images (default: the model's own data or "
                   "the scikit-image photos)")
    p.add_argument("--images", type=int, default=64, help="calibration images to use")
    p.add_argument("--method", default="minmax", choices=("minmax", "percentile", "entropy"))
    p.add_argument("--full-range-weights", action="store_true",
                   help="8-bit weights (default 7: x86 without VNNI saturates 16-bit pair sums otherwise)")
    p.add_argument("--imgsz", type=int)
    add_weights_dir(p)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("report", help="size, accuracy and speed of a model's variants vs the fp32 peers, one run")
    p.add_argument("--model", required=True)
    p.add_argument("--variants", default="fp32", help="comma list, e.g. fp32,pruned52")
    p.add_argument("--target", default="x86")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--images", type=int, default=200, help="digits test images for true mAP")
    p.add_argument("--json")
    p.add_argument("--md")
    p.add_argument("--plot")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("train", help="train the YOLOv8-class model on the digits data (resumes a checkpoint)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--imgsz", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget", type=float, help="seconds; stops with a checkpoint")
    p.add_argument("--checkpoint", default="out/train/yolov8-digits-last.pt")
    p.add_argument("--export", help="where the finished weights go (default: the packaged model)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("demo", help="compile the default model, detect on real photos, benchmark")
    p.add_argument("--model", default="yolov3-tiny")
    p.add_argument("--target", default="x86")
    p.add_argument("--out", default="out/demo")
    p.add_argument("--reps", type=int, default=3)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    # torch.export's pytree deprecation notices say nothing a slimdet user can act on.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(torch|copyreg)")
    args = build_parser().parse_args(argv)
    return exit_status(args.func, args, "slimdet")


if __name__ == "__main__":
    sys.exit(main())
