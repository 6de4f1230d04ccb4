"""Real speech recordings for the benchmarks that are not bundled with edgewave: made once, then cached.

    real_recording("speech8k_it", cache)   # 240 s, 8 kHz: Carlo Flora, Italian, male (CC-BY-3.0)
    real_recording("speech16k_en", cache)  # 120 s, 16 kHz wideband: Allison Smith, US English, female (CC-BY-SA-3.0)

Each is made from a Debian package of Asterisk's voice prompts by the recipe of the bundled
`speech8k_fr.wav` (edgewave/data/make_speech8k.py): `apt-get download` into a temporary
directory, `dpkg-deb -x`, then make_speech8k's prompt order and silence cutting. The 16 kHz
prompts are raw G.722, decoded by FFmpeg (the `ffmpeg` program, or PyAV): neither is an edgewave
dependency, install one to make that recording (`apt-get install ffmpeg` or `pip install av`).
`apt-get download` needs no root, only the package lists (`apt-get update`).

The cache holds NAME.wav and NAME.json (the WAV's sha256, the package and its version, the
decoder, the licence). The same package version gives the same bytes; a cached WAV whose sha256
no longer matches its JSON, or made by another recipe, is made again.

    python benchmarks/recordings.py [NAME ...] [--cache DIR]    # make them now, print the JSON
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "cache" / "recordings"
MAKER = ROOT / "edgewave" / "data" / "make_speech8k.py"
SOUNDS = Path("usr/share/asterisk/sounds")

RECORDINGS = {
    "speech8k_it": {
        "package": "asterisk-core-sounds-it-wav",
        "voice": "it_IT_m_Carlo",
        "rate": 8000,
        "seconds": 240.0,
        "speaker": "Carlo Flora (Italian, male; translated by Silvia Petrin)",
        "licence": "CC-BY-3.0",
        "copyright": "2012 Carlo Flora",
    },
    "speech16k_en": {
        "package": "asterisk-core-sounds-en-g722",
        "voice": "en_US_f_Allison",
        "rate": 16000,
        "seconds": 120.0,
        "speaker": "Allison Smith (US English, female)",
        "licence": "CC-BY-SA-3.0",
        "copyright": "2003-2010 Allison Smith",
    },
}

# sha256 of each recording as made from Debian 12's packages: a different result from the
# same version means the recipe changed (a warning, not an error: the file is still real speech).
KNOWN = {
    ("speech8k_it", "1.6.1-1"): "bc0211c51c8a3cd487b646f41109d00e98c9e807e3011b801fdd091d51b8d412",
    ("speech16k_en", "1.6.1-1"): "37ba4f1588dc11f1926c0dca4cfbfa817efba418d80b4c66887c5290f9a4be9c",
}


class RecordingError(RuntimeError):
    """A recording could not be made here (no apt-get, no package, no G.722 decoder, ...)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _recipe(name: str) -> dict:
    spec = RECORDINGS[name]
    return {"package": spec["package"], "voice": spec["voice"], "rate": spec["rate"], "seconds": spec["seconds"]}


def _cached(wav: Path, meta: Path, name: str) -> bool:
    if not (wav.is_file() and meta.is_file()):
        return False
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    return info.get("recipe") == _recipe(name) and info.get("sha256") == _sha256(wav)


def _run(args: list[str], what: str, cwd: Path | None = None) -> str:
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RecordingError(f"{what} failed (exit {p.returncode}): {' '.join(args)}\n{(p.stderr or p.stdout).strip()}")
    return p.stdout


def _package_info(package: str) -> tuple[str, int]:
    """(candidate version, size of the .deb in bytes) from the package lists."""
    p = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    fields = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line and not line.startswith(" "))
    if p.returncode != 0 or "Version" not in fields:
        raise RecordingError(f"apt knows no package {package}: run `apt-get update` (Debian/Ubuntu, "
                             f"main archive) and try again")
    return fields["Version"], int(fields.get("Size", 0))


