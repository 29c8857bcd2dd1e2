"""Keep the message catalogs in step with the code: `python tools/catalogs.py` (docs/translating.md).

Extracts every marked text (babel.cfg) into core/locale/autotrader.pot, merges it into the Korean and
English catalogs (new ids arrive untranslated and fuzzy matches are dropped, so a translator sees
them), gives English ids their own text (English is the source language), and compiles the .mo
files that ship in the package. A Korean id left without a translation is listed and the exit status
is 1; the test suite fails on it too.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "core" / "locale"
POT = LOCALE / "autotrader.pot"
LANGUAGES = ("ko", "en")


def babel(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], cwd=ROOT, capture_output=True,
                          text=True)
    problems = [line for line in done.stderr.splitlines() if line.startswith("error")]
    if done.returncode or problems:
        sys.exit(f"pybabel {args[0]} failed:\n" + "\n".join(problems or done.stderr.splitlines()[-5:]))


def po_path(code: str) -> Path:
    return LOCALE / code / "LC_MESSAGES" / "autotrader.po"


def extract() -> None:
    babel("extract", "-F", "babel.cfg", "-k", "N_", "-k", "ngettext:1,2", "--no-wrap", "--sort-by-file",
          "--project=autotrader", "--copyright-holder=autotrader", "-o", str(POT.relative_to(ROOT)), ".")


def merge(code: str) -> None:
    if po_path(code).exists():
        babel("update", "-i", str(POT), "-d", str(LOCALE), "-D", "autotrader", "-l", code, "--no-wrap",
              "--no-fuzzy-matching", "--ignore-obsolete")
    else:
        babel("init", "-i", str(POT), "-d", str(LOCALE), "-D", "autotrader", "-l", code, "--no-wrap")


def fill_english() -> None:
    path = po_path("en")
    with path.open("rb") as f:
        catalog = read_po(f)
    for message in catalog:
        if message.id and not any(message.string if isinstance(message.string, tuple) else (message.string,)):
            message.string = message.id  # a plural's (singular, plural) pair is its own two forms
    with path.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=False)


def untranslated(code: str) -> list[str]:
    with po_path(code).open("rb") as f:
        catalog = read_po(f)
    strings = lambda m: m.string if isinstance(m.string, tuple) else (m.string,)  # noqa: E731
    return [m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and not all(strings(m))]


def main() -> int:
    extract()
    for code in LANGUAGES:
        merge(code)
    fill_english()
    babel("compile", "-d", str(LOCALE), "-D", "autotrader", "--statistics")
    missing = untranslated("ko")
    for text in missing:
        print(f"ko: untranslated: {text!r}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
