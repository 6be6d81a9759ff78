"""Target-aware tuning databases: ``schedules/<preset>/<model>-<variant>/``.

Each directory holds MetaSchedule's JSON database (``database_workload.json`` +
``database_tuning_record.json``, one JSON document per line, appended as trials are measured)
and ``meta.json``: the exact target JSON it was tuned for, TVM/ffi versions, trials spent, wall
time, CPU model. Upstream databases ignore the target (apache/tvm #15549); here a database is
never applied to a target other than the one in its ``meta.json``.

Records timed on one CPU model are only comparable with records timed on the same model: the
same yolov8n library ran 18 ms on a Zen 5 host and 37-41 ms on a Xeon (family 6, model 207),
and MetaSchedule applies each task's fastest record. So a preset's database, portable to every
CPU of its ISA level, may hold beside it ``cpus/<cpu>/``: a database tuned on one CPU model
(seeded with the preset database's best schedules measured on it, then tuned on). Compiling on
that CPU takes each task's record from there, and from the preset's database only for tasks it
lacks (``applied_database``).

A ``kill -9`` can cut the last appended line short. Loading drops such a trailing partial
line (losing only that trial) and keeps everything before it; damage anywhere else is an error.
"""

import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SlimdetError
from ..fsutil import atomic_write_bytes, atomic_write_json

WORKLOAD_FILE = "database_workload.json"
RECORD_FILE = "database_tuning_record.json"
UNMEASURED_S = 1e9  # MetaSchedule records a failed run as taking 1e10 s
META_FILE = "meta.json"
CPU_DATABASES = "cpus"  # under a preset's database: one database per CPU model
SCHEDULES_ROOT = Path(__file__).resolve().parents[2] / "schedules"


class TuningDatabaseError(SlimdetError):
    pass


