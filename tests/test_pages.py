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


def test_claims_table_is_generated_from_the_chapters_claims():
    """The landing page's claims table must be exactly what scripts/make_claims_table.py
    writes from the chapters' claim(...) calls (run the script after editing a claim),
    and it must hold the rows of every chapter that checks the paper."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_claims_table.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_claims_table

    rows = make_claims_table.all_rows()
    assert len(rows) >= 19, f"only {len(rows)} rows in the claims table"
    chapters = {r.chapter for r in rows}
    for ch in ("setup", "escape_p1", "stochasticity", "width", "second_layer", "landscape"):
        assert ch in chapters, f"no claims-table row from the {ch} chapter"
