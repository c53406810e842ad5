"""Generated book pages stay in step with their sources."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_errata_page_is_generated_from_the_errata_list():
    """book/errata.md must be exactly what scripts/make_errata_page.py writes
    from mdlib.errata.ERRATA (run the script after editing the list)."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_errata_page.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
