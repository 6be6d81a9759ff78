"""The exported artifact: ``DIR/<name>.so`` plus ``DIR/<name>.json`` describing it.

Readers verify before they trust: the metadata must parse and carry every field, and the
library's sha256 must match the one recorded when it was written.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArtifactError
from ..fsutil import sha256_file

METADATA_VERSION = 1
REQUIRED_FIELDS = ("format_version", "model", "classes", "input_shape", "decoder", "preprocess", "outputs",
                   "target", "target_preset", "library", "library_sha256", "tvm_version", "tvm_ffi_version")


@dataclass(frozen=True)
class Artifact:
    library: Path
    metadata_path: Path
    metadata: dict

    @property
    def name(self):
        return self.library.stem


def find_metadata(directory) -> Path:
    directory = Path(directory)
    if directory.suffix == ".json" and directory.is_file():
        return directory
    if not directory.is_dir():
        raise ArtifactError(f"artifact directory not found: {directory}")
    found = sorted(p for p in directory.glob("*.json") if p.with_suffix(".so").exists())
    if not found:
        raise ArtifactError(f"{directory} holds no <name>.so with a <name>.json beside it")
    if len(found) > 1:
        raise ArtifactError(f"{directory} holds several artifacts ({', '.join(p.stem for p in found)}); "
                            f"pass the .json of the one you mean")
    return found[0]


def read_artifact(path) -> Artifact:
    """Load and check an artifact from its directory (one artifact inside) or its .json path."""
    meta_path = find_metadata(path)
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"corrupt metadata {meta_path}: {e}") from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"corrupt metadata {meta_path}: not a JSON object")
    missing = [f for f in REQUIRED_FIELDS if f not in meta]
    if missing:
        raise ArtifactError(f"metadata {meta_path} lacks: {', '.join(missing)}")
    if meta["format_version"] != METADATA_VERSION:
        raise ArtifactError(f"{meta_path}: metadata format {meta['format_version']}, this slimdet reads "
                            f"{METADATA_VERSION}")
    library = meta_path.parent / meta["library"]
    if not library.exists():
        raise ArtifactError(f"library {library} named by {meta_path} is missing")
    digest = sha256_file(library)
    if digest != meta["library_sha256"]:
        raise ArtifactError(f"library {library} does not match its metadata (sha256 {digest[:12]}…, "
                            f"recorded {meta['library_sha256'][:12]}…): corrupt or replaced; rebuild it")
    return Artifact(library=library, metadata_path=meta_path, metadata=meta)
