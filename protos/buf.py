"""Check the protos the way gRPC shops check theirs, with the buf CLI pinned in requirements/test.lock (``buf-bin``).

    python protos/buf.py lint                  buf lint (STANDARD rules, protos/buf.yaml)
    python protos/buf.py breaking              buf breaking against the released API (protos/released/billing-v1.json)
    python protos/buf.py baseline "REASON"     accept today's protos as the released API (``make proto-baseline``)

A breaking change to ``billing.v1`` fails ``breaking`` (and so ``make test``) until it is made deliberately: ``baseline``
rebuilds the released image and appends the reason, the date and the image's SHA-256 to ``protos/API-CHANGES.md``;
``tests/unit/test_protos_buf.py`` fails when the image and the last entry there disagree, so a refreshed baseline
without a documented reason does not pass either.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RELEASED = HERE / "released" / "billing-v1.json"
CHANGES = HERE / "API-CHANGES.md"
SHA_MARK = "image sha256: "


def buf_binary() -> str:
    """The locked buf from the virtualenv beside the interpreter, else one on PATH."""
    beside = Path(sys.executable).parent / "buf"
    if beside.exists():
        return str(beside)
    found = shutil.which("buf")
    if not found:
        raise SystemExit("buf not found: install the test lock (make test) or `pip install buf-bin`")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([buf_binary(), *args], cwd=HERE, capture_output=True, text=True, check=False)


def image_sha256(path: Path = RELEASED) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def documented_sha256() -> str | None:
    """The image digest of the newest entry in API-CHANGES.md (entries are appended, the last one wins)."""
    found = None
    for line in CHANGES.read_text(encoding="utf-8").splitlines() if CHANGES.exists() else []:
        if SHA_MARK in line:
            found = line.split(SHA_MARK, 1)[1].strip(" `")
    return found


def lint() -> subprocess.CompletedProcess[str]:
    return run("lint")


def breaking() -> subprocess.CompletedProcess[str]:
    return run("breaking", "--against", str(RELEASED))


def baseline(reason: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "image.json"
        built = run("build", "--exclude-source-info", "-o", str(out))
        if built.returncode != 0:
            raise SystemExit(built.stderr.strip())
        image = json.loads(out.read_text(encoding="utf-8"))
    RELEASED.parent.mkdir(exist_ok=True)
    RELEASED.write_text(json.dumps(image, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    entry = (f"\n## {dt.date.today().isoformat()}\n\n{reason.strip()}\n\n{SHA_MARK}`{image_sha256()}`\n")
    with CHANGES.open("a", encoding="utf-8") as fh:
        fh.write(entry)
    print(f"wrote {RELEASED.relative_to(HERE.parent)} and an entry in {CHANGES.relative_to(HERE.parent)}")


def main(argv: list[str]) -> int:
    if argv[1:2] == ["lint"]:
        result = lint()
    elif argv[1:2] == ["breaking"]:
        result = breaking()
    elif argv[1:2] == ["baseline"] and len(argv) == 3 and argv[2].strip():
        baseline(argv[2])
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
