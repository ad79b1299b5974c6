"""Time the ytdpnl study generator: participants, events, list items and seconds per size and engine.

Usage: python benchmarks/ytdpnl_generator.py [size ...] [--postgresql]
(sizes: tiny, pilot, medium, large; PostgreSQL runs on a throwaway server started here).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.pg_server

import workbench as wb
from workbench.studies.ytdpnl import generate_study, sanity_checks
from workbench.studies.ytdpnl.generator import SIZES


def main(argv: list[str]) -> None:
    sizes = [a for a in argv if not a.startswith("--")] or ["pilot", "medium"]
    engines = ["duckdb"] + (["postgresql"] if "--postgresql" in argv else [])
    server = None
    print(
        f"{'engine':<11}{'size':<8}{'participants':>13}{'events':>12}{'list items':>12}{'generate s':>12}{'checks s':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for engine in engines:
            for size in sizes:
                if engine == "duckdb":
                    url = f"duckdb:///{Path(tmp) / f'{size}.duckdb'}"
                else:
                    if server is None:
                        from tests.support.pg_server import start_postgres

                        server = start_postgres()
                    server.create_database(f"ytdpnl_{size}")
                    url = server.url_with_password(f"ytdpnl_{size}")
                db = wb.connect(url, read_only=False)
                result = generate_study(db, size, seed=0, inject_faults=True)
                db.dispose()
                reader = wb.connect(url, statement_timeout_s=3600)
                import time

                began = time.perf_counter()
                sanity_checks(reader, schema="ytdpnl")
                checks = time.perf_counter() - began
                reader.dispose()
                print(
                    f"{engine:<11}{size:<8}{SIZES[size].participants:>13,}{result.rows['event']:>12,}{result.rows['video_list_item']:>12,}"
                    f"{result.seconds:>12.1f}{checks:>10.1f}",
                    flush=True,
                )
    if server is not None:
        server.cleanup()


if __name__ == "__main__":
    main(sys.argv[1:])
