"""Where a TensorFlow Lite Micro source tree is, for compiling against TFLM (never shipped with edgewave).

The setting is ``EDGEWAVE_TFLM_DIR``: an unpacked tflite-micro checkout whose third-party downloads are in
place, or a tarball of one (``.tar.xz``, ``.tar.gz``). A tarball is unpacked once into a cache
(``$EDGEWAVE_CACHE/tflm``; in a source checkout ``build/cache/tflm``; otherwise ``~/.cache/edgewave/tflm``),
keyed by its content, so later calls cost a hash of the file. Without the setting, a source checkout uses the
project's CI copy at ``../shared/tflm-m4/tflite-micro.tar.xz`` when it exists.

    root = tflm_tree.find()            # Path or None
    flags = [f"-I{d}" for d in tflm_tree.include_dirs(root)] + [f"-D{d}" for d in tflm_tree.DEFINES]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

from .errors import UserError

__all__ = ["ENV", "DEFINES", "find", "include_dirs"]

ENV = "EDGEWAVE_TFLM_DIR"
CACHE_ENV = "EDGEWAVE_CACHE"
_REPO = Path(__file__).resolve().parent.parent
_CI_TARBALL = _REPO.parent / "shared" / "tflm-m4" / "tflite-micro.tar.xz"
_MARK = Path("tensorflow") / "lite" / "micro" / "micro_interpreter.h"
DOWNLOADS = Path("tensorflow") / "lite" / "micro" / "tools" / "make" / "downloads"
# What TFLM's Makefile defines on every target with BUILD_TYPE=release. A program must see the same as the
# library it links (TF_LITE_STATIC_MEMORY changes struct layouts); the target's own (cortex_m_generic:
# TF_LITE_MCU_DEBUG_LOG, CPU_M4=1, ARMCM4; cmsis_nn: CMSIS_NN) are the caller's.
DEFINES = ("TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON", "NDEBUG", "TF_LITE_STRIP_ERROR_STRINGS")


def find(explicit: str | os.PathLike | None = None) -> Path | None:
    """The root of a TFLM tree (the directory holding ``tensorflow/lite/micro``), or None when nothing is set
    and there is no CI copy. ``explicit`` takes the place of ``$EDGEWAVE_TFLM_DIR``; a bad setting raises
    :class:`UserError`."""
    setting = explicit if explicit is not None else os.environ.get(ENV) or None
    if setting is None:
        return _from_path(_CI_TARBALL, str(_CI_TARBALL)) if _is_checkout() and _CI_TARBALL.is_file() else None
    return _from_path(Path(setting).expanduser(), str(setting))


def include_dirs(root: str | os.PathLike, cmsis_nn: bool = False, arm_cpu: str | None = None) -> list[Path]:
    """``-I`` directories for code that includes TFLM headers, those of TFLM's Makefile: the tree, its
    downloads (gemmlowp, flatbuffers, kissfft, ruy); with ``cmsis_nn`` what ``OPTIMIZED_KERNEL_DIR=cmsis_nn``
    adds (CMSIS-NN, CMSIS Core); with ``arm_cpu`` (a CMSIS device such as ``"ARMCM4"``) its device headers,
    as ``TARGET=cortex_m_generic`` adds."""
    root = Path(root)
    dl = root / DOWNLOADS
    dirs = [root, dl, dl / "gemmlowp", dl / "flatbuffers" / "include", dl / "kissfft", dl / "ruy"]
    if cmsis_nn:
        dirs += [dl / "cmsis", dl / "cmsis_nn", dl / "cmsis" / "CMSIS" / "Core" / "Include", dl / "cmsis_nn" / "Include"]
    if arm_cpu:
        dirs += [dl / "cmsis" / "Cortex_DFP" / "Device" / arm_cpu / "Include", dl / "cmsis" / "CMSIS" / "Core" / "Include"]
    dirs = list(dict.fromkeys(dirs))
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        raise UserError(f"the TFLM tree {root} lacks {missing[0].relative_to(root)}: fetch TFLM's third-party code "
                        "with `make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads` in it")
    return dirs


def _is_checkout() -> bool:
    return (_REPO / "pyproject.toml").is_file() and (_REPO / "edgewave").is_dir()


def _tree_in(d: Path) -> Path | None:
    """d itself or its only subdirectory (a tarball's top-level folder), if it is a TFLM tree."""
    if (d / _MARK).is_file():
        return d
    subdirs = [p for p in d.iterdir() if p.is_dir()] if d.is_dir() else []
    return subdirs[0] if len(subdirs) == 1 and (subdirs[0] / _MARK).is_file() else None


def _from_path(path: Path, shown: str) -> Path:
    hint = "point it at an unpacked tflite-micro tree or a .tar.xz of one"
    if path.is_dir():
        root = _tree_in(path)
        if root is None:
            raise UserError(f"{ENV}={shown} is not a TensorFlow Lite Micro tree (no {_MARK.as_posix()}); {hint}")
        return root.resolve()
    if not path.is_file():
        raise UserError(f"{ENV}={shown} does not exist; {hint}")
    if not tarfile.is_tarfile(path):
        raise UserError(f"{ENV}={shown} is neither a directory nor a tarball; {hint}")
    return _unpacked(path, shown, hint)


def _cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "tflm"
    if _is_checkout():
        return _REPO / "build" / "cache" / "tflm"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgewave" / "tflm"


def _unpacked(tarball: Path, shown: str, hint: str) -> Path:
    digest = hashlib.sha256()
    with open(tarball, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    name = tarball.name.split(".tar")[0].split(".tgz")[0]
    dest = _cache_dir() / f"{name}-{digest.hexdigest()[:16]}"
    if not dest.is_dir():
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Unpack beside the destination and rename: a concurrent or interrupted run never sees half a tree.
        tmp = dest.with_name(f"{dest.name}.part-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with tarfile.open(tarball, "r:*") as t:
                if hasattr(tarfile, "data_filter"):
                    t.extractall(tmp, filter="data")
                else:  # Python < 3.10.12 has no extraction filters
                    t.extractall(tmp)
        except (tarfile.TarError, OSError, EOFError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"{ENV}={shown} could not be unpacked into {dest.parent}: {e}") from None
        if _tree_in(tmp) is None:
            shutil.rmtree(tmp, ignore_errors=True)
            raise UserError(f"{ENV}={shown} holds no TensorFlow Lite Micro tree (no {_MARK.as_posix()}); {hint}")
        try:
            os.replace(tmp, dest)
        except OSError:  # another process unpacked the same tarball first
            shutil.rmtree(tmp, ignore_errors=True)
    root = _tree_in(dest)
    if root is None:
        raise UserError(f"the cached TFLM tree {dest} is damaged: delete it and retry")
    return root.resolve()