def _maker():
    """edgewave/data/make_speech8k.py of this checkout (loaded by path: edgewave need not be installed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("edgewave_make_speech8k", MAKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _manual(name: str) -> str:
    spec = RECORDINGS[name]
    rate = f" --rate {spec['rate']}" if spec["rate"] != 8000 else ""
    return (f"to make it by hand: apt-get download {spec['package']} && dpkg-deb -x {spec['package']}_*.deb prompts/ && "
            f"python edgewave/data/make_speech8k.py prompts/{SOUNDS}/{spec['voice']}{rate} "
            f"--seconds {spec['seconds']:g} --out {name}.wav")


def real_recording(name: str, cache: Path) -> Path:
    """The WAV of recording `name` ("speech8k_it" or "speech16k_en") under `cache`, made first if need be.

    Making it downloads a Debian package (about 11-18 MB) with `apt-get download`, announced by
    one line on stderr. Raises RecordingError if it cannot be made here.
    """
    if name not in RECORDINGS:
        raise ValueError(f"no recording {name!r}: one of {', '.join(RECORDINGS)}")
    spec = RECORDINGS[name]
    cache = Path(cache)
    wav, meta = cache / f"{name}.wav", cache / f"{name}.json"
    if _cached(wav, meta, name):
        return wav

    maker = _maker()
    missing = [tool for tool in ("apt-get", "apt-cache", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise RecordingError(f"recording {name} is made from the Debian package {spec['package']}, "
                             f"but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not available here (a Debian or Ubuntu machine has it); "
                             + _manual(name))
    decoder = None
    if spec["package"].endswith("-g722"):
        try:
            decoder = maker.decoder_version(maker.g722_decoder())
        except SystemExit as e:
            raise RecordingError(f"recording {name}: {e}") from None
    version, size = _package_info(spec["package"])
    print(f"downloading Debian package {spec['package']} {version} ({size / 1e6:.0f} MB) for a benchmark recording",
          file=sys.stderr, flush=True)

    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=cache) as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)  # apt-get download as root hands the fetch to user _apt, which must reach the folder
        _run(["apt-get", "download", f"{spec['package']}={version}"], f"apt-get download {spec['package']}", cwd=tmp)
        debs = sorted(tmp.glob(f"{spec['package']}_*.deb"))
        if len(debs) != 1:
            raise RecordingError(f"apt-get download {spec['package']} left {len(debs)} .deb files in {tmp}")
        deb = debs[0]
        version = _run(["dpkg-deb", "-f", str(deb), "Version"], "dpkg-deb -f").strip()
        _run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], "dpkg-deb -x")
        prompts = tmp / "root" / SOUNDS / spec["voice"]
        try:
            x, used = maker.make_recording(prompts, spec["seconds"], spec["rate"])
        except SystemExit as e:
            raise RecordingError(f"recording {name}: {e}") from None
        if len(x) < int(spec["seconds"] * spec["rate"]):
            raise RecordingError(f"recording {name}: only {len(x) / spec['rate']:.1f} s of speech in {spec['package']}")
        part = tmp / wav.name
        maker.write_wav(part, x, spec["rate"])
        digest = _sha256(part)
        info = {
            "name": name,
            "file": wav.name,
            "sha256": digest,
            "sample_rate": spec["rate"],
            "samples": int(len(x)),
            "seconds": len(x) / spec["rate"],
            "prompts": used,
            "recipe": _recipe(name),
            "source": {"package": spec["package"], "version": version, "deb_sha256": _sha256(deb),
                       "directory": str(SOUNDS / spec["voice"])},
            "speaker": spec["speaker"],
            "licence": spec["licence"],
            "copyright": spec["copyright"],
            "g722_decoder": decoder,
            "made_by": "benchmarks/recordings.py with edgewave/data/make_speech8k.py",
        }
        known = KNOWN.get((name, version))
        if known and known != digest:
            print(f"warning: {name} from {spec['package']} {version} has sha256 {digest}, not the {known} "
                  f"it had when this recipe was written", file=sys.stderr)
        os.replace(part, wav)
        meta.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return wav


def prompt_directory(name: str, cache: Path) -> Path:
    """The speech prompts of recording `name`'s voice, one WAV per prompt, as the package ships them
    (hundreds of files: what `train --data DIR` is shown on). Cached under `cache`; made from the
    same Debian package as the recording, announced by one line on stderr."""
    spec = RECORDINGS[name]
    if spec["package"].endswith("-g722"):
        raise ValueError(f"{name}'s prompts are G.722, not WAV: use speech8k_it")
    out = Path(cache) / f"{name}_prompts"
    done = out / ".complete"
    if done.is_file():
        return out
    missing = [tool for tool in ("apt-get", "apt-cache", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise RecordingError(f"the prompts of {name} come from the Debian package {spec['package']}, but "
                             f"{', '.join(missing)} is not available here")
    version, size = _package_info(spec["package"])
    print(f"downloading Debian package {spec['package']} {version} ({size / 1e6:.0f} MB) for a benchmark directory",
          file=sys.stderr, flush=True)
    Path(cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{name}-prompts-", dir=cache) as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        _run(["apt-get", "download", f"{spec['package']}={version}"], f"apt-get download {spec['package']}", cwd=tmp)
        deb = sorted(tmp.glob(f"{spec['package']}_*.deb"))[0]
        _run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], "dpkg-deb -x")
        staged = tmp / "prompts"
        staged.mkdir()
        for f in _maker().prompt_files(tmp / "root" / SOUNDS / spec["voice"]):
            shutil.copyfile(f, staged / f.name)
        (staged / ".complete").write_text(f"{spec['package']} {version}\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staged, out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=list(RECORDINGS), help=f"recordings to make: {', '.join(RECORDINGS)}")
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"where they are kept (default {CACHE})")
    args = ap.parse_args(argv)
    for name in args.names:
        try:
            path = real_recording(name, args.cache)
        except RecordingError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(path)
        print(path.with_suffix(".json").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