def database_dir(preset_name: str, model: str, variant: str = "fp32", root=None) -> Path:
    return Path(root or SCHEDULES_ROOT) / preset_name / f"{model}-{variant}"


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's name with its family and model numbers: under KVM the name alone can hide the
    generation ("AMD EPYC" names Zen 4 and Zen 5 alike), and speed ratios and tuned records move
    with it."""
    fields = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if not key.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']}, model {fields['model']})"
    return name


def cpu_slug(cpu: str) -> str:
    """A directory name for a CPU model: "Intel(R) Xeon(R) Processor (family 6, model 207)" ->
    "intel-xeon-processor-family-6-model-207"."""
    return re.sub(r"[^a-z0-9]+", "-", re.sub(r"\((r|tm)\)", "", cpu.lower())).strip("-")


def cpu_database_dir(directory, cpu: str | None = None) -> Path:
    """Where the records of the preset database in ``directory`` timed on the CPU model ``cpu``
    (default: this host's) live."""
    return Path(directory) / CPU_DATABASES / cpu_slug(cpu or cpu_model())


def _check_lines(path: Path) -> int:
    """Validate a JSON-lines file; repair a torn final line. Returns the number of records."""
    if not path.exists():
        return 0
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            raise TuningDatabaseError(f"corrupt tuning database {path}, line {number}: not JSON. "
                                      f"Restore it from git (`git checkout -- {path}`) or delete the directory "
                                      f"to tune from scratch.") from None
    if tail.strip():
        try:
            json.loads(tail)
            complete.append(tail)  # a whole record that only lacks its newline
        except ValueError:
            print(f"[tune] {path.name}: dropping a torn last line (an interrupted write)")
        atomic_write_bytes(path, b"".join(line + b"\n" for line in complete if line.strip()))
    return sum(1 for line in complete if line.strip())


@dataclass
class TuningDatabase:
    directory: Path
    target: dict
    meta: dict

    @property
    def record_count(self) -> int:
        return _check_lines(self.directory / RECORD_FILE)

    def drop_unmeasured_after(self, kept: int) -> int:
        """Remove the records after the first ``kept`` that hold no measurement (MetaSchedule
        commits a failed run with a 1e10 s placeholder). Used when the device vanished: those
        candidates were never measured, and a resumed tune should measure them, not skip them."""
        path = self.directory / RECORD_FILE
        lines = [line for line in path.read_bytes().split(b"\n") if line.strip()] if path.exists() else []
        later = lines[kept:]
        measured = [line for line in later if min(json.loads(line)[1][1] or [UNMEASURED_S]) < UNMEASURED_S]
        if len(measured) < len(later):
            atomic_write_bytes(path, b"".join(line + b"\n" for line in lines[:kept] + measured))
        return len(later) - len(measured)

    @property
    def graph_form(self):
        """The form of the graph its tasks came from."""
        from .tasks import GraphForm

        return GraphForm.from_meta(self.meta)

    def open(self):
        """MetaSchedule's JSONDatabase over this directory (appends as trials are measured)."""
        from tvm.s_tir import meta_schedule as ms

        kernel = self.graph_form.int8_kernel
        if kernel:
            from .int8_dot import register

            register(kernel)  # loading parses traces that name its intrinsic

        return ms.database.JSONDatabase(str(self.directory / WORKLOAD_FILE), str(self.directory / RECORD_FILE),
                                        allow_missing=True)

    def save_meta(self, **updates):
        self.meta.update(updates)
        atomic_write_json(self.directory / META_FILE, self.meta)


def read_meta(directory: Path) -> dict | None:
    path = directory / META_FILE
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        raise TuningDatabaseError(f"corrupt {path}: {e}") from None
    if not isinstance(meta, dict) or "target" not in meta:
        raise TuningDatabaseError(f"corrupt {path}: no target recorded")
    return meta


def open_for_tuning(directory, target: dict, model: str, variant: str, preset: str, **new_meta) -> TuningDatabase:
    """The database in ``directory`` for ``target``, created (stamped with the model, preset and the
    TVM versions it is tuned with) if missing."""
    import tvm
    import tvm_ffi

    return open_database(directory, target, create=True, model=model, variant=variant, preset=preset,
                         tvm_version=tvm.__version__, tvm_ffi_version=tvm_ffi.__version__, **new_meta)


def open_database(directory, target: dict, create: bool = False, **new_meta) -> TuningDatabase | None:
    """The database in ``directory`` if it was tuned for exactly ``target``.

    A database for another target raises; a missing one returns None (or is created)."""
    directory = Path(directory)
    meta = read_meta(directory)
    if meta is None:
        if (directory / RECORD_FILE).exists():
            raise TuningDatabaseError(f"{directory} has tuning records but no {META_FILE}: its target is "
                                      f"unknown, so its records cannot be trusted for any target")
        if not create:
            return None
        directory.mkdir(parents=True, exist_ok=True)
        db = TuningDatabase(directory, target, {"target": target, "trials": 0, "tuning_seconds": 0.0, **new_meta})
        db.save_meta()
        return db
    if meta["target"] != target:
        raise TuningDatabaseError(
            f"the tuning database {directory} was tuned for target {json.dumps(meta['target'], sort_keys=True)}, "
            f"not {json.dumps(target, sort_keys=True)}; records are never applied across targets. Tune for this "
            f"target (slimdet tune), or compile for the preset and core count it was tuned for.")
    for name in (WORKLOAD_FILE, RECORD_FILE):
        _check_lines(directory / name)
    return TuningDatabase(directory, target, meta)


def open_cpu_database(preset_db: TuningDatabase, cpu: str | None = None) -> TuningDatabase | None:
    """The database tuned on the CPU model ``cpu`` (default: this host's) beside ``preset_db``, if
    there is one for the same target and graph form; anything else there is an error."""
    cpu_db = open_database(cpu_database_dir(preset_db.directory, cpu), preset_db.target)
    if cpu_db is not None and cpu_db.graph_form != preset_db.graph_form:
        raise TuningDatabaseError(f"{cpu_db.directory} holds another graph form ({cpu_db.graph_form}) than the "
                                  f"database it refines ({preset_db.graph_form}); delete it and tune it again "
                                  f"with --this-cpu")
    return cpu_db


def applied_database(preset_db: TuningDatabase, cpu_db: TuningDatabase | None):
    """What compile queries: each task's best record timed on this CPU where ``cpu_db`` has one,
    else the preset database's best. Never the fastest of both: their times come from different CPUs."""
    if cpu_db is None:
        return preset_db.open()
    from tvm.s_tir import meta_schedule as ms

    return ms.database.OrderedUnionDatabase(cpu_db.open(), preset_db.open())
